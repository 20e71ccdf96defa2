//===- FuseNormResidual.cpp - qlc-fuse-norm-residual -----------------------===//
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace qlc {
#define GEN_PASS_DEF_FUSENORMRESIDUALPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct FuseNormResidualPass : qlc::impl::FuseNormResidualPassBase<FuseNormResidualPass> {
  using FuseNormResidualPassBase::FuseNormResidualPassBase;

  void runOnOperation() override {
    SmallVector<qlc::RmsNormOp> norms;
    getOperation().walk([&](qlc::RmsNormOp op) { norms.push_back(op); });
    for (qlc::RmsNormOp norm : norms) {
      auto add = norm.getX().getDefiningOp<qlc::AddOp>();
      if (!add)
        continue;
      // The sum replaces the add's result everywhere, so nothing may read it between
      // the add and the norm, where the fused op is placed.
      bool earlyUser = llvm::any_of(add->getUsers(), [&](Operation *u) {
        return u != norm && (u->getBlock() != norm->getBlock() || u->isBeforeInBlock(norm));
      });
      if (earlyUser || add->getBlock() != norm->getBlock()) {
        norm.emitRemark("qlc-fuse-norm-residual: not fused: an op between the add and the "
                        "norm reads the sum");
        continue;
      }
      OpBuilder b(norm);
      auto fused = b.create<qlc::AddRmsNormOp>(
          norm.getLoc(), TypeRange{add.getType(), norm.getType()}, add.getLhs(), add.getRhs(),
          norm.getWeight(), norm.getEpsilonAttr());
      norm.replaceAllUsesWith(fused.getResult());
      norm.erase();
      add.replaceAllUsesWith(fused.getSum());
      add.erase();
    }
  }
};

} // namespace
