//===- FoldQkvSplit.cpp - qlc-fold-qkv-split -------------------------------===//
//
// qlc.attention(split(x)#0, #1, #2) -> qlc.attention(x, x, x) {qkv_packed}: the attention
// kernels read q, k and v as column ranges of the fused projection's rows, so the split's
// three copies (and their buffers) go.
//
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include <string>

namespace qlc {
#define GEN_PASS_DEF_FOLDQKVSPLITPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

int64_t width(Value v) { return cast<RankedTensorType>(v.getType()).getDimSize(1); }

/// Why `at` cannot read the columns of `split` in place; empty when it can.
std::string whyNot(qlc::AttentionOp at, qlc::SplitOp split) {
  if (split.getNumResults() != 3)
    return "the split has " + std::to_string(split.getNumResults()) + " results, not 3";
  if (at.getQ() != split.getResult(0) || at.getK() != split.getResult(1) ||
      at.getV() != split.getResult(2))
    return "q, k and v are not the split's results in that order";
  for (Value r : split.getResults())
    if (!r.hasOneUse())
      return "a result of the split has another user";
  const int64_t hd = at.getHeadDim(), qw = static_cast<int64_t>(at.getNumHeads()) * hd,
                kvw = static_cast<int64_t>(at.getNumKvHeads()) * hd;
  if (width(at.getQ()) != qw || width(at.getK()) != kvw || width(at.getV()) != kvw)
    return "the split's widths are not the attention's q, k and v widths";
  return "";
}

struct FoldQkvSplitPass : qlc::impl::FoldQkvSplitPassBase<FoldQkvSplitPass> {
  using FoldQkvSplitPassBase::FoldQkvSplitPassBase;

  void runOnOperation() override {
    SmallVector<qlc::AttentionOp> attns;
    getOperation().walk([&](qlc::AttentionOp op) { attns.push_back(op); });
    for (qlc::AttentionOp at : attns) {
      auto split = at.getQ().getDefiningOp<qlc::SplitOp>();
      if (at.getQkvPacked() || !split)
        continue; // folded already, or q is not a split's column range
      if (std::string why = whyNot(at, split); !why.empty()) {
        at.emitRemark() << "qlc-fold-qkv-split: layer " << at.getLayer()
                        << ": q/k/v split not folded into the attention: " << why;
        continue;
      }
      Value x = split.getX();
      at.getQMutable().assign(x);
      at.getKMutable().assign(x);
      at.getVMutable().assign(x);
      at.setQkvPacked(true);
      split.erase();
    }
  }
};

} // namespace
