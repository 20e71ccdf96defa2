//===- CalibCudaAwq.cu - AWQ's searches on an NVIDIA GPU -------------------===//
//
// The statistics, the scale search's output errors and the clipping search of Awq.cpp,
// step for step: the same RTN (QuantUtil's conventions, in f32 with the CPU's rounding),
// the same candidates and the same choice (the first smallest error). The errors' products
// with H are cuBLAS SGEMMs (f32, as Eigen's on the CPU), summed in f64; the clipping search
// takes its group blocks of H the same way (a batched SGEMM) where the CPU sums in f64.
//
#include "passes/CalibCudaImpl.cuh"

#include <algorithm>

namespace qlc {
namespace calibcuda {

using namespace detail;

namespace {

__global__ void absSumKernel(const float *x, int64_t rows, int64_t k, double *sum) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= k)
    return;
  double s = 0;
  for (int64_t r = 0; r < rows; ++r)
    s += fabsf(x[r * k + c]);
  sum[c] = s;
}

/// Copies the lower triangle of H (column-major) onto the upper one.
__global__ void symmetrizeKernel(double *H, int64_t k) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= k * k)
    return;
  const int64_t i = idx % k, j = idx / k;
  if (i < j)
    H[idx] = H[i * k + j];
}

/// The (row, group) of [n, k] in groups of gs columns that this thread handles (a thread
/// each): its index idx among n x groups, its row and its columns [b, e); `valid` false for
/// the threads past the end.
struct RowGroup {
  int64_t groups, idx, r, b, e;
  bool valid;
  __device__ RowGroup(int64_t n, int64_t k, int64_t gs)
      : groups((k + gs - 1) / gs), idx(blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x),
        r(idx / groups), b((idx % groups) * gs), e(min(k, b + gs)), valid(idx < n * groups) {}
};

/// Round-to-nearest of one (row, group) of the values value(c) as QuantUtil's quantizeRtn
/// (the range, scale and zero, then each code in f32); out(c, code, zero, scale) per column.
template <class Value, class Out>
__device__ void rtnGroup(const RowGroup &g, int maxq, bool symmetric, Value value, Out out) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t c = g.b; c < g.e; ++c) {
    const float v = value(c);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  float scale;
  int z;
  groupScaleZero(lo, hi, maxq, symmetric, scale, z);
  for (int64_t c = g.b; c < g.e; ++c) {
    const float code =
        fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(value(c), scale)), static_cast<float>(z)), 0.0f),
              static_cast<float>(maxq));
    out(c, code, z, scale);
  }
}

/// D = W - Q(W diag(s)) diag(1/s), a thread per (row, group): Awq.cpp's awqScaledRtn.
__global__ void scaledDiffKernel(const float *w, int64_t n, int64_t k, const float *s, int64_t gs,
                                 int maxq, bool symmetric, float *d) {
  const RowGroup g(n, k, gs);
  if (!g.valid)
    return;
  const float *row = w + g.r * k;
  rtnGroup(
      g, maxq, symmetric, [&](int64_t c) { return __fmul_rn(row[c], s[c]); },
      [&](int64_t c, float code, int z, float scale) {
        const float q = __fmul_rn(static_cast<float>(static_cast<int>(code) - z), scale);
        d[g.r * k + c] = __fsub_rn(row[c], __fdiv_rn(q, s[c]));
      });
}

/// out[0] += sum_i a_i b_i (f32 products, f64 sum).
__global__ void dotKernel(const float *a, const float *b, int64_t count, double *out) {
  double acc = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    acc += __fmul_rn(a[i], b[i]);
  for (int o = 16; o > 0; o /= 2)
    acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (threadIdx.x % 32 == 0)
    atomicAdd(out, acc);
}

/// The clipping range of a (row, group) at `step`: absmax * (1 - step / grid).
__device__ float clipRange(const float *row, const RowGroup &g, int64_t step, int64_t grid) {
  float absMax = 0.0f;
  for (int64_t c = g.b; c < g.e; ++c)
    absMax = fmaxf(absMax, fabsf(row[c]));
  return __fmul_rn(absMax,
                   __fsub_rn(1.0f, __fdiv_rn(static_cast<float>(step), static_cast<float>(grid))));
}

