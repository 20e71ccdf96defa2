//===- Gptq.h - the GPTQ algorithm on one weight matrix --------*- C++ -*-===//
//
// GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"), as the authors' gptq.py and AutoGPTQ run it: columns are
// quantized one at a time and the rounding error of each is spread over the columns not
// yet quantized through the upper Cholesky factor of the inverse Hessian; updates are
// applied lazily, a block of columns at a time.
//
// The result is in QuantUtil's "int" format (AutoGPTQ's scale and zero conventions, the
// scale rounded to f16 before the integers are computed), in the weight's natural column
// order, so replaceWithQuantizedLinear carries it and the existing kernels run it.
//
#ifndef QLC_PASSES_GPTQ_H
#define QLC_PASSES_GPTQ_H

#include "passes/QuantUtil.h"

#include "mlir/Support/LogicalResult.h"

#include <string>
#include <vector>

namespace qlc {

namespace calibcuda {
class Device;
}

struct GptqParams {
  IntQuantParams quant;
  /// Added to the Hessian's diagonal: dampPercent * mean(diag(H)).
  double dampPercent = 0.01;
  /// Columns per lazy batch update.
  int64_t blockSize = 128;
  /// Quantize columns in order of decreasing Hessian diagonal (AutoGPTQ's desc_act).
  bool actOrder = false;
  /// Compute every group's scale and zero from the unmodified weight before GPTQ runs
  /// (AutoGPTQ's static_groups). With act-order and groups smaller than a row this is
  /// required: the result keeps per-group parameters in natural column order, which is
  /// exact only when the groups are fixed up front (there is no g_idx operand).
  bool staticGroups = false;
};

/// Checks `p` for a weight with k input features; returns failure with a message.
mlir::LogicalResult checkGptqParams(const GptqParams &p, int64_t k, std::string &error);

/// Quantizes the row-major float weight `w` [n, k] given the Hessian `h` [k, k]
/// (row-major, symmetric; any positive multiple of sum_t x_t^T x_t). Columns whose
/// Hessian diagonal is zero (features never seen) are quantized as zeros. Fails when
/// the parameters are invalid or the damped Hessian is not positive definite.
mlir::FailureOr<IntQuantized> quantizeGptq(const std::vector<float> &w, int64_t n, int64_t k,
                                           const std::vector<double> &h, const GptqParams &p,
                                           std::string &error);

/// quantizeGptq on the GPU `gpu`, with the Hessian of its last hessian() call, whose
/// diagonal is `diag`: the same steps (CalibCuda.cu), and `dequantized` gets the result's
/// weight as dequantizeInt would compute it.
mlir::FailureOr<IntQuantized>
quantizeGptqOnDevice(calibcuda::Device &gpu, const std::vector<float> &w, int64_t n, int64_t k,
                     const std::vector<double> &diag, const GptqParams &p,
                     std::vector<float> &dequantized, std::string &error);

/// The upper triangular factor U of the inverse of the symmetric positive definite `h`
/// [k, k] (H^-1 = U^T U, column-major into `u`), as quantizeGptq computes it (parallel,
/// blocked); false if `h` is not positive definite. Exposed for tests.
bool gptqInverseFactor(const std::vector<double> &h, int64_t k, std::vector<double> &u);

} // namespace qlc

#endif // QLC_PASSES_GPTQ_H
