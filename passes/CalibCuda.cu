//===- CalibCuda.cu - calibration on an NVIDIA GPU -------------------------===//
//
// Kernels and cuBLAS/cuSOLVER calls behind CalibCuda.h. Each step mirrors its CPU
// counterpart: matmulT and attention CalibExecutor.cpp's, hessian accumulateGram (here in
// f64 throughout), gptq Gptq.cpp's quantizeGptq (the same column order, group parameters,
// dead columns, damping, U = J R^-1 J, lazy block updates). Products that the CPU rounds
// before subtracting are rounded here too (__dmul_rn), so the in-block column loop gives
// the same numbers; the blocked products (cuBLAS vs Eigen) differ in summation order only.
//
#include "passes/CalibCudaImpl.cuh"

#include <algorithm>

namespace qlc {
namespace calibcuda {

using namespace detail;

namespace {

// ---- kernels ---------------------------------------------------------------------------

__global__ void addBiasKernel(float *y, int64_t rows, int64_t n, const float *bias) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < rows * n)
    y[i] = __fadd_rn(y[i], bias[i % n]);
}

/// Row by row (a warp each) of scores [heads * seqLen, seqLen]: the causal, windowed
/// softmax of scale * s, written back as probabilities (zero outside the window).
__global__ void softmaxKernel(float *s, int64_t rows, int64_t seqLen, int64_t window, float scale) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows)
    return;
  const int64_t i = row % seqLen, lo = window > 0 && i >= window ? i - window + 1 : 0;
  float *r = s + row * seqLen;
  float mx = -INFINITY;
  for (int64_t j = lo + lane; j <= i; j += 32)
    mx = fmaxf(mx, __fmul_rn(r[j], scale));
  for (int o = 16; o > 0; o /= 2)
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float den = 0.0f;
  for (int64_t j = lane; j < seqLen; j += 32) {
    const float p = j >= lo && j <= i ? expf(__fsub_rn(__fmul_rn(r[j], scale), mx)) : 0.0f;
    r[j] = p;
    den += p;
  }
  for (int o = 16; o > 0; o /= 2)
    den += __shfl_xor_sync(0xffffffffu, den, o);
  for (int64_t j = lane; j < seqLen; j += 32)
    r[j] = __fdiv_rn(r[j], den);
}

/// A block per row.
__global__ void rmsNormKernel(const float *x, int64_t cols, const float *w, float eps, float *y) {
  __shared__ float part[32];
  const float *xr = x + blockIdx.x * cols;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    ss = __fadd_rn(ss, __fmul_rn(xr[c], xr[c]));
  for (int o = 16; o > 0; o /= 2)
    ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (threadIdx.x % 32 == 0)
    part[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    ss = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o /= 2)
      ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (threadIdx.x == 0)
      part[0] = ss;
  }
  __syncthreads();
  const float inv =
      __fdiv_rn(1.0f, sqrtf(__fadd_rn(__fdiv_rn(part[0], static_cast<float>(cols)), eps)));
  float *yr = y + blockIdx.x * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    yr[c] = __fmul_rn(w[c], __fmul_rn(xr[c], inv));
}

/// A thread per rotated pair (row, head, j < headDim / 2).
__global__ void ropeKernel(const float *x, int64_t rows, int64_t cols, int64_t headDim,
                           int64_t seqLen, const float *invFreq, float *y) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t half = headDim / 2, perRow = cols / 2;
  if (idx >= rows * perRow)
    return;
  const int64_t t = idx / perRow, rem = idx % perRow, j = rem % half;
  const int64_t at = t * cols + (rem / half) * headDim + j;
  const float ang = __fmul_rn(static_cast<float>(t % seqLen), invFreq[j]);
  const float cs = cosf(ang), sn = sinf(ang), u = x[at], w = x[at + half];
  y[at] = __fsub_rn(__fmul_rn(u, cs), __fmul_rn(w, sn));
  y[at + half] = __fadd_rn(__fmul_rn(w, cs), __fmul_rn(u, sn));
}

