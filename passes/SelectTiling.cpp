//===- SelectTiling.cpp - qlc-select-tiling --------------------------------===//
#include "ir/QlcOps.h"
#include "passes/Passes.h"
#include "passes/Tiling.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FileSystem.h"

namespace qlc {
#define GEN_PASS_DEF_SELECTTILINGPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace qlc {

namespace {
std::string dtypeName(Type t) {
  if (t.isF16()) return "f16";
  if (t.isBF16()) return "bf16";
  return "f32";
}
} // namespace

std::optional<ProjShape> projShapeOf(Operation *op) {
  ProjShape s;
  auto dense = [&](Value w) {
    auto t = cast<RankedTensorType>(w.getType());
    s.family = ProjShape::Dense;
    s.kernel = "linear." + dtypeName(t.getElementType());
    s.n = t.getDimSize(0);
    s.k = t.getDimSize(1);
    return s;
  };
  if (auto o = dyn_cast<LinearOp>(op))
    return dense(o.getWeight());
  if (auto o = dyn_cast<LogitsOp>(op))
    return dense(o.getWeight());
  auto q = dyn_cast<QuantizedLinearOp>(op);
  if (!q)
    return std::nullopt;
  s.k = q.getInFeatures();
  s.n = q.getOutFeatures();
  if (q.getFormat() == "int") {
    s.family = ProjShape::Int;
    s.kernel = "qlinear.int" + std::to_string(q.getBits()) + ".g" +
               std::to_string(q.getGroupSize());
  } else if (q.getFormat() == "nf4") {
    s.family = ProjShape::Nf4;
    s.kernel = std::string(q.getScales2() ? "qlinear.nf4-dq.b" : "qlinear.nf4.b") +
               std::to_string(q.getGroupSize());
  } else {
    return std::nullopt;
  }
  return s;
}

} // namespace qlc

namespace {

struct SelectTilingPass : qlc::impl::SelectTilingPassBase<SelectTilingPass> {
  using SelectTilingPassBase::SelectTilingPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto desc = qlc::lookupTargetDesc(target);
    if (!desc) {
      module.emitError() << "qlc-select-tiling: unknown target '" << target
                         << "' (expected x86-64, x86-64-v3, x86-64-v4, native, sm_80, sm_86, "
                            "sm_89 or sm_90)";
      return signalPassFailure();
    }
    if (maxTokens <= 0) {
      module.emitError() << "qlc-select-tiling: max-tokens must be positive, got "
                         << static_cast<int64_t>(maxTokens);
      return signalPassFailure();
    }
    std::vector<qlc::TuningEntry> cached;
    if (!cache.empty() && llvm::sys::fs::exists(cache)) {
      auto loaded = qlc::loadTuningCache(cache);
      if (!loaded) {
        module.emitError() << "qlc-select-tiling: " << llvm::toString(loaded.takeError());
        return signalPassFailure();
      }
      cached = std::move(*loaded);
    }
    Builder b(&getContext());
    bool failed = false;
    module.walk([&](Operation *op) {
      auto shape = qlc::projShapeOf(op);
      if (!shape || failed)
        return;
      SmallVector<NamedAttribute> ranges;
      for (const qlc::TilingRange &r : qlc::tilingRanges(*desc, *shape, maxTokens)) {
        qlc::TileConfig chosen = r.model;
        std::string by = "model";
        for (const qlc::TuningEntry &e : cached) {
          if (e.target != desc->name || e.kernel != shape->kernel || e.k != shape->k ||
              e.n != shape->n || e.range != r.name)
            continue;
          bool legal = false;
          for (const qlc::TileConfig &c : r.candidates)
            legal = legal || qlc::sameConfig(c, e.config);
          if (!legal) {
            std::string list;
            for (const qlc::TileConfig &c : r.candidates)
              list += (list.empty() ? "{" : ", {") + qlc::formatTileConfig(c) + "}";
            op->emitError() << "qlc-select-tiling: tuning cache " << cache << ": config {"
                            << qlc::formatTileConfig(e.config) << "} of " << shape->kernel
                            << " " << shape->k << "x" << shape->n << " (" << r.name
                            << ") is not legal on " << desc->name << " (candidates: " << list
                            << ")";
            failed = true;
            return;
          }
          chosen = r.candidates.front();
          for (const qlc::TileConfig &c : r.candidates)
            if (qlc::sameConfig(c, e.config))
              chosen = c;
          by = "cache";
        }
        SmallVector<NamedAttribute> fields = {b.getNamedAttr("min_m", b.getI64IntegerAttr(r.minM)),
                                              b.getNamedAttr("max_m", b.getI64IntegerAttr(r.maxM)),
                                              b.getNamedAttr("by", b.getStringAttr(by))};
        for (const auto &[name, v] : chosen)
          fields.push_back(b.getNamedAttr(name, b.getI64IntegerAttr(v)));
        ranges.push_back(b.getNamedAttr(r.name, b.getDictionaryAttr(fields)));
      }
      op->setAttr("qlc.tiling", b.getDictionaryAttr(ranges));
    });
    if (failed)
      return signalPassFailure();
    module->setAttr("qlc.tiling_target", b.getStringAttr(desc->name));
  }
};

} // namespace