/// D = Q(clamp(W, -m, m)) - W at one step, a thread per (row, group).
__global__ void clipDiffKernel(const float *w, int64_t n, int64_t k, int64_t gs, int64_t step,
                               int64_t grid, int maxq, bool symmetric, float *d) {
  const RowGroup g(n, k, gs);
  if (!g.valid)
    return;
  const float *row = w + g.r * k;
  const float m = clipRange(row, g, step, grid);
  rtnGroup(
      g, maxq, symmetric, [&](int64_t c) { return fminf(fmaxf(row[c], -m), m); },
      [&](int64_t c, float code, int z, float scale) {
        d[g.r * k + c] =
            __fsub_rn(__fmul_rn(__fsub_rn(code, static_cast<float>(z)), scale), row[c]);
      });
}

/// err[idx] = sum over the (row, group)'s columns of (D H_gg)_c D_c.
__global__ void groupErrKernel(const float *d, const float *dh, int64_t n, int64_t k, int64_t gs,
                               double *err) {
  const RowGroup g(n, k, gs);
  if (!g.valid)
    return;
  double e = 0;
  for (int64_t c = g.b; c < g.e; ++c)
    e += static_cast<double>(dh[g.r * k + c]) * d[g.r * k + c];
  err[g.idx] = e;
}

/// Clamps each (row, group) to its best step's range (the first smallest error).
__global__ void clipPickKernel(float *w, int64_t n, int64_t k, int64_t gs, int64_t grid,
                               int64_t steps, const double *err) {
  const RowGroup g(n, k, gs);
  if (!g.valid)
    return;
  float *row = w + g.r * k;
  double best = INFINITY;
  float bestMax = clipRange(row, g, 0, grid);
  for (int64_t step = 0; step < steps; ++step) {
    const double e = err[step * n * g.groups + g.idx];
    if (e < best) {
      best = e;
      bestMax = clipRange(row, g, step, grid);
    }
  }
  for (int64_t c = g.b; c < g.e; ++c)
    row[c] = fminf(fmaxf(row[c], -bestMax), bestMax);
}

} // namespace

bool Device::awqStats(const Buffer &x, std::vector<double> &h, std::vector<double> &absSum,
                      std::string &error) {
  Impl &m = *impl;
  const int64_t k = x.cols;
  std::vector<double> diag;
  if (!hessian(x, diag, error) || !m.asum.ensure(k * 8, error))
    return false;
  symmetrizeKernel<<<blocksFor(k * k), kThreads>>>(m.H.as<double>(), k);
  QLC_LAUNCHED();
  absSumKernel<<<blocksFor(k), kThreads>>>(x.data, x.rows, k, m.asum.as<double>());
  QLC_LAUNCHED();
  h.resize(k * k);
  absSum.resize(k);
  QLC_CUDA_OK(cudaMemcpy(h.data(), m.H.p, k * k * 8, cudaMemcpyDeviceToHost));
  QLC_CUDA_OK(cudaMemcpy(absSum.data(), m.asum.p, k * 8, cudaMemcpyDeviceToHost));
  m.hk = 0; // H is symmetrized: not GPTQ's any more
  return true;
}

