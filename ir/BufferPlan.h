//===- BufferPlan.h - activation buffers of @forward in one arena -*- C++ -*-===//
//
// The activation plan that `qlc-plan-buffers` writes into the IR and codegen reads back:
// every activation value of @forward (each op result of type tensor<?xNxf32>, except
// the logits, which go to the caller's buffer) and every scratch region an op needs
// while it runs (the gather buffer of a permuted quantized linear, the row buffer of
// qlc.logits) gets an offset in one arena of `arena_bytes`. A value is live from its
// defining op to its last user (inclusive), a scratch region during its op only; two
// regions live at the same op never overlap, so an op's output never aliases its
// inputs. One function plans, one reads and checks, both shared by the pass and
// codegen (which plans itself only when a module arrives without a plan).
//
// In the IR:
//   op:     qlc.buffer = [{bytes = B : i64, offset = O : i64}, ...]   one per result
//           qlc.scratch = {bytes = B : i64, offset = O : i64}         ops with scratch
//   module: qlc.buffers = {alignment, arena_bytes, max_tokens, num_buffers, peak_bytes}
//
#ifndef QLC_IR_BUFFERPLAN_H
#define QLC_IR_BUFFERPLAN_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

#include <cstdint>
#include <vector>

namespace qlc {

/// One region of the arena: an activation (result `result` of `op`) or, with result
/// -1, the scratch `op` uses while it runs. first/last: the op indices in @forward's
/// body between which it is live (inclusive).
struct BufferRegion {
  mlir::Operation *op = nullptr;
  int result = -1;
  int64_t first = 0, last = 0;
  int64_t bytes = 0, offset = -1;
};

struct BufferPlan {
  int64_t maxTokens = 0;
  int64_t alignment = 64;
  int64_t arenaBytes = 0; // end of the highest region
  int64_t peakBytes = 0;  // the most bytes live at one op: a lower bound of arenaBytes
  std::vector<BufferRegion> regions; // in program order
};

/// The bytes every region of `op` needs for `maxTokens` rows (f32), rounded up to
/// `alignment`: one entry per result (0 for results that are not planned), then the
/// scratch bytes (0: none).
std::vector<int64_t> bufferBytesOf(mlir::Operation *op, int64_t maxTokens, int64_t alignment);

/// Plans the arena of `module`'s @forward for `maxTokens` tokens a step and writes the
/// plan into the IR (replacing any earlier plan). Modules without @forward are left
/// alone. Fails (with a diagnostic) on a bad maxTokens or an op it cannot size.
mlir::LogicalResult planBuffers(mlir::ModuleOp module, int64_t maxTokens);

/// Reads the plan written into `module` and checks it: every region present, aligned,
/// large enough for `maxTokens` rows, inside the arena; regions live at the same time
/// disjoint; the module's summary equal to what the regions give. Diagnostics name the
/// op at fault.
mlir::FailureOr<BufferPlan> readBufferPlan(mlir::ModuleOp module, int64_t maxTokens);

} // namespace qlc

#endif // QLC_IR_BUFFERPLAN_H
