//===- CastWeights.cpp - qlc-cast-weights ----------------------------------===//
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace qlc {
#define GEN_PASS_DEF_CASTWEIGHTSPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct CastWeightsPass : qlc::impl::CastWeightsPassBase<CastWeightsPass> {
  using CastWeightsPassBase::CastWeightsPassBase;

  void runOnOperation() override {
    Builder b(&getContext());
    Type target;
    if (dtype == "f32")
      target = b.getF32Type();
    else if (dtype == "f16")
      target = b.getF16Type();
    else if (dtype == "bf16")
      target = b.getBF16Type();
    else {
      getOperation().emitError() << "qlc-cast-weights: unknown dtype '" << dtype
                                 << "' (expected f32, f16 or bf16)";
      return signalPassFailure();
    }
    getOperation().walk([&](qlc::WeightOp op) {
      auto type = op.getType();
      auto from = dyn_cast<FloatType>(type.getElementType());
      if (type.getRank() != 2 || !from || from == target)
        return;
      if (onlyNarrow && from.getWidth() <= cast<FloatType>(target).getWidth())
        return;
      op.getResult().setType(RankedTensorType::get(type.getShape(), target));
    });
  }
};

} // namespace
