// qlc_cuda_elementwise.cuh - row-wise kernels: embedding, RMSNorm (with a residual add),
// RoPE, SiLU*mul and SwiGLU, add, column split. Same arithmetic as qlc_x86_elementwise.h
// (f32, precise expf/sinf/cosf, 1/sqrtf), up to the order of the sums.
#ifndef QLC_CUDA_ELEMENTWISE_CUH
#define QLC_CUDA_ELEMENTWISE_CUH

#include "qlc_cuda_common.cuh"

namespace qlc {
namespace cuda {

/// Threads per block of the row kernels: enough for D, at most 256.
template <int D> constexpr int row_threads() {
  return D >= 256 ? 256 : (D >= 128 ? 128 : (D >= 64 ? 64 : 32));
}

template <int D, class T>
__global__ void embedding_kernel(int64_t M, const int32_t *__restrict__ ids,
                                 const T *__restrict__ table, float *__restrict__ y) {
  pdl_enter();
  const int64_t t = blockIdx.x;
  const T *row = table + static_cast<int64_t>(ids[t]) * D;
  for (int i = threadIdx.x; i < D; i += blockDim.x)
    y[t * D + i] = to_f32(row[i]);
}

/// y[t, :] = table[ids[t], :] widened to f32. The runtime has checked every id.
template <int D, class T>
void embedding(cudaStream_t s, int64_t M, const int32_t *ids, const T *table, float *y) {
  if (M <= 0)
    return;
  launch_kernel(embedding_kernel<D, T>, static_cast<unsigned>(M), row_threads<D>(), 0, s, M, ids,
                table, y);
}

/// Threads of the norm kernels: a row is read once into registers, NORM_PER elements a
/// thread, so a decode step's single row costs one round trip to memory, not three.
constexpr int kNormPer = 4;
template <int D> constexpr int norm_threads() {
  int t = (D + kNormPer - 1) / kNormPer;
  t = (t + kWarpSize - 1) / kWarpSize * kWarpSize;
  return t > 1024 ? 1024 : t;
}

/// One row of RMSNorm by the block, from the values each thread holds (v[j] is element
/// threadIdx.x + j * NT): y = w * (x / sqrt(mean(x^2) + eps)).
template <int D, int NT, int PER>
__device__ __forceinline__ void rms_norm_regs(const float (&v)[PER], const float *__restrict__ w,
                                              float eps, float *yr, float *red) {
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < PER; ++j)
    ss = fmaf(v[j], v[j], ss);
  ss = block_sum<NT>(ss, red);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = threadIdx.x + j * NT;
    if (i < D)
      yr[i] = w[i] * (v[j] * inv);
  }
}

template <int D, int NT>
__global__ void __launch_bounds__(NT)
    rms_norm_kernel(const float *__restrict__ x, const float *__restrict__ w, float eps,
                    float *__restrict__ y) {
  pdl_enter();
  constexpr int PER = (D + NT - 1) / NT;
  __shared__ float red[NT / kWarpSize];
  const int64_t t = blockIdx.x;
  float v[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = threadIdx.x + j * NT;
    v[j] = i < D ? x[t * D + i] : 0.0f;
  }
  rms_norm_regs<D, NT, PER>(v, w, eps, y + t * D, red);
}

template <int D> void rms_norm(cudaStream_t s, int64_t M, const float *x, const float *w,
                               float eps, float *y) {
  if (M <= 0)
    return;
  constexpr int NT = norm_threads<D>();
  launch_kernel(rms_norm_kernel<D, NT>, static_cast<unsigned>(M), NT, 0, s, x, w, eps, y);
}

/// sum = a + b, then y = rms_norm(sum). sum may alias a or b (each element is read and
/// written by one thread).
template <int D, int NT>
__global__ void __launch_bounds__(NT)
    add_rms_norm_kernel(const float *a, const float *b, const float *__restrict__ w, float eps,
                        float *sum, float *__restrict__ y) {
  pdl_enter();
  constexpr int PER = (D + NT - 1) / NT;
  __shared__ float red[NT / kWarpSize];
  const int64_t t = blockIdx.x;
  float v[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = threadIdx.x + j * NT;
    v[j] = i < D ? a[t * D + i] + b[t * D + i] : 0.0f;
  }
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = threadIdx.x + j * NT;
    if (i < D)
      sum[t * D + i] = v[j];
  }
  rms_norm_regs<D, NT, PER>(v, w, eps, y + t * D, red);
}

template <int D>
void add_rms_norm(cudaStream_t s, int64_t M, const float *a, const float *b, const float *w,
                  float eps, float *sum, float *y) {
  if (M <= 0)
    return;
  constexpr int NT = norm_threads<D>();
  launch_kernel(add_rms_norm_kernel<D, NT>, static_cast<unsigned>(M), NT, 0, s, a, b, w, eps, sum,
                y);
}