__global__ void siluMulKernel(const float *g, const float *u, int64_t count, float *y) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count)
    y[i] = __fmul_rn(__fdiv_rn(g[i], __fadd_rn(1.0f, expf(-g[i]))), u[i]);
}

__global__ void addKernel(const float *a, const float *b, int64_t count, float *y) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count)
    y[i] = __fadd_rn(a[i], b[i]);
}

__global__ void toDoubleKernel(const float *x, double *y, int64_t count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count)
    y[i] = x[i];
}

__global__ void diagonalKernel(const double *h, int64_t k, double *d) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < k)
    d[i] = h[i * k + i];
}

/// W [n, k] column-major in column order `perm`, dead columns zeroed, from the row-major
/// float weight.
__global__ void loadWeightKernel(const float *w, int64_t n, int64_t k, const int32_t *perm,
                                 const uint8_t *dead, double *W) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * k)
    return;
  const int64_t r = i % n, j = i / n, c = perm[j];
  W[i] = dead[c] ? 0.0 : static_cast<double>(w[r * k + c]);
}

/// R = J P^T (H + damp I) P J, lower triangle (column-major), where P orders the columns
/// as `perm` and J reverses them; dead diagonals (zero) become 1 before damping. H holds
/// its lower triangle.
__global__ void buildRKernel(const double *H, int64_t k, const int32_t *perm, const uint8_t *dead,
                             double damp, double *R) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= k * k)
    return;
  const int64_t i = idx % k, j = idx / k;
  if (i < j) {
    R[idx] = 0.0;
    return;
  }
  const int64_t a = perm[k - 1 - i], b = perm[k - 1 - j];
  if (a == b) {
    R[idx] = (dead[a] ? 1.0 : H[a * k + a]) + damp;
    return;
  }
  const int64_t lo = a > b ? a : b, hi = a > b ? b : a;
  R[idx] = H[hi * k + lo];
}

__global__ void identityKernel(double *X, int64_t k) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx < k * k)
    X[idx] = idx % k == idx / k ? 1.0 : 0.0;
}

/// U = J X J (upper triangular) from the lower triangular X = R^-1.
__global__ void reverseKernel(const double *X, int64_t k, double *U) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= k * k)
    return;
  const int64_t i = idx % k, j = idx / k;
  U[idx] = i <= j ? X[(k - 1 - j) * k + (k - 1 - i)] : 0.0;
}

/// Scale and zero of groups [g0, g1) of every row, from the natural columns of each group
/// (at positions colmap[c], or c), as QuantUtil's groupScaleZero computes them.
__global__ void groupParamsKernel(const double *W, int64_t n, int64_t k, const int32_t *colmap,
                                  int64_t gs, int64_t g0, int64_t groups, int maxq, bool symmetric,
                                  float *scale, uint8_t *zero) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t g = g0 + blockIdx.y;
  if (r >= n)
    return;
  float lo = 0.0f, hi = 0.0f;
  const int64_t end = min(k, (g + 1) * gs);
  for (int64_t c = g * gs; c < end; ++c) {
    const float v = static_cast<float>(W[(colmap ? colmap[c] : c) * n + r]);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  float s;
  int z;
  groupScaleZero(lo, hi, maxq, symmetric, s, z);
  scale[r * groups + g] = s;
  zero[r * groups + g] = static_cast<uint8_t>(z);
}

/// GPTQ's column loop over positions [i1, i1 + count), a thread per row: quantize the
/// column, spread its error over the rest of the block (W in place), keep the errors for
/// the lazy update of the columns after the block.
__global__ void gptqBlockKernel(double *W, int64_t n, const double *U, int64_t k, int64_t i1,
                                int64_t count, const int32_t *perm, int64_t gs, int64_t groups,
                                const float *gscale, const uint8_t *gzero, int maxq, uint8_t *codes,
                                double *err) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= n)
    return;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i1 + i, nat = perm[j], g = r * groups + nat / gs;
    const double scale = gscale[g], zero = gzero[g], w = W[j * n + r];
    const double code = fmin(fmax(rint(w / scale) + zero, 0.0), static_cast<double>(maxq));
    codes[nat * n + r] = static_cast<uint8_t>(code);
    const double e = (w - __dmul_rn(scale, code - zero)) / U[j * k + j];
    err[i * n + r] = e;
    for (int64_t c = i + 1; c < count; ++c) {
      double &t = W[(i1 + c) * n + r];
      t = __dsub_rn(t, __dmul_rn(e, U[(i1 + c) * k + j]));
    }
  }
}

