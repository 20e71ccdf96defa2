//===- PlanKvCache.cpp - qlc-plan-kv-cache ---------------------------------===//
//
// Decides the paged KV cache: page size, bytes per page, page count, dtype and layout,
// and writes them to the module's `qlc.kv_cache` attribute (keeping what
// qlc-quantize-kv put there). Codegen and the runtime read the plan; see Passes.td.
//
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

#include <algorithm>
#include <limits>
#include <optional>

namespace qlc {
#define GEN_PASS_DEF_PLANKVCACHEPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

/// The bytes a head of `hd` channels takes in the cache (the kernels' head_bytes).
int64_t headBytes(StringRef dtype, int64_t hd) {
  return dtype == "int8" ? 4 + (hd + 3) / 4 * 4 : dtype == "f16" ? 2 * hd : 4 * hd;
}

struct PlanKvCachePass : qlc::impl::PlanKvCachePassBase<PlanKvCachePass> {
  using PlanKvCachePassBase::PlanKvCachePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    const int64_t maxSeqLen = this->maxSeqLen, maxBatch = this->maxBatch;
    const int64_t pageSize = this->pageSize, memoryBudget = this->memoryBudget;
    const int64_t targetMemory = this->targetMemory;
    const double memoryFraction = this->memoryFraction;
    const std::string target = this->target;
    auto fail = [&](const Twine &msg) {
      module.emitError() << "qlc-plan-kv-cache: " << msg;
      signalPassFailure();
    };
    if (maxSeqLen <= 0)
      return fail("max-seq-len must be positive, got " + Twine(maxSeqLen));
    if (maxBatch <= 0)
      return fail("max-batch must be positive, got " + Twine(maxBatch));
    if (target != "x86" && target != "cuda")
      return fail("unknown target '" + target + "' (expected x86 or cuda)");
    if (pageSize < 0 || pageSize > 65536)
      return fail("page-size must be in [1, 65536] (or 0: chosen for the target), got " +
                  Twine(pageSize));
    if (memoryBudget < 0)
      return fail("memory-budget must not be negative, got " + Twine(memoryBudget));
    if (memoryFraction < 0.0 || memoryFraction > 1.0)
      return fail("memory-fraction must be in (0, 1] (or 0: no cap), got " +
                  std::to_string(memoryFraction));
    if (memoryFraction > 0.0 && targetMemory <= 0)
      return fail("memory-fraction needs target-memory (the target's bytes)");

    // The row format: every attention must agree (one pool of pages serves them all).
    std::optional<std::string> dtype;
    int64_t kvHeads = 0, headDim = 0, layers = 0;
    bool mixed = false;
    module.walk([&](qlc::AttentionOp op) {
      const std::string d = op.getKvDtype().str();
      const int64_t kvh = static_cast<int64_t>(op.getNumKvHeads());
      const int64_t hd = static_cast<int64_t>(op.getHeadDim());
      if (!dtype) {
        dtype = d;
        kvHeads = kvh;
        headDim = hd;
      } else if (*dtype != d || kvHeads != kvh || headDim != hd) {
        op.emitError() << "qlc-plan-kv-cache: this attention's KV rows (" << d << ", " << kvh
                       << " heads of " << hd
                       << ") differ from another layer's (" << *dtype << ", " << kvHeads
                       << " heads of " << headDim << "): the cache needs one row format";
        mixed = true;
      }
      layers = std::max<int64_t>(layers, static_cast<int64_t>(op.getLayer()) + 1);
    });
    if (mixed)
      return signalPassFailure();
    if (!dtype)
      return fail("the module has no qlc.attention: nothing to cache");
    if (auto info = module->getAttrOfType<DictionaryAttr>("qlc.model"))
      if (auto n = dyn_cast_or_null<IntegerAttr>(info.get("num_layers")))
        layers = std::max<int64_t>(layers, n.getInt());
    auto old = module->getAttrOfType<DictionaryAttr>("qlc.kv_cache");
    if (old)
      if (auto d = dyn_cast_or_null<StringAttr>(old.get("dtype")); d && d.getValue() != *dtype)
        return fail("the module's qlc.kv_cache dtype '" + d.getValue() +
                    "' differs from the attention ops' kv_dtype '" + *dtype + "'");

    const int64_t page = pageSize > 0 ? pageSize : (target == "cuda" ? 16 : 32);
    const int64_t rowBytes = kvHeads * headBytes(*dtype, headDim);
    const int64_t positionBytes = 2 * layers * rowBytes;
    const int64_t pageBytes = page * positionBytes;
    const int64_t perSeq = (maxSeqLen + page - 1) / page;
    int64_t pages = 0;
    if (llvm::MulOverflow(maxBatch, perSeq, pages) || pages > std::numeric_limits<int32_t>::max())
      return fail("max-batch " + Twine(maxBatch) + " sequences of " + Twine(perSeq) +
                  " pages exceed the 2^31 pages a block table can name");
    int64_t budget = memoryBudget;
    if (memoryFraction > 0.0) {
      const int64_t part = static_cast<int64_t>(memoryFraction * static_cast<double>(targetMemory));
      budget = budget > 0 ? std::min(budget, part) : part;
    }
    if (budget > 0) {
      const int64_t fit = budget / pageBytes;
      if (fit < perSeq)
        return fail("a memory budget of " + Twine(budget) + " bytes holds " + Twine(fit) +
                    " pages of " + Twine(pageBytes) + " bytes; one sequence of max-seq-len " +
                    Twine(maxSeqLen) + " needs " + Twine(perSeq));
      pages = std::min(pages, fit);
    }

    Builder b(&getContext());
    SmallVector<NamedAttribute> plan;
    if (old) // what qlc-quantize-kv recorded (scales), except the fields planned here
      for (NamedAttribute a : old.getValue())
        plan.push_back(a);
    auto set = [&](StringRef name, Attribute value) {
      auto it = llvm::find_if(plan, [&](NamedAttribute a) { return a.getName() == name; });
      if (it != plan.end())
        it->setValue(value);
      else
        plan.push_back(b.getNamedAttr(name, value));
    };
    set("dtype", b.getStringAttr(*dtype));
    set("layout", b.getStringAttr("page,layer,kv,position,head"));
    set("page_size", b.getI64IntegerAttr(page));
    set("page_bytes", b.getI64IntegerAttr(pageBytes));
    set("pages", b.getI64IntegerAttr(pages));
    set("max_pages_per_seq", b.getI64IntegerAttr(perSeq));
    set("max_seq_len", b.getI64IntegerAttr(maxSeqLen));
    set("max_batch", b.getI64IntegerAttr(maxBatch));
    set("budget_bytes", b.getI64IntegerAttr(budget));
    module->setAttr("qlc.kv_cache", b.getDictionaryAttr(plan));
  }
};

} // namespace
