//===- CalibCuda.h - calibration on an NVIDIA GPU --------------*- C++ -*-===//
//
// The heavy arithmetic of calibrated quantization on a GPU: the float model's projections
// and attention (the calibration executor), the Hessians and GPTQ's factorization and
// column loop. The CPU code (CalibExecutor.cpp, Gptq.cpp) is the reference these follow
// step by step; test/unit/CalibCudaTest.cpp compares the two.
//
// This header is plain C++ (no CUDA, no MLIR): the implementation, CalibCuda.cu, is
// compiled by nvcc where the build finds one, and links the CUDA runtime statically;
// cuBLAS and cuSOLVER are opened with dlopen when a GPU is first used, so qlc runs on a
// machine without them (and without a GPU or a driver) and then calibrates on the CPU.
// Built without nvcc, CalibCudaNone.cpp says why there is no GPU.
//
#ifndef QLC_PASSES_CALIBCUDA_H
#define QLC_PASSES_CALIBCUDA_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qlc {
namespace calibcuda {

/// One GPTQ run, with everything the host decided (Gptq.cpp's quantizeGptq does the same
/// steps on the CPU): column order, dead columns, the damping added to the diagonal.
struct GptqJob {
  int64_t n = 0, k = 0;
  int bits = 4;
  int64_t groupSize = 0; // effective: k for one group a row
  bool symmetric = false;
  int64_t blockSize = 128;
  /// Group parameters from the unmodified weight up front (per channel or static groups);
  /// otherwise each group's when its first column comes up.
  bool fixedGroups = false;
  std::vector<int32_t> perm; // position -> natural column (identity without act-order)
  std::vector<uint8_t> dead; // natural column -> its Hessian diagonal was zero
  double damp = 0;           // added to the Hessian's diagonal
};

/// GPTQ's result in QuantUtil's "int" layout, plus the dequantized weight.
struct GptqResult {
  std::vector<uint8_t> qweight;   // [n, (k * bits + 7) / 8]
  std::vector<float> scales;      // [n, groups], f16 values
  std::vector<uint8_t> zeros;     // [n, groups] (symmetric: (maxq + 1) / 2)
  std::vector<float> dequantized; // [n, k] row-major: (code - zero) * scale
};

/// A float32 matrix [rows, cols], row-major, in GPU memory; freed with its last reference.
/// The calibration executor's values live in these when it runs on the GPU.
class Buffer {
public:
  Buffer() = default;
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
  ~Buffer();
  int64_t rows = 0, cols = 0;
  float *data = nullptr;
};
using BufferPtr = std::shared_ptr<Buffer>;

/// The GPU: the executor's ops on Buffers (each returns a new Buffer, or null with
/// `error`), the host-memory forms the tests use, and GPTQ.
class Device {
public:
  /// The first CUDA device, or null with the reason in `why` (this qlc was built without
  /// CUDA, there is no driver or no device, cuBLAS or cuSOLVER cannot be loaded).
  static std::unique_ptr<Device> open(std::string &why);
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  /// "NVIDIA H100 80GB HBM3 (sm_90)".
  const std::string &name() const;

  BufferPtr upload(const float *host, int64_t rows, int64_t cols, std::string &error);
  bool download(const Buffer &b, float *host, std::string &error);

  /// LlamaRMSNorm of each row: weight * (x / sqrt(mean(x^2) + eps)).
  BufferPtr rmsNorm(const Buffer &x, const float *weight, float eps, std::string &error);
  /// Rotate-half rope of each head of each row, at position row % seqLen, with the angles
  /// position * invFreq[j] (headDim / 2 of them).
  BufferPtr rope(const Buffer &x, const std::vector<float> &invFreq, int64_t headDim,
                 int64_t seqLen, std::string &error);
  /// silu(gate) * up.
  BufferPtr siluMul(const Buffer &gate, const Buffer &up, std::string &error);
  BufferPtr add(const Buffer &a, const Buffer &b, std::string &error);
  /// x w^T (+ bias) with the host weight w [n, x.cols] (row-major) and bias [n].
  BufferPtr linear(const Buffer &x, const float *w, int64_t n, const float *bias,
                   std::string &error);
  /// As the host form below.
  BufferPtr attention(const Buffer &q, const Buffer &k, const Buffer &v, int64_t samples,
                      int64_t seqLen, int64_t heads, int64_t kvHeads, int64_t headDim,
                      int64_t window, float scale, std::string &error);
  /// As the host form below.
  bool hessian(const Buffer &x, std::vector<double> &diag, std::string &error);

  /// y[rows, n] = x[rows, k] w[n, k]^T (+ bias[n]), f32 (cuBLAS SGEMM, no TF32).
  bool matmulT(const float *x, int64_t rows, int64_t k, const float *w, int64_t n,
               const float *bias, float *y, std::string &error);

  /// Causal (optionally windowed: window > 0) grouped-query attention of each of `samples`
  /// sequences of `seqLen` rows over itself; q [rows, heads * headDim], k and v
  /// [rows, kvHeads * headDim], out [rows, heads * headDim]; softmax(scale * q k^T) v.
  bool attention(const float *q, const float *k, const float *v, int64_t samples, int64_t seqLen,
                 int64_t heads, int64_t kvHeads, int64_t headDim, int64_t window, float scale,
                 float *out, std::string &error);

  /// H = x^T x in f64 (x [rows, k]), kept on the GPU for gptq(); `diag` gets its diagonal.
  bool hessian(const float *x, int64_t rows, int64_t k, std::vector<double> &diag,
               std::string &error);

  /// GPTQ of the row-major float weight w [n, k] with the last hessian(). Fails with a
  /// message when the damped Hessian is not positive definite.
  bool gptq(const float *w, const GptqJob &job, GptqResult &out, std::string &error);

  /// AWQ's statistics of a linear's input x: H = x^T x (f64, row-major [k, k], both
  /// triangles) and sum |x| per column (f64).
  bool awqStats(const Buffer &x, std::vector<double> &h, std::vector<double> &absSum,
                std::string &error);

  /// The output errors awqSearchScales compares (Awq.h): for each candidate s (scales[c],
  /// k values), the sum over the weights ws[i] ([ns[i], k], row-major) of
  /// sum_r d_r H d_r^T, D = W - Q(W diag(s)) diag(1/s) (RTN with bits, groupSize, symmetric),
  /// H = h [k, k] (f32, symmetric). D H is an f32 product here, as on the CPU.
  bool awqScaleErrors(const std::vector<const std::vector<float> *> &ws,
                      const std::vector<int64_t> &ns, int64_t k, const std::vector<float> &h,
                      const std::vector<std::vector<float>> &scales, int bits, int64_t groupSize,
                      bool symmetric, std::vector<double> &errors, std::string &error);

  /// awqClip (Awq.h) on w [n, k] in place: each (row, group) clamped to the range among
  /// absmax * (1 - step / grid), step < steps, whose quantization has the smallest error
  /// d H_gg d^T on its group's diagonal block of h.
  bool awqClip(std::vector<float> &w, int64_t n, int64_t k, const std::vector<float> &h, int bits,
               int64_t groupSize, bool symmetric, int64_t grid, int64_t steps, std::string &error);

  /// Frees the GPU memory held between calls (a calibrating pass calls it when done).
  void release();

private:
  struct Impl;
  explicit Device(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace calibcuda
} // namespace qlc

#endif // QLC_PASSES_CALIBCUDA_H
