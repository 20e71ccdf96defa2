//===- FuseRope.cpp - qlc-fuse-rope ----------------------------------------===//
//
// qlc.attention(rope(q), rope(k), v) -> qlc.attention(q, k, v) {rope_*}: the attention
// kernels rotate each query head as they load it and each key head before they store
// it in the KV cache, which saves the two rope kernels and their pass over q and k.
//
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include <string>

namespace qlc {
#define GEN_PASS_DEF_FUSEROPEPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

bool sameRope(const qlc::RopeParams &a, const qlc::RopeParams &b) {
  return a.headDim == b.headDim && a.theta == b.theta && a.scaling == b.scaling &&
         a.factor == b.factor && a.lowFreqFactor == b.lowFreqFactor &&
         a.highFreqFactor == b.highFreqFactor && a.originalMaxPosition == b.originalMaxPosition;
}

/// Why the ropes of q and k cannot move into `at`; empty when they can.
std::string whyNot(qlc::AttentionOp at, qlc::RopeOp q, qlc::RopeOp k) {
  if (!q || !k)
    return std::string("only ") + (q ? "q" : "k") + " comes from a qlc.rope";
  if (at.getRope())
    return "the attention already applies a rotary embedding";
  if (q == k)
    return "q and k are the same rope";
  if (!q.getResult().hasOneUse() || !k.getResult().hasOneUse())
    return std::string("the rope of ") + (q.getResult().hasOneUse() ? "k" : "q") +
           " has another user";
  if (q.getPositions() != at.getPositions() || k.getPositions() != at.getPositions())
    return "a rope rotates at other positions than the attention's";
  if (!sameRope(q.getParams(), k.getParams()))
    return "the ropes of q and k differ";
  if (q.getHeadDim() != at.getHeadDim())
    return "the rope rotates heads of " + std::to_string(q.getHeadDim()) +
           " channels, the attention's have " + std::to_string(at.getHeadDim());
  return "";
}

struct FuseRopePass : qlc::impl::FuseRopePassBase<FuseRopePass> {
  using FuseRopePassBase::FuseRopePassBase;

  void runOnOperation() override {
    SmallVector<qlc::AttentionOp> attns;
    getOperation().walk([&](qlc::AttentionOp op) { attns.push_back(op); });
    for (qlc::AttentionOp at : attns) {
      auto q = at.getQ().getDefiningOp<qlc::RopeOp>();
      auto k = at.getK().getDefiningOp<qlc::RopeOp>();
      if (!q && !k)
        continue; // nothing to fuse (or already fused)
      if (std::string why = whyNot(at, q, k); !why.empty()) {
        at.emitRemark() << "qlc-fuse-rope: layer " << at.getLayer()
                        << ": rope not fused into the attention: " << why;
        continue;
      }
      at.setRope(q.getParams());
      at.getQMutable().assign(q.getX());
      at.getKMutable().assign(k.getX());
      q.erase();
      k.erase();
    }
  }
};

} // namespace
