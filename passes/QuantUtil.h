//===- QuantUtil.h - integer quantization of weight rows -------*- C++ -*-===//
//
// Shared by the quantization passes: grouped round-to-nearest with AutoGPTQ's scale and
// zero-point conventions, and the packing of the "int" format of qlc.quantized_linear.
//
#ifndef QLC_PASSES_QUANTUTIL_H
#define QLC_PASSES_QUANTUTIL_H

#include "ir/QlcOps.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qlc {

struct IntQuantParams {
  int64_t bits = 4;
  int64_t groupSize = 128; // <= 0: one group per row
  bool symmetric = false;
};

/// A weight [n, k] quantized to the "int" format: packed integers, f16 scales and
/// (asymmetric only) ui8 zero points, each [n, groups].
struct IntQuantized {
  int64_t n = 0, k = 0, groups = 0, groupSize = 0, rowBytes = 0;
  std::vector<uint8_t> qweight;
  std::vector<uint16_t> scales; // f16 bits
  std::vector<uint8_t> zeros;
};

/// Scale and zero point of one group, as AutoGPTQ's Quantizer computes them (the scale
/// then rounded to f16, and the integers computed with that rounded scale).
void groupScaleZero(const float *w, int64_t len, const IntQuantParams &p, float &scale,
                    int zero[1]);

/// Round-to-nearest quantization of a row-major float weight [n, k].
IntQuantized quantizeRtn(const std::vector<float> &w, int64_t n, int64_t k,
                         const IntQuantParams &p);

/// Effective group size of `p` for rows of k features.
int64_t effectiveGroupSize(const IntQuantParams &p, int64_t k);

/// An all-zero IntQuantized of the right sizes for a weight [n, k].
IntQuantized makeIntQuantized(int64_t n, int64_t k, const IntQuantParams &p);

/// Stores the integer `code` of element (r, c) into `q.qweight`.
void storeIntCode(IntQuantized &q, int64_t bits, int64_t r, int64_t c, int code);

/// The weight [n, k] (row-major) that `q` stands for: (code - zero) * scale.
std::vector<float> dequantizeInt(const IntQuantized &q, const IntQuantParams &p);

/// Replaces `op` (a qlc.linear) by a qlc.quantized_linear reading the tensors named
/// `prefix`.qweight/.scales/.zeros; registers their data with the context's weight
/// provider when `data` is given.
void replaceWithQuantizedLinear(LinearOp op, const IntQuantParams &p, const std::string &prefix,
                                const IntQuantized *data);

} // namespace qlc

#endif // QLC_PASSES_QUANTUTIL_H