/// Codes [k, n] (natural column-major) into rows of packed bytes (4 bits: low nibble first).
__global__ void packKernel(const uint8_t *codes, int64_t n, int64_t k, int bits, int64_t rowBytes,
                           uint8_t *qweight) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * rowBytes)
    return;
  const int64_t r = i % n, b = i / n;
  uint8_t v;
  if (bits == 8) {
    v = codes[b * n + r];
  } else {
    v = codes[2 * b * n + r];
    if (2 * b + 1 < k)
      v |= static_cast<uint8_t>(codes[(2 * b + 1) * n + r] << 4);
  }
  qweight[r * rowBytes + b] = v;
}

/// (code - zero) * scale, row-major [n, k], as QuantUtil's dequantizeInt.
__global__ void dequantKernel(const uint8_t *codes, int64_t n, int64_t k, int64_t gs,
                              int64_t groups, const float *gscale, const uint8_t *gzero,
                              float *out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * k)
    return;
  const int64_t r = i / k, c = i % k, g = r * groups + c / gs;
  out[i] = __fmul_rn(static_cast<float>(static_cast<int>(codes[c * n + r]) - gzero[g]), gscale[g]);
}

} // namespace

Buffer::~Buffer() {
  if (data != nullptr)
    cudaFree(data);
}

Device::Device(std::unique_ptr<Impl> i) : impl(std::move(i)) {}
Device::~Device() = default;

const std::string &Device::name() const { return impl->name; }

void Device::release() { impl->release(); }

std::unique_ptr<Device> Device::open(std::string &why) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    why = e != cudaSuccess
              ? std::string("no usable CUDA driver or device: ") + cudaGetErrorString(e)
              : "no CUDA device";
    cudaGetLastError();
    return nullptr;
  }
  cudaDeviceProp prop;
  if (cudaSetDevice(0) != cudaSuccess || cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    why = "cannot use CUDA device 0";
    cudaGetLastError();
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  if (!impl->libs.load(why))
    return nullptr;
  if (impl->libs.create(&impl->blas) != CUBLAS_STATUS_SUCCESS ||
      impl->libs.solverCreate(&impl->solver) != CUSOLVER_STATUS_SUCCESS) {
    why = "cannot create a cuBLAS or cuSOLVER handle";
    return nullptr;
  }
  impl->name = std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
               std::to_string(prop.minor) + ")";
  return std::unique_ptr<Device>(new Device(std::move(impl)));
}

BufferPtr Device::upload(const float *host, int64_t rows, int64_t cols, std::string &error) {
  BufferPtr b = newBuffer(rows, cols, error);
  if (b)
    QLC_CUDA_OK(cudaMemcpy(b->data, host, rows * cols * 4, cudaMemcpyHostToDevice));
  return b;
}

bool Device::download(const Buffer &b, float *host, std::string &error) {
  QLC_CUDA_OK(cudaMemcpy(host, b.data, b.rows * b.cols * 4, cudaMemcpyDeviceToHost));
  return true;
}

BufferPtr Device::rmsNorm(const Buffer &x, const float *weight, float eps, std::string &error) {
  Impl &m = *impl;
  BufferPtr y = newBuffer(x.rows, x.cols, error);
  if (!y || !m.w.ensure(x.cols * 4, error))
    return {};
  QLC_CUDA_OK(cudaMemcpy(m.w.p, weight, x.cols * 4, cudaMemcpyHostToDevice));
  rmsNormKernel<<<static_cast<unsigned>(x.rows), 256>>>(x.data, x.cols, m.w.as<float>(), eps,
                                                        y->data);
  QLC_LAUNCHED();
  return y;
}

