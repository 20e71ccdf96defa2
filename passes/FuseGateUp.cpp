//===- FuseGateUp.cpp - qlc-fuse-gate-up -----------------------------------===//
#include "ir/QlcOps.h"
#include "passes/FuseUtil.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace qlc {
#define GEN_PASS_DEF_FUSEGATEUPPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct FuseGateUpPass : qlc::impl::FuseGateUpPassBase<FuseGateUpPass> {
  using FuseGateUpPassBase::FuseGateUpPassBase;

  void runOnOperation() override {
    SmallVector<qlc::SiluMulOp> acts;
    getOperation().walk([&](qlc::SiluMulOp op) { acts.push_back(op); });
    for (qlc::SiluMulOp act : acts) {
      Operation *ops[2] = {qlc::projectionDefining(act.getGate()),
                           qlc::projectionDefining(act.getUp())};
      if (!ops[0] || !ops[1])
        continue;
      if (!act.getGate().hasOneUse() || !act.getUp().hasOneUse()) {
        act.emitRemark("qlc-fuse-gate-up: gate and up projections not fused: another op "
                       "reads one of them");
        continue;
      }
      qlc::FuseOutcome f = qlc::fuseProjections(ops);
      if (f.kind == qlc::FuseOutcome::Failed)
        return signalPassFailure();
      if (f.kind == qlc::FuseOutcome::Refused) {
        act.emitRemark() << "qlc-fuse-gate-up: gate and up projections not fused: " << f.why;
        continue;
      }
      OpBuilder b(act);
      auto glu = b.create<qlc::SwiGluOp>(act.getLoc(), act.getType(), f.result);
      act.replaceAllUsesWith(glu.getResult());
      act.erase();
      qlc::eraseProjections(ops);
    }
  }
};

} // namespace
