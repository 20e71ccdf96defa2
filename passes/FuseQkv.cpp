//===- FuseQkv.cpp - qlc-fuse-qkv ------------------------------------------===//
#include "ir/QlcOps.h"
#include "passes/FuseUtil.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace qlc {
#define GEN_PASS_DEF_FUSEQKVPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

/// The projection behind an attention operand, looking through its rope.
Operation *projectionBehind(Value v) {
  if (auto r = v.getDefiningOp<qlc::RopeOp>())
    v = r.getX();
  return qlc::projectionDefining(v);
}

struct FuseQkvPass : qlc::impl::FuseQkvPassBase<FuseQkvPass> {
  using FuseQkvPassBase::FuseQkvPassBase;

  void runOnOperation() override {
    SmallVector<qlc::AttentionOp> attns;
    getOperation().walk([&](qlc::AttentionOp op) { attns.push_back(op); });
    for (qlc::AttentionOp at : attns) {
      if (at.getQkvPacked())
        continue; // fused and folded already
      Operation *ops[3] = {projectionBehind(at.getQ()), projectionBehind(at.getK()),
                           projectionBehind(at.getV())};
      if (!ops[0] || !ops[1] || !ops[2])
        continue; // already fused, or not projections
      qlc::FuseOutcome f = qlc::fuseProjections(ops);
      if (f.kind == qlc::FuseOutcome::Failed)
        return signalPassFailure();
      if (f.kind == qlc::FuseOutcome::Refused) {
        at.emitRemark() << "qlc-fuse-qkv: layer " << at.getLayer()
                        << ": q, k and v projections not fused: " << f.why;
        continue;
      }
      OpBuilder b(f.result.getContext());
      b.setInsertionPointAfterValue(f.result);
      auto split = b.create<qlc::SplitOp>(
          f.result.getLoc(),
          TypeRange{ops[0]->getResult(0).getType(), ops[1]->getResult(0).getType(),
                    ops[2]->getResult(0).getType()},
          f.result);
      for (int i = 0; i < 3; ++i)
        ops[i]->getResult(0).replaceAllUsesWith(split.getResult(i));
      qlc::eraseProjections(ops);
    }
  }
};

} // namespace