BufferPtr Device::rope(const Buffer &x, const std::vector<float> &invFreq, int64_t headDim,
                       int64_t seqLen, std::string &error) {
  Impl &m = *impl;
  BufferPtr y = newBuffer(x.rows, x.cols, error);
  if (!y || !m.bias.ensure(invFreq.size() * 4, error))
    return {};
  QLC_CUDA_OK(cudaMemcpy(m.bias.p, invFreq.data(), invFreq.size() * 4, cudaMemcpyHostToDevice));
  const int64_t pairs = x.rows * (x.cols / 2);
  ropeKernel<<<blocksFor(pairs), kThreads>>>(x.data, x.rows, x.cols, headDim, seqLen,
                                             m.bias.as<float>(), y->data);
  QLC_LAUNCHED();
  return y;
}

BufferPtr Device::siluMul(const Buffer &gate, const Buffer &up, std::string &error) {
  BufferPtr y = newBuffer(gate.rows, gate.cols, error);
  if (!y)
    return {};
  siluMulKernel<<<blocksFor(gate.rows * gate.cols), kThreads>>>(gate.data, up.data,
                                                                gate.rows * gate.cols, y->data);
  QLC_LAUNCHED();
  return y;
}

BufferPtr Device::add(const Buffer &a, const Buffer &b, std::string &error) {
  BufferPtr y = newBuffer(a.rows, a.cols, error);
  if (!y)
    return {};
  addKernel<<<blocksFor(a.rows * a.cols), kThreads>>>(a.data, b.data, a.rows * a.cols, y->data);
  QLC_LAUNCHED();
  return y;
}

BufferPtr Device::linear(const Buffer &x, const float *w, int64_t n, const float *bias,
                         std::string &error) {
  Impl &m = *impl;
  const int64_t rows = x.rows, k = x.cols;
  BufferPtr y = newBuffer(rows, n, error);
  if (!y || !m.w.ensure(n * k * 4, error) || (bias && !m.bias.ensure(n * 4, error)))
    return {};
  QLC_CUDA_OK(cudaMemcpy(m.w.p, w, n * k * 4, cudaMemcpyHostToDevice));
  const float one = 1.0f, zero = 0.0f;
  // Column-major: y^T [n, rows] = w [n, k] x^T [k, rows].
  QLC_BLAS_OK(m.libs.sgemm(m.blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                           static_cast<int>(rows), static_cast<int>(k), &one, m.w.as<float>(),
                           static_cast<int>(k), x.data, static_cast<int>(k), &zero, y->data,
                           static_cast<int>(n)));
  if (bias != nullptr) {
    QLC_CUDA_OK(cudaMemcpy(m.bias.p, bias, n * 4, cudaMemcpyHostToDevice));
    addBiasKernel<<<blocksFor(rows * n), kThreads>>>(y->data, rows, n, m.bias.as<float>());
    QLC_LAUNCHED();
  }
  return y;
}