/// Rotates the pair (a, b) of channels i and i + HD/2 of a head at position p by the
/// angle p * inv_freq_i; the rope kernel and the attention's fused rope
/// (qlc-fuse-rope) both rotate with this.
__device__ __forceinline__ void rope_pair(float p, float inv_freq_i, float a, float b,
                                          float *ya, float *yb) {
  const float ang = __fmul_rn(p, inv_freq_i); // the f32 product, as transformers
  float sn, cs;
  sincosf(ang, &sn, &cs);
  *ya = a * cs - b * sn;
  *yb = b * cs + a * sn;
}

/// Rotate-half RoPE: one thread per (head, i < HD/2) pair of a row; y may alias x.
template <int D, int HD, int NT>
__global__ void __launch_bounds__(NT)
    rope_kernel(const int32_t *__restrict__ pos, const float *__restrict__ inv_freq,
                const float *x, float *y) {
  pdl_enter();
  constexpr int H2 = HD / 2;
  const int64_t t = blockIdx.x;
  const float p = static_cast<float>(pos[t]);
  for (int j = blockIdx.y * NT + threadIdx.x; j < D / 2; j += NT * gridDim.y) {
    const int h = j / H2, i = j % H2;
    const int64_t o = t * D + h * HD + i;
    rope_pair(p, inv_freq[i], x[o], x[o + H2], &y[o], &y[o + H2]);
  }
}

template <int D, int HD>
void rope(cudaStream_t s, int64_t M, const int32_t *pos, const float *inv_freq, const float *x,
          float *y) {
  static_assert(HD % 2 == 0 && D % HD == 0, "rows hold whole heads of even width");
  if (M <= 0)
    return;
  // Several blocks a row: a decode step's one row is spread over the multiprocessors.
  constexpr int NT = row_threads<D / 2>();
  constexpr unsigned PARTS = (D / 2 + NT - 1) / NT;
  launch_kernel(rope_kernel<D, HD, NT>, dim3(static_cast<unsigned>(M), PARTS), NT, 0, s, pos,
                inv_freq, x, y);
}

__device__ __forceinline__ float silu_times(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

template <int D>
__global__ void silu_mul_kernel(int64_t n, const float *gate, const float *up, float *y) {
  pdl_enter();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = silu_times(gate[i], up[i]);
}

/// y = silu(gate) * up (y may alias gate or up).
template <int D>
void silu_mul(cudaStream_t s, int64_t M, const float *gate, const float *up, float *y) {
  const int64_t n = M * D;
  if (n <= 0)
    return;
  launch_kernel(silu_mul_kernel<D>, grid_for(n, 256), 256, 0, s, n, gate, up, y);
}

template <int I>
__global__ void swiglu_kernel(int64_t M, const float *__restrict__ x, float *__restrict__ y) {
  pdl_enter();
  const int64_t n = M * I;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / I, c = i % I;
    y[i] = silu_times(x[t * 2 * I + c], x[t * 2 * I + I + c]);
  }
}

/// y[t, i] = silu(x[t, i]) * x[t, I + i]: the epilogue of a fused [gate | up] projection.
template <int I> void swiglu(cudaStream_t s, int64_t M, const float *x, float *y) {
  if (M <= 0)
    return;
  launch_kernel(swiglu_kernel<I>, grid_for(M * I, 256), 256, 0, s, M, x, y);
}

template <int D, int OFF, int W>
__global__ void split_cols_kernel(int64_t M, const float *__restrict__ x, float *__restrict__ y) {
  pdl_enter();
  const int64_t n = M * W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = x[(i / W) * D + OFF + i % W];
}

/// y[t, :] = x[t, OFF : OFF + W] for rows of width D.
template <int D, int OFF, int W>
void split_cols(cudaStream_t s, int64_t M, const float *x, float *y) {
  static_assert(OFF >= 0 && W > 0 && OFF + W <= D, "the columns lie inside the row");
  if (M <= 0)
    return;
  launch_kernel(split_cols_kernel<D, OFF, W>, grid_for(M * W, 256), 256, 0, s, M, x, y);
}

template <int D> __global__ void add_kernel(int64_t n, const float *a, const float *b, float *y) {
  pdl_enter();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

/// y = a + b (y may alias a or b).
template <int D> void add(cudaStream_t s, int64_t M, const float *a, const float *b, float *y) {
  const int64_t n = M * D;
  if (n <= 0)
    return;
  launch_kernel(add_kernel<D>, grid_for(n, 256), 256, 0, s, n, a, b, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_ELEMENTWISE_CUH