bool Device::awqScaleErrors(const std::vector<const std::vector<float> *> &ws,
                            const std::vector<int64_t> &ns, int64_t k, const std::vector<float> &h,
                            const std::vector<std::vector<float>> &scales, int bits,
                            int64_t groupSize, bool symmetric, std::vector<double> &errors,
                            std::string &error) {
  Impl &m = *impl;
  const int64_t count = static_cast<int64_t>(scales.size());
  int64_t maxN = 0;
  for (int64_t n : ns)
    maxN = std::max(maxN, n);
  if (!m.ah.ensure(k * k * 4, error) || !m.as.ensure(count * k * 4, error) ||
      !m.aw.ensure(maxN * k * 4, error) || !m.ad.ensure(maxN * k * 4, error) ||
      !m.ac.ensure(maxN * k * 4, error) || !m.aerr.ensure(count * 8, error))
    return false;
  QLC_CUDA_OK(cudaMemcpy(m.ah.p, h.data(), k * k * 4, cudaMemcpyHostToDevice));
  for (int64_t c = 0; c < count; ++c)
    QLC_CUDA_OK(
        cudaMemcpy(m.as.as<float>() + c * k, scales[c].data(), k * 4, cudaMemcpyHostToDevice));
  QLC_CUDA_OK(cudaMemset(m.aerr.p, 0, count * 8));
  const int maxq = (1 << bits) - 1;
  const float one = 1.0f, zero = 0.0f;
  for (size_t i = 0; i < ws.size(); ++i) {
    const int64_t n = ns[i], groups = (k + groupSize - 1) / groupSize;
    QLC_CUDA_OK(cudaMemcpy(m.aw.p, ws[i]->data(), n * k * 4, cudaMemcpyHostToDevice));
    for (int64_t c = 0; c < count; ++c) {
      scaledDiffKernel<<<blocksFor(n * groups), kThreads>>>(m.aw.as<float>(), n, k,
                                                            m.as.as<float>() + c * k, groupSize,
                                                            maxq, symmetric, m.ad.as<float>());
      QLC_LAUNCHED();
      // Column-major: (D H)^T [k, n] = H^T [k, k] D^T [k, n] (H is symmetric).
      QLC_BLAS_OK(m.libs.sgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(k),
                               static_cast<int>(n), static_cast<int>(k), &one, m.ah.as<float>(),
                               static_cast<int>(k), m.ad.as<float>(), static_cast<int>(k), &zero,
                               m.ac.as<float>(), static_cast<int>(k)));
      dotKernel<<<1024, 256>>>(m.ad.as<float>(), m.ac.as<float>(), n * k, m.aerr.as<double>() + c);
      QLC_LAUNCHED();
    }
  }
  errors.resize(count);
  QLC_CUDA_OK(cudaMemcpy(errors.data(), m.aerr.p, count * 8, cudaMemcpyDeviceToHost));
  return true;
}

bool Device::awqClip(std::vector<float> &w, int64_t n, int64_t k, const std::vector<float> &h,
                     int bits, int64_t gs, bool symmetric, int64_t grid, int64_t steps,
                     std::string &error) {
  Impl &m = *impl;
  const int64_t groups = (k + gs - 1) / gs, full = k / gs, rest = k - full * gs;
  if (steps <= 0)
    return true;
  if (!m.ah.ensure(k * k * 4, error) || !m.aw.ensure(n * k * 4, error) ||
      !m.ad.ensure(n * k * 4, error) || !m.ac.ensure(n * k * 4, error) ||
      !m.aerr.ensure(steps * n * groups * 8, error))
    return false;
  QLC_CUDA_OK(cudaMemcpy(m.ah.p, h.data(), k * k * 4, cudaMemcpyHostToDevice));
  QLC_CUDA_OK(cudaMemcpy(m.aw.p, w.data(), n * k * 4, cudaMemcpyHostToDevice));
  const int maxq = (1 << bits) - 1;
  const float one = 1.0f, zero = 0.0f;
  const float *H = m.ah.as<float>(), *D = m.ad.as<float>();
  float *C = m.ac.as<float>();
  const int K = static_cast<int>(k), N = static_cast<int>(n);
  for (int64_t step = 0; step < steps; ++step) {
    clipDiffKernel<<<blocksFor(n * groups), kThreads>>>(m.aw.as<float>(), n, k, gs, step, grid,
                                                        maxq, symmetric, m.ad.as<float>());
    QLC_LAUNCHED();
    // Per group g (columns [b, b + len)): (D_g H_gg)^T = H_gg^T D_g^T, column-major views
    // of the row-major matrices with leading dimension k.
    if (full > 0)
      QLC_BLAS_OK(m.libs.sgemmBatched(m.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(gs), N,
                                      static_cast<int>(gs), &one, H, K, gs * k + gs, D, K, gs,
                                      &zero, C, K, gs, static_cast<int>(full)));
    if (rest > 0) {
      const int64_t b = full * gs;
      QLC_BLAS_OK(m.libs.sgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(rest), N,
                               static_cast<int>(rest), &one, H + b * k + b, K, D + b, K, &zero,
                               C + b, K));
    }
    groupErrKernel<<<blocksFor(n * groups), kThreads>>>(D, C, n, k, gs,
                                                        m.aerr.as<double>() + step * n * groups);
    QLC_LAUNCHED();
  }
  clipPickKernel<<<blocksFor(n * groups), kThreads>>>(m.aw.as<float>(), n, k, gs, grid, steps,
                                                      m.aerr.as<double>());
  QLC_LAUNCHED();
  QLC_CUDA_OK(cudaMemcpy(w.data(), m.aw.p, n * k * 4, cudaMemcpyDeviceToHost));
  return true;
}

} // namespace calibcuda
} // namespace qlc