BufferPtr Device::attention(const Buffer &q, const Buffer &k, const Buffer &v, int64_t samples,
                            int64_t seqLen, int64_t heads, int64_t kvHeads, int64_t headDim,
                            int64_t window, float scale, std::string &error) {
  Impl &m = *impl;
  const int64_t rows = samples * seqLen, qc = heads * headDim, kc = kvHeads * headDim;
  const int64_t perGroup = heads / kvHeads, sq = seqLen * seqLen;
  BufferPtr out = newBuffer(rows, qc, error);
  if (!out || !m.s.ensure(heads * sq * 4, error))
    return {};
  const float one = 1.0f, zero = 0.0f;
  const int L = static_cast<int>(seqLen), D = static_cast<int>(headDim);
  // With one query head a KV head, all heads are one batch; otherwise a batch per KV head
  // over its query heads, which all read the same k and v (stride 0).
  const int64_t calls = perGroup == 1 ? 1 : kvHeads, batch = perGroup == 1 ? heads : perGroup;
  const int64_t kvStride = perGroup == 1 ? headDim : 0;
  for (int64_t smp = 0; smp < samples; ++smp) {
    const float *qs = q.data + smp * seqLen * qc;
    const float *ks = k.data + smp * seqLen * kc;
    const float *vs = v.data + smp * seqLen * kc;
    float *os = out->data + smp * seqLen * qc;
    for (int64_t g = 0; g < calls; ++g) {
      // Column-major: scores^T [L keys, L queries] = k [L, D] q^T [D, L]; row-major that is
      // scores [query, key].
      QLC_BLAS_OK(m.libs.sgemmBatched(
          m.blas, CUBLAS_OP_T, CUBLAS_OP_N, L, L, D, &one, ks + g * headDim, static_cast<int>(kc),
          kvStride, qs + g * batch * headDim, static_cast<int>(qc), headDim, &zero,
          m.s.as<float>() + g * batch * sq, L, sq, static_cast<int>(batch)));
    }
    const int64_t srows = heads * seqLen;
    softmaxKernel<<<static_cast<int>((srows * 32 + kThreads - 1) / kThreads), kThreads>>>(
        m.s.as<float>(), srows, seqLen, window, scale);
    QLC_LAUNCHED();
    for (int64_t g = 0; g < calls; ++g) {
      // out^T [D, L queries] = v^T [D, L keys] p^T [L keys, L queries].
      QLC_BLAS_OK(m.libs.sgemmBatched(
          m.blas, CUBLAS_OP_N, CUBLAS_OP_N, D, L, L, &one, vs + g * headDim, static_cast<int>(kc),
          kvStride, m.s.as<float>() + g * batch * sq, L, sq, &zero, os + g * batch * headDim,
          static_cast<int>(qc), headDim, static_cast<int>(batch)));
    }
  }
  return out;
}

bool Device::hessian(const Buffer &x, std::vector<double> &diag, std::string &error) {
  Impl &m = *impl;
  const int64_t rows = x.rows, k = x.cols;
  m.hk = 0;
  if (!m.xd.ensure(rows * k * 8, error) || !m.H.ensure(k * k * 8, error) ||
      !m.diag.ensure(k * 8, error))
    return false;
  toDoubleKernel<<<blocksFor(rows * k), kThreads>>>(x.data, m.xd.as<double>(), rows * k);
  QLC_LAUNCHED();
  const double one = 1.0, zero = 0.0;
  // Column-major x^T is [k, rows]: H = x^T (x^T)^T, lower triangle.
  QLC_BLAS_OK(m.libs.dsyrk(m.blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, static_cast<int>(k),
                           static_cast<int>(rows), &one, m.xd.as<double>(), static_cast<int>(k),
                           &zero, m.H.as<double>(), static_cast<int>(k)));
  diagonalKernel<<<blocksFor(k), kThreads>>>(m.H.as<double>(), k, m.diag.as<double>());
  QLC_LAUNCHED();
  diag.resize(k);
  QLC_CUDA_OK(cudaMemcpy(diag.data(), m.diag.p, k * 8, cudaMemcpyDeviceToHost));
  m.hk = k;
  return true;
}

bool Device::matmulT(const float *x, int64_t rows, int64_t k, const float *w, int64_t n,
                     const float *bias, float *y, std::string &error) {
  BufferPtr dx = upload(x, rows, k, error);
  BufferPtr dy = dx ? linear(*dx, w, n, bias, error) : nullptr;
  return dy && download(*dy, y, error);
}

bool Device::attention(const float *q, const float *k, const float *v, int64_t samples,
                       int64_t seqLen, int64_t heads, int64_t kvHeads, int64_t headDim,
                       int64_t window, float scale, float *out, std::string &error) {
  const int64_t rows = samples * seqLen;
  BufferPtr dq = upload(q, rows, heads * headDim, error);
  BufferPtr dk = dq ? upload(k, rows, kvHeads * headDim, error) : nullptr;
  BufferPtr dv = dk ? upload(v, rows, kvHeads * headDim, error) : nullptr;
  BufferPtr o =
      dv ? attention(*dq, *dk, *dv, samples, seqLen, heads, kvHeads, headDim, window, scale, error)
         : nullptr;
  return o && download(*o, out, error);
}

