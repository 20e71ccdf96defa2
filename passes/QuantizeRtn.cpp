//===- QuantizeRtn.cpp - qlc-quantize-rtn ----------------------------------===//
#include "ir/QlcOps.h"
#include "ir/WeightProvider.h"
#include "passes/Passes.h"
#include "passes/QuantUtil.h"

namespace qlc {
#define GEN_PASS_DEF_QUANTIZERTNPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct QuantizeRtnPass : qlc::impl::QuantizeRtnPassBase<QuantizeRtnPass> {
  using QuantizeRtnPassBase::QuantizeRtnPassBase;

  void runOnOperation() override {
    if (bits != 4 && bits != 8) {
      getOperation().emitError() << "qlc-quantize-rtn: bits must be 4 or 8, got " << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    if (groupSize < 0) {
      getOperation().emitError() << "qlc-quantize-rtn: group-size must be >= 0 (0: per channel)";
      return signalPassFailure();
    }
    qlc::IntQuantParams p{bits, groupSize, symmetric};
    qlc::WeightProvider *wp = qlc::getWeightProvider(&getContext());
    SmallVector<qlc::LinearOp> linears;
    getOperation().walk([&](qlc::LinearOp op) { linears.push_back(op); });
    for (qlc::LinearOp op : linears) {
      auto w = op.getWeight().getDefiningOp<qlc::WeightOp>();
      if (!w) {
        op.emitRemark("not quantized: its weight is not a qlc.weight");
        continue;
      }
      const std::string name = w.getTensorName().str();
      auto type = w.getType();
      const int64_t n = type.getDimSize(0), k = type.getDimSize(1);
      std::optional<qlc::IntQuantized> data;
      if (wp != nullptr) {
        auto f = wp->readFloat(name);
        if (!f) {
          op.emitError() << "qlc-quantize-rtn: weight '" << name << "' has no data";
          return signalPassFailure();
        }
        data = qlc::quantizeRtn(*f, n, k, p);
      }
      std::string prefix = name + ".rtn" + std::to_string(bits) + (symmetric ? "s" : "a") +
                           "g" + std::to_string(qlc::effectiveGroupSize(p, k));
      qlc::replaceWithQuantizedLinear(op, p, prefix, data ? &*data : nullptr);
    }
  }
};

} // namespace
