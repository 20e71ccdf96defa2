//===- FuseUtil.h - merging projections that read one input ----*- C++ -*-===//
//
// Shared by the fusion passes: projections (qlc.linear, or qlc.quantized_linear of one
// scheme) that read the same activation become one projection whose weight is their
// weights' rows concatenated along the output features. Each output row is computed by
// the same kernel arithmetic as before, so fused and unfused modules give the same
// numbers.
//
#ifndef QLC_PASSES_FUSEUTIL_H
#define QLC_PASSES_FUSEUTIL_H

#include "ir/QlcOps.h"

#include <string>
#include <vector>

namespace qlc {

/// The name of a concatenation of tensors: their common prefix and suffix around the
/// differing middles in braces, e.g. "l.0.attn.{q,k,v}_proj.weight". Quantizing a fused
/// weight and fusing quantized weights give the same names.
std::string fusedTensorName(const std::vector<std::string> &names);

/// What fuseProjections did.
struct FuseOutcome {
  enum Kind { Fused, Refused, Failed } kind = Refused;
  /// Fused: the new projection's result (features of the inputs in order).
  mlir::Value result;
  /// Refused: why, for a remark; Failed: the error, already emitted.
  std::string why;
};

/// Fuses `projections` (at least two qlc.linear or qlc.quantized_linear ops with one
/// input) into one projection inserted before the first of them in their block. The
/// originals are left for the caller to rewire and erase (eraseProjections). With a
/// weight provider attached the concatenated tensors are added to it. Refuses, leaving
/// the IR unchanged, when the projections differ in kind, input, weight element type,
/// bias presence or quantization scheme, or when an NF4 block would straddle two of
/// their weights.
FuseOutcome fuseProjections(llvm::ArrayRef<mlir::Operation *> projections);

/// Erases projections whose results have no uses left, and their weights when nothing
/// else reads them.
void eraseProjections(llvm::ArrayRef<mlir::Operation *> projections);

/// The projection that defines `v` (a qlc.linear or qlc.quantized_linear), or null.
mlir::Operation *projectionDefining(mlir::Value v);

} // namespace qlc

#endif // QLC_PASSES_FUSEUTIL_H
