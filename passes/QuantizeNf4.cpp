//===- QuantizeNf4.cpp - qlc-quantize-nf4 ----------------------------------===//
#include "ir/QlcOps.h"
#include "ir/WeightProvider.h"
#include "passes/Nf4.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

#include <cstring>

namespace qlc {
#define GEN_PASS_DEF_QUANTIZENF4PASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

std::vector<uint8_t> floatBytes(const std::vector<float> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct QuantizeNf4Pass : qlc::impl::QuantizeNf4PassBase<QuantizeNf4Pass> {
  using QuantizeNf4PassBase::QuantizeNf4PassBase;

  void runOnOperation() override {
    if (!qlc::isBnbBlockSize(blockSize)) {
      getOperation().emitError()
          << "qlc-quantize-nf4: block-size must be a power of two in [32, 4096] as in "
             "bitsandbytes, got "
          << static_cast<int64_t>(blockSize);
      return signalPassFailure();
    }
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
      std::optional<qlc::Nf4Quantized> data;
      if (wp != nullptr) {
        auto f = wp->readFloat(name);
        if (!f) {
          op.emitError() << "qlc-quantize-nf4: weight '" << name << "' has no data";
          return signalPassFailure();
        }
        data = qlc::quantizeNf4(f->data(), static_cast<int64_t>(f->size()), blockSize,
                                doubleQuant);
      }
      rewrite(op, name, data ? &*data : nullptr, wp);
    }
  }

  /// Replaces `op` by a quantized_linear of format nf4 reading `<weight>.nf4b<B>[.dq].*`,
  /// and gives the provider their data when there is some.
  void rewrite(qlc::LinearOp op, const std::string &source, const qlc::Nf4Quantized *data,
               qlc::WeightProvider *wp) {
    OpBuilder b(op);
    auto wType = cast<RankedTensorType>(op.getWeight().getType());
    const int64_t n = wType.getDimSize(0), k = wType.getDimSize(1), total = n * k;
    const int64_t blocks = (total + blockSize - 1) / blockSize,
                  blocks2 = (blocks + qlc::kNf4DoubleQuantBlock - 1) / qlc::kNf4DoubleQuantBlock;
    const std::string prefix =
        source + ".nf4b" + std::to_string(blockSize) + (doubleQuant ? ".dq" : "");
    auto u8 = b.getIntegerType(8, /*isSigned=*/false);
    Location loc = op.getLoc();
    auto mk = [&](const std::string &suffix, int64_t size, Type elt) -> Value {
      return b.create<qlc::WeightOp>(loc, RankedTensorType::get({size}, elt),
                                     b.getStringAttr(prefix + suffix));
    };
    Value qw = mk(".qweight", (total + 1) / 2, u8);
    Value absmax = mk(".absmax", blocks, doubleQuant ? Type(u8) : Type(b.getF32Type()));
    Value absmax2 = doubleQuant ? mk(".absmax2", blocks2, b.getF32Type()) : Value();
    const double offset = data != nullptr ? static_cast<double>(data->offset) : 0.0;
    auto q = b.create<qlc::QuantizedLinearOp>(
        loc, op.getType(), op.getX(), qw, absmax, /*zeros=*/Value(), absmax2, op.getBias(),
        /*perm=*/Value(),
        b.getStringAttr("nf4"), b.getI64IntegerAttr(4), b.getI64IntegerAttr(blockSize),
        b.getI64IntegerAttr(k), b.getI64IntegerAttr(n), b.getBoolAttr(false),
        b.getF64FloatAttr(offset), b.getStringAttr(source));
    if (data != nullptr && wp != nullptr) {
      wp->add(prefix + ".qweight", "u8", {(total + 1) / 2}, data->packed);
      if (doubleQuant) {
        wp->add(prefix + ".absmax", "u8", {blocks}, data->absmaxCodes);
        wp->add(prefix + ".absmax2", "f32", {blocks2}, floatBytes(data->absmax2));
      } else {
        wp->add(prefix + ".absmax", "f32", {blocks}, floatBytes(data->absmax));
      }
    }
    Operation *oldWeight = op.getWeight().getDefiningOp();
    op.replaceAllUsesWith(q.getResult());
    op.erase();
    if (oldWeight->use_empty())
      oldWeight->erase();
  }
};

} // namespace
