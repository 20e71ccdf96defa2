//===- BufferPlan.cpp - activation buffers of @forward in one arena --------===//
//
// Offsets are assigned "greedy by size" (as TFLite's arena planner does): regions in
// decreasing size, each put in the smallest gap between the regions already placed
// that are live at the same time as it, or above them all. Decoder layers repeat the
// same few widths, so the large buffers (the MLP's) are placed first and the smaller
// ones fill the gaps beside them; the result is compared with the lower bound
// (peak_bytes, the most bytes live at one op) in the module's summary.
//
#include "ir/BufferPlan.h"
#include "ir/QlcOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <numeric>

using namespace mlir;

namespace qlc {

namespace {

constexpr const char *kBuffer = "qlc.buffer";
constexpr const char *kScratch = "qlc.scratch";
constexpr const char *kSummary = "qlc.buffers";
constexpr int64_t kAlignment = 64;

int64_t roundUp(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

/// f32 rows of `width` for `maxTokens` tokens.
int64_t rowsBytes(int64_t maxTokens, int64_t width, int64_t alignment) {
  return roundUp(maxTokens * width * 4, alignment);
}

/// Whether `v` is an activation codegen keeps in the arena.
bool isActivation(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getRank() == 2 && t.getElementType().isF32() && !t.isDynamicDim(1) &&
         !isa<LogitsOp, WeightOp>(v.getDefiningOp());
}

func::FuncOp forwardOf(ModuleOp module) { return module.lookupSymbol<func::FuncOp>("forward"); }

/// The regions of @forward in program order, sized, with their live ranges.
FailureOr<BufferPlan> collect(func::FuncOp fn, int64_t maxTokens) {
  BufferPlan plan;
  plan.maxTokens = maxTokens;
  plan.alignment = kAlignment;
  if (!fn.getBody().hasOneBlock())
    return fn.emitError("qlc-plan-buffers: @forward must have one block");
  Block &block = fn.getBody().front();
  llvm::DenseMap<Operation *, int64_t> index;
  int64_t i = 0;
  for (Operation &op : block)
    index[&op] = i++;
  for (Operation &op : block) {
    const int64_t at = index[&op];
    std::vector<int64_t> bytes = bufferBytesOf(&op, maxTokens, plan.alignment);
    for (unsigned r = 0; r < op.getNumResults(); ++r) {
      if (bytes[r] == 0)
        continue;
      int64_t last = at;
      for (Operation *user : op.getResult(r).getUsers()) {
        Operation *top = block.findAncestorOpInBlock(*user);
        if (top == nullptr)
          return user->emitError("qlc-plan-buffers: a user of an activation lies outside "
                                 "@forward's body");
        last = std::max(last, index[top]);
      }
      plan.regions.push_back({&op, static_cast<int>(r), at, last, bytes[r], -1});
    }
    if (bytes.back() > 0)
      plan.regions.push_back({&op, -1, at, at, bytes.back(), -1});
  }
  return plan;
}

bool liveTogether(const BufferRegion &a, const BufferRegion &b) {
  return a.first <= b.last && b.first <= a.last;
}

int64_t peakOf(const BufferPlan &plan) {
  // +bytes at first, -bytes after last; the running sum's maximum.
  std::vector<std::pair<int64_t, int64_t>> events;
  for (const BufferRegion &r : plan.regions) {
    events.push_back({r.first, r.bytes});
    events.push_back({r.last + 1, -r.bytes});
  }
  std::sort(events.begin(), events.end()); // at one index the frees (negative) come first
  int64_t live = 0, peak = 0;
  for (const auto &e : events)
    peak = std::max(peak, live += e.second);
  return peak;
}

void assignOffsets(BufferPlan &plan) {
  std::vector<size_t> order(plan.regions.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return plan.regions[a].bytes > plan.regions[b].bytes;
  });
  std::vector<size_t> placed;
  for (size_t idx : order) {
    BufferRegion &r = plan.regions[idx];
    std::vector<std::pair<int64_t, int64_t>> busy; // [offset, end) of regions live with r
    for (size_t p : placed)
      if (liveTogether(r, plan.regions[p]))
        busy.push_back({plan.regions[p].offset, plan.regions[p].offset + plan.regions[p].bytes});
    std::sort(busy.begin(), busy.end());
    int64_t best = -1, bestGap = 0, cursor = 0;
    for (const auto &[off, end] : busy) {
      const int64_t gap = off - cursor;
      if (gap >= r.bytes && (best < 0 || gap < bestGap)) {
        best = cursor;
        bestGap = gap;
      }
      cursor = std::max(cursor, end);
    }
    r.offset = best >= 0 ? best : cursor;
    placed.push_back(idx);
  }
  plan.arenaBytes = 0;
  for (const BufferRegion &r : plan.regions)
    plan.arenaBytes = std::max(plan.arenaBytes, r.offset + r.bytes);
  plan.peakBytes = peakOf(plan);
}

DictionaryAttr regionAttr(Builder &b, const BufferRegion &r) {
  return b.getDictionaryAttr({b.getNamedAttr("offset", b.getI64IntegerAttr(r.offset)),
                              b.getNamedAttr("bytes", b.getI64IntegerAttr(r.bytes))});
}

void writePlan(ModuleOp module, func::FuncOp fn, const BufferPlan &plan) {
  Builder b(module.getContext());
  for (Operation &op : fn.getBody().front()) {
    op.removeAttr(kBuffer);
    op.removeAttr(kScratch);
  }
  llvm::DenseMap<Operation *, SmallVector<Attribute>> results;
  for (const BufferRegion &r : plan.regions) {
    if (r.result < 0) {
      r.op->setAttr(kScratch, regionAttr(b, r));
      continue;
    }
    auto &list = results[r.op];
    list.resize(r.op->getNumResults(), b.getDictionaryAttr({}));
    list[r.result] = regionAttr(b, r);
  }
  for (auto &[op, list] : results)
    op->setAttr(kBuffer, b.getArrayAttr(list));
  module->setAttr(kSummary,
                  b.getDictionaryAttr(
                      {b.getNamedAttr("max_tokens", b.getI64IntegerAttr(plan.maxTokens)),
                       b.getNamedAttr("alignment", b.getI64IntegerAttr(plan.alignment)),
                       b.getNamedAttr("arena_bytes", b.getI64IntegerAttr(plan.arenaBytes)),
                       b.getNamedAttr("peak_bytes", b.getI64IntegerAttr(plan.peakBytes)),
                       b.getNamedAttr("num_buffers", b.getI64IntegerAttr(
                                                         static_cast<int64_t>(plan.regions.size())))}));
}

/// offset and bytes of a {offset, bytes} dictionary; failure when it is not one.
LogicalResult readRegion(Attribute a, int64_t &offset, int64_t &bytes) {
  auto d = dyn_cast_or_null<DictionaryAttr>(a);
  auto o = d ? dyn_cast_or_null<IntegerAttr>(d.get("offset")) : IntegerAttr();
  auto n = d ? dyn_cast_or_null<IntegerAttr>(d.get("bytes")) : IntegerAttr();
  if (!o || !n)
    return failure();
  offset = o.getInt();
  bytes = n.getInt();
  return success();
}

int64_t summaryInt(DictionaryAttr d, StringRef key) {
  auto a = dyn_cast_or_null<IntegerAttr>(d.get(key));
  return a ? a.getInt() : -1;
}

} // namespace

std::vector<int64_t> bufferBytesOf(Operation *op, int64_t maxTokens, int64_t alignment) {
  std::vector<int64_t> bytes(op->getNumResults() + 1, 0);
  for (unsigned r = 0; r < op->getNumResults(); ++r)
    if (isActivation(op->getResult(r)))
      bytes[r] = rowsBytes(maxTokens, cast<RankedTensorType>(op->getResult(r).getType()).getDimSize(1),
                           alignment);
  // Scratch: the gather of permuted inputs, the logits' rows.
  if (auto q = dyn_cast<QuantizedLinearOp>(op); q && q.getPerm())
    bytes.back() = rowsBytes(maxTokens, q.getInFeatures(), alignment);
  if (auto l = dyn_cast<LogitsOp>(op))
    bytes.back() = rowsBytes(maxTokens, cast<RankedTensorType>(l.getX().getType()).getDimSize(1),
                             alignment);
  return bytes;
}

LogicalResult planBuffers(ModuleOp module, int64_t maxTokens) {
  if (maxTokens <= 0 || maxTokens > 65536)
    return module.emitError("qlc-plan-buffers: max-tokens must be in [1, 65536], got ")
           << maxTokens;
  func::FuncOp fn = forwardOf(module);
  if (!fn)
    return success();
  FailureOr<BufferPlan> plan = collect(fn, maxTokens);
  if (failed(plan))
    return failure();
  assignOffsets(*plan);
  writePlan(module, fn, *plan);
  return success();
}

FailureOr<BufferPlan> readBufferPlan(ModuleOp module, int64_t maxTokens) {
  func::FuncOp fn = forwardOf(module);
  if (!fn)
    return module.emitError("the module has no @forward function to plan buffers for");
  auto summary = module->getAttrOfType<DictionaryAttr>(kSummary);
  if (!summary)
    return module.emitError("the module has no qlc.buffers plan");
  const int64_t planned = summaryInt(summary, "max_tokens");
  if (planned != maxTokens)
    return module.emitError("the qlc.buffers plan is for max_tokens ")
           << planned << ", not " << maxTokens << "; run qlc-plan-buffers with max-tokens="
           << maxTokens;
  FailureOr<BufferPlan> planOr = collect(fn, maxTokens);
  if (failed(planOr))
    return failure();
  BufferPlan &plan = *planOr;
  plan.alignment = summaryInt(summary, "alignment");
  plan.arenaBytes = summaryInt(summary, "arena_bytes");
  if (plan.alignment <= 0 || (plan.alignment & (plan.alignment - 1)) != 0 ||
      plan.arenaBytes < 0)
    return module.emitError("the qlc.buffers plan needs a power-of-two alignment and a "
                            "non-negative arena_bytes");
  for (BufferRegion &r : plan.regions) {
    const int64_t needed = r.bytes;
    Attribute a;
    if (r.result < 0) {
      a = r.op->getAttr(kScratch);
    } else if (auto list = r.op->getAttrOfType<ArrayAttr>(kBuffer);
               list && list.size() == r.op->getNumResults()) {
      a = list[r.result];
    }
    if (failed(readRegion(a, r.offset, r.bytes)))
      return r.op->emitError("has no ")
             << (r.result < 0 ? "qlc.scratch" : "qlc.buffer")
             << " {offset, bytes} for its " << (r.result < 0 ? "scratch" : "result #")
             << (r.result < 0 ? "" : std::to_string(r.result)) << " in the buffer plan";
    if (r.offset < 0 || r.offset % plan.alignment != 0 || r.bytes < needed ||
        r.offset + r.bytes > plan.arenaBytes)
      return r.op->emitError("buffer [")
             << r.offset << ", +" << r.bytes << ") must be aligned to " << plan.alignment
             << ", hold " << needed << " bytes and lie in the arena of " << plan.arenaBytes
             << " bytes";
  }
  // Regions live at the same op must not overlap; sorted by first use, each is
  // compared with the ones still live when it starts.
  std::vector<const BufferRegion *> byStart;
  for (const BufferRegion &r : plan.regions)
    byStart.push_back(&r);
  std::stable_sort(byStart.begin(), byStart.end(),
                   [](const BufferRegion *a, const BufferRegion *b) { return a->first < b->first; });
  std::vector<const BufferRegion *> live;
  for (const BufferRegion *r : byStart) {
    llvm::erase_if(live, [&](const BufferRegion *o) { return o->last < r->first; });
    for (const BufferRegion *o : live)
      if (r->offset < o->offset + o->bytes && o->offset < r->offset + r->bytes)
        return r->op->emitError("buffer [")
               << r->offset << ", +" << r->bytes << ") overlaps the buffer [" << o->offset
               << ", +" << o->bytes << ") of '" << o->op->getName()
               << "', which is live at the same time";
    live.push_back(r);
  }
  plan.peakBytes = peakOf(plan);
  if (summaryInt(summary, "peak_bytes") != plan.peakBytes ||
      summaryInt(summary, "num_buffers") != static_cast<int64_t>(plan.regions.size()))
    return module.emitError("the qlc.buffers summary (peak_bytes ")
           << summaryInt(summary, "peak_bytes") << ", num_buffers "
           << summaryInt(summary, "num_buffers") << ") differs from its buffers (peak_bytes "
           << plan.peakBytes << ", num_buffers " << plan.regions.size() << ")";
  return planOr;
}

} // namespace qlc
