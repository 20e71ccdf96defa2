// qlc_cuda_common.cuh - storage types, widening loads and reductions for the CUDA kernels.
//
// Every launcher of the CUDA kernels takes device pointers and a stream, enqueues its
// kernels on that stream and returns; none synchronizes. Activations are f32 row-major.
#ifndef QLC_CUDA_COMMON_CUH
#define QLC_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>

namespace qlc {
namespace cuda {

using f16 = __half;
using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(f16 v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(bf16 v) { return __bfloat162float(v); }

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

__host__ __device__ constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
__host__ __device__ constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
__host__ __device__ constexpr int cmin(int a, int b) { return a < b ? a : b; }
__host__ __device__ constexpr int cmax(int a, int b) { return a > b ? a : b; }

/// Whether `p` is aligned to `bytes` (a power of two).
inline bool is_aligned(const void *p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) & static_cast<uintptr_t>(bytes - 1)) == 0;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o >>= 1)
    v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}
__device__ __forceinline__ float warp_min(float v) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o >>= 1)
    v = fminf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

/// Sum over the NT threads of a block (NT a multiple of 32); every thread gets the total.
/// `red` is NT/32 floats of shared memory; the call may follow another on the same `red`.
template <int NT> __device__ __forceinline__ float block_sum(float v, float *red) {
  static_assert(NT % kWarpSize == 0, "whole warps");
  v = warp_sum(v);
  if constexpr (NT == kWarpSize) {
    return v;
  } else {
    const int w = threadIdx.x / kWarpSize, l = threadIdx.x % kWarpSize;
    __syncthreads();
    if (l == 0)
      red[w] = v;
    __syncthreads();
    return warp_sum(l < NT / kWarpSize ? red[l] : 0.0f);
  }
}
/// An unsigned integer type of B bytes, for one wide load.
template <int B> struct RawOf;
template <> struct RawOf<16> { using type = uint4; };
template <> struct RawOf<8> { using type = uint2; };
template <> struct RawOf<4> { using type = unsigned int; };
template <> struct RawOf<2> { using type = unsigned short; };
template <> struct RawOf<1> { using type = unsigned char; };

/// Element i of a 32-bit word holding 4 / sizeof(T) elements of T, as f32.
template <class T> __device__ __forceinline__ float widen_word(unsigned w, int i);
template <> __device__ __forceinline__ float widen_word<float>(unsigned w, int) {
  return __uint_as_float(w);
}
template <> __device__ __forceinline__ float widen_word<f16>(unsigned w, int i) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(i == 0 ? w : w >> 16)));
}
template <> __device__ __forceinline__ float widen_word<bf16>(unsigned w, int i) {
  return __uint_as_float(i == 0 ? w << 16 : w & 0xffff0000u);
}

/// E consecutive elements of T at p (aligned to E * sizeof(T)) widened to f32, with one
/// load through the read-only cache.
template <int E, class T, class Raw>
__device__ __forceinline__ void widen_raw(const Raw &r, float (&out)[E]) {
  constexpr int B = E * static_cast<int>(sizeof(T));
  static_assert(sizeof(Raw) == B, "one raw load holds the unit");
  if constexpr (B >= 4) {
    constexpr int PER = 4 / static_cast<int>(sizeof(T));
    unsigned w[B / 4];
    memcpy(w, &r, B);
#pragma unroll
    for (int i = 0; i < E; ++i)
      out[i] = widen_word<T>(w[i / PER], i % PER);
  } else {
    out[0] = widen_word<T>(r, 0); // one 16-bit element in the low half
  }
}

template <int E, class T> __device__ __forceinline__ void load_f32(const T *p, float (&out)[E]) {
  using Raw = typename RawOf<E * static_cast<int>(sizeof(T))>::type;
  widen_raw<E, T>(__ldg(reinterpret_cast<const Raw *>(p)), out);
}

/// E consecutive floats from shared (or any) memory aligned to 4 * E (E = 1, 2, 4 or a
/// multiple of 4).
template <int E> __device__ __forceinline__ void load_smem(const float *p, float (&out)[E]) {
  if constexpr (E % 4 == 0) {
#pragma unroll
    for (int i = 0; i < E; i += 4) {
      const float4 v = *reinterpret_cast<const float4 *>(p + i);
      out[i] = v.x;
      out[i + 1] = v.y;
      out[i + 2] = v.z;
      out[i + 3] = v.w;
    }
  } else if constexpr (E == 2) {
    const float2 v = *reinterpret_cast<const float2 *>(p);
    out[0] = v.x;
    out[1] = v.y;
  } else {
#pragma unroll
    for (int i = 0; i < E; ++i)
      out[i] = p[i];
  }
}

/// The most elements of T (up to 16 bytes' worth) that one aligned load can take when
/// rows are K elements long: the largest power of two dividing K, capped.
template <class T, int K> constexpr int vec_elems() {
  int e = 16 / static_cast<int>(sizeof(T));
  while (e > 1 && K % e != 0)
    e /= 2;
  return e;
}

/// Programmatic dependent launch (sm_90 and newer), opt-in: QLC_CUDA_PDL=1 in the
/// environment launches every kernel of an sm_90 artifact (the generated code defines
/// QLC_CUDA_PDL for those) with programmatic stream serialization, so its blocks may start
/// while the previous kernel on the stream is still running. Every kernel therefore calls
/// pdl_wait() -- which returns once the previous kernel has completed and its writes are
/// visible -- in every thread before it reads anything another kernel wrote and before it
/// writes anything; only loads of constant data (weights) may come before it. Since each
/// kernel waits for its predecessor before it can complete, the waits chain: a kernel also
/// sees the writes of every earlier kernel. pdl_trigger() lets the next kernel be scheduled
/// once every block of this one has called it (or exited). Launched the usual way, or on
/// older architectures, both are no-ops. It is off by default: on an H200 it did not change
/// batch-1 decode of a 7B-shaped int4 model and made batch 16 13 % slower (docs/cuda.md).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
/// Both, for kernels with nothing to load before the wait.
__device__ __forceinline__ void pdl_enter() {
  pdl_trigger();
  pdl_wait();
}

#ifndef QLC_CUDA_PDL
#define QLC_CUDA_PDL 0
#endif

inline bool pdl_enabled() {
  static const bool on = [] {
    const char *e = std::getenv("QLC_CUDA_PDL");
    return QLC_CUDA_PDL != 0 && e != nullptr && std::atoi(e) != 0;
  }();
  return on;
}

/// Enqueues kernel<<<grid, block, smem, s>>>(args...), as a programmatic dependent launch
/// where pdl_enabled().
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                   Args &&...args) {
  if (pdl_enabled()) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
  } else {
    kernel<<<grid, block, smem, s>>>(std::forward<Args>(args)...);
  }
}

__device__ __forceinline__ unsigned smem_addr(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// 16 bytes global -> shared, the bytes past `src_bytes` (0 or 16) zero-filled.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}
/// 4 bytes global -> shared.
__device__ __forceinline__ void cp_async4(void *dst, const void *src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(dst)), "l"(src));
}
/// Waits until at most one committed group is still in flight.
__device__ __forceinline__ void cp_async_wait_one() {
  asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}

/// Blocks for a grid-stride loop over n items, at most `cap`.
inline unsigned grid_for(int64_t n, int threads, int64_t cap = 65535) {
  const int64_t b = ceil_div(n, threads);
  return static_cast<unsigned>(b < 1 ? 1 : (b > cap ? cap : b));
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_COMMON_CUH