bool Device::hessian(const float *x, int64_t rows, int64_t k, std::vector<double> &diag,
                     std::string &error) {
  impl->hk = 0;
  BufferPtr dx = upload(x, rows, k, error);
  return dx && hessian(*dx, diag, error);
}

bool Device::gptq(const float *w, const GptqJob &job, GptqResult &out, std::string &error) {
  Impl &m = *impl;
  const int64_t n = job.n, k = job.k, gs = job.groupSize, groups = (k + gs - 1) / gs;
  const int maxq = (1 << job.bits) - 1;
  const int64_t rowBytes = (k * job.bits + 7) / 8;
  if (m.hk != k) {
    error = "no Hessian of size " + std::to_string(k) + " on the GPU";
    return false;
  }
  if (static_cast<int64_t>(job.perm.size()) != k || static_cast<int64_t>(job.dead.size()) != k) {
    error = "column order or dead columns of the wrong size";
    return false;
  }
  std::vector<int32_t> pinv(k);
  for (int64_t j = 0; j < k; ++j)
    pinv[job.perm[j]] = static_cast<int32_t>(j);
  if (!m.wf.ensure(n * k * 4, error) || !m.Wd.ensure(n * k * 8, error) ||
      !m.R.ensure(k * k * 8, error) || !m.X.ensure(k * k * 8, error) ||
      !m.err.ensure(n * job.blockSize * 8, error) || !m.codes.ensure(n * k, error) ||
      !m.perm.ensure(k * 4, error) || !m.pinv.ensure(k * 4, error) || !m.dead.ensure(k, error) ||
      !m.gscale.ensure(n * groups * 4, error) || !m.gzero.ensure(n * groups, error) ||
      !m.packed.ensure(n * rowBytes, error) || !m.deq.ensure(n * k * 4, error) ||
      !m.info.ensure(sizeof(int), error))
    return false;
  QLC_CUDA_OK(cudaMemcpy(m.wf.p, w, n * k * 4, cudaMemcpyHostToDevice));
  QLC_CUDA_OK(cudaMemcpy(m.perm.p, job.perm.data(), k * 4, cudaMemcpyHostToDevice));
  QLC_CUDA_OK(cudaMemcpy(m.pinv.p, pinv.data(), k * 4, cudaMemcpyHostToDevice));
  QLC_CUDA_OK(cudaMemcpy(m.dead.p, job.dead.data(), k, cudaMemcpyHostToDevice));
  double *W = m.Wd.as<double>(), *R = m.R.as<double>(), *X = m.X.as<double>();
  const int32_t *perm = m.perm.as<int32_t>();
  loadWeightKernel<<<blocksFor(n * k), kThreads>>>(m.wf.as<float>(), n, k, perm,
                                                   m.dead.as<uint8_t>(), W);
  QLC_LAUNCHED();
  if (job.fixedGroups) {
    groupParamsKernel<<<dim3(blocksFor(n), static_cast<unsigned>(groups)), kThreads>>>(
        W, n, k, m.pinv.as<int32_t>(), gs, 0, groups, maxq, job.symmetric, m.gscale.as<float>(),
        m.gzero.as<uint8_t>());
    QLC_LAUNCHED();
  }

  // U, the upper factor of H^-1, as J R^-1 J with R the lower Cholesky factor of J H J.
  buildRKernel<<<blocksFor(k * k), kThreads>>>(m.H.as<double>(), k, perm, m.dead.as<uint8_t>(),
                                               job.damp, R);
  QLC_LAUNCHED();
  int lwork = 0;
  QLC_BLAS_OK(m.libs.potrfSize(m.solver, CUBLAS_FILL_MODE_LOWER, static_cast<int>(k), R,
                               static_cast<int>(k), &lwork));
  if (!m.work.ensure(static_cast<size_t>(std::max(lwork, 1)) * 8, error))
    return false;
  QLC_BLAS_OK(m.libs.potrf(m.solver, CUBLAS_FILL_MODE_LOWER, static_cast<int>(k), R,
                           static_cast<int>(k), m.work.as<double>(), lwork, m.info.as<int>()));
  int info = 0;
  QLC_CUDA_OK(cudaMemcpy(&info, m.info.p, sizeof(int), cudaMemcpyDeviceToHost));
  if (info != 0) {
    error = "the damped Hessian is not positive definite (raise damp-percent)";
    return false;
  }
  identityKernel<<<blocksFor(k * k), kThreads>>>(X, k);
  QLC_LAUNCHED();
  const double one = 1.0, minusOne = -1.0;
  QLC_BLAS_OK(m.libs.dtrsm(m.blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                           CUBLAS_DIAG_NON_UNIT, static_cast<int>(k), static_cast<int>(k), &one, R,
                           static_cast<int>(k), X, static_cast<int>(k)));
  double *U = R; // R is no longer needed
  reverseKernel<<<blocksFor(k * k), kThreads>>>(X, k, U);
  QLC_LAUNCHED();

  for (int64_t i1 = 0; i1 < k; i1 += job.blockSize) {
    const int64_t i2 = std::min(i1 + job.blockSize, k), count = i2 - i1;
    if (!job.fixedGroups) { // groups whose first column is in this block, from W as it is
      const int64_t g0 = (i1 + gs - 1) / gs, g1 = (i2 - 1) / gs + 1;
      if (g0 < g1) {
        groupParamsKernel<<<dim3(blocksFor(n), static_cast<unsigned>(g1 - g0)), kThreads>>>(
            W, n, k, nullptr, gs, g0, groups, maxq, job.symmetric, m.gscale.as<float>(),
            m.gzero.as<uint8_t>());
        QLC_LAUNCHED();
      }
    }
    gptqBlockKernel<<<blocksFor(n), kThreads>>>(W, n, U, k, i1, count, perm, gs, groups,
                                                m.gscale.as<float>(), m.gzero.as<uint8_t>(), maxq,
                                                m.codes.as<uint8_t>(), m.err.as<double>());
    QLC_LAUNCHED();
    if (i2 < k)
      QLC_BLAS_OK(m.libs.dgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n),
                               static_cast<int>(k - i2), static_cast<int>(count), &minusOne,
                               m.err.as<double>(), static_cast<int>(n), U + i2 * k + i1,
                               static_cast<int>(k), &one, W + i2 * n, static_cast<int>(n)));
  }
  packKernel<<<blocksFor(n * rowBytes), kThreads>>>(m.codes.as<uint8_t>(), n, k, job.bits, rowBytes,
                                                    m.packed.as<uint8_t>());
  QLC_LAUNCHED();
  dequantKernel<<<blocksFor(n * k), kThreads>>>(m.codes.as<uint8_t>(), n, k, gs, groups,
                                                m.gscale.as<float>(), m.gzero.as<uint8_t>(),
                                                m.deq.as<float>());
  QLC_LAUNCHED();
  out.qweight.resize(n * rowBytes);
  out.scales.resize(n * groups);
  out.zeros.resize(n * groups);
  out.dequantized.resize(n * k);
  QLC_CUDA_OK(cudaMemcpy(out.qweight.data(), m.packed.p, n * rowBytes, cudaMemcpyDeviceToHost));
  QLC_CUDA_OK(cudaMemcpy(out.scales.data(), m.gscale.p, n * groups * 4, cudaMemcpyDeviceToHost));
  QLC_CUDA_OK(cudaMemcpy(out.zeros.data(), m.gzero.p, n * groups, cudaMemcpyDeviceToHost));
  QLC_CUDA_OK(cudaMemcpy(out.dequantized.data(), m.deq.p, n * k * 4, cudaMemcpyDeviceToHost));
  return true;
}

} // namespace calibcuda
} // namespace qlc
