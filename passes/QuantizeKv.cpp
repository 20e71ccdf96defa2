//===- QuantizeKv.cpp - qlc-quantize-kv ------------------------------------===//
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace qlc {
#define GEN_PASS_DEF_QUANTIZEKVPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct QuantizeKvPass : qlc::impl::QuantizeKvPassBase<QuantizeKvPass> {
  using QuantizeKvPassBase::QuantizeKvPassBase;

  void runOnOperation() override {
    if (!qlc::isKnownKvDtype(dtype)) {
      getOperation().emitError() << "qlc-quantize-kv: unknown dtype '" << dtype
                                 << "' (expected f32, f16 or int8)";
      return signalPassFailure();
    }
    Builder b(&getContext());
    StringAttr kind = b.getStringAttr(dtype);
    getOperation().walk([&](qlc::AttentionOp op) { op.setKvDtypeAttr(kind); });
    SmallVector<NamedAttribute> plan = {b.getNamedAttr("dtype", kind)};
    if (dtype == "int8")
      plan.push_back(b.getNamedAttr("scales", b.getStringAttr("per-token-head-asym")));
    getOperation()->setAttr("qlc.kv_cache", b.getDictionaryAttr(plan));
  }
};

} // namespace
