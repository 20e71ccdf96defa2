//===- Awq.h - AWQ's scale and clipping searches ---------------*- C++ -*-===//
//
// Activation-aware weight quantization (Lin et al., 2023, "AWQ"), as llm-awq and AutoAWQ
// search it, on one group of linears that read the same input x:
//
//  - scales: s = mean|x|^alpha per input channel, normalized by sqrt(max(s) * min(s)),
//    for alpha on a grid of `grid` values in [0, 1); the weights become W * diag(s)
//    (and the op producing x divides by s: a norm's weight, or the rows of a preceding
//    linear); the alpha whose round-to-nearest quantization Q(W s) / s gives the
//    smallest output error over the calibration inputs wins (alpha = 0 is plain RTN);
//  - clipping: per row and group, the range [-m, m] with m = absmax * (1 - i / grid),
//    i < maxShrink * grid, that minimizes that group's output error after quantization.
//
// The output error of a weight change D = W - Q over inputs x_t is sum_t |D x_t|^2 =
// sum_r d_r H d_r^T with H = sum_t x_t^T x_t, so the searches use the same Hessian GPTQ
// does and cover every calibration token. Quantization is QuantUtil's RTN (AutoGPTQ's
// conventions, f16 scales), which the "int" kernels run.
//
#ifndef QLC_PASSES_AWQ_H
#define QLC_PASSES_AWQ_H

#include "passes/QuantUtil.h"

#include <string>
#include <vector>

namespace qlc {

namespace calibcuda {
class Device;
}

struct AwqParams {
  IntQuantParams quant;
  int64_t grid = 20;       // alpha values for the scale search, shrink steps for clipping
  double maxShrink = 0.5;  // clipping tries ranges down to (1 - maxShrink) * absmax
};

/// sum_r d_r H d_r^T for D = a - b ([n, k] row-major), H [k, k] row-major.
double awqOutputError(const std::vector<float> &a, const std::vector<float> &b, int64_t n,
                      int64_t k, const std::vector<float> &h);

/// Q(W diag(s)) diag(1/s): what a weight [n, k] becomes when quantized with scales s.
std::vector<float> awqScaledRtn(const std::vector<float> &w, int64_t n, int64_t k,
                                const std::vector<float> &s, const IntQuantParams &p);

/// The scale search over the weights `ws` (each [ns[i], k]) reading one input whose
/// Hessian is `h` and mean |x| per channel `meanAbs`. Returns s (all ones if no alpha
/// beats plain RTN); `bestError` and `rtnError` (optional) get the summed output errors.
std::vector<float> awqSearchScales(const std::vector<const std::vector<float> *> &ws,
                                   const std::vector<int64_t> &ns, int64_t k,
                                   const std::vector<float> &h, const std::vector<float> &meanAbs,
                                   const AwqParams &p, double *bestError = nullptr,
                                   double *rtnError = nullptr);

/// The clipping search: clamps every (row, group) of `w` [n, k] in place to its best range.
void awqClip(std::vector<float> &w, int64_t n, int64_t k, const std::vector<float> &h,
             const AwqParams &p);

/// The shrink steps the clipping search tries: maxShrink * grid.
int64_t awqClipSteps(const AwqParams &p);

/// awqSearchScales on the GPU (CalibCuda.h): the same candidates and choice, the errors
/// computed there. False with `error` when the GPU fails.
bool awqSearchScalesOnDevice(calibcuda::Device &gpu,
                             const std::vector<const std::vector<float> *> &ws,
                             const std::vector<int64_t> &ns, int64_t k, const std::vector<float> &h,
                             const std::vector<float> &meanAbs, const AwqParams &p,
                             std::vector<float> &best, std::string &error,
                             double *bestError = nullptr, double *rtnError = nullptr);

/// awqClip on the GPU.
bool awqClipOnDevice(calibcuda::Device &gpu, std::vector<float> &w, int64_t n, int64_t k,
                     const std::vector<float> &h, const AwqParams &p, std::string &error);

} // namespace qlc

#endif // QLC_PASSES_AWQ_H
