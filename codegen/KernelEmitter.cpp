//===- KernelEmitter.cpp - @forward -> one kernel call per op --------------===//
//
// Walks @forward in order and emits one kernel call per op, with every shape a template
// argument. Activations and scratch regions sit at the offsets of the module's buffer
// plan (qlc-plan-buffers; a module without one is planned here by the same function);
// weights become indices into the runtime's weight table. The backend's KernelSyntax
// spells the calls.
//
#include "codegen/KernelEmitter.h"
#include "ir/BufferPlan.h"
#include "ir/QlcOps.h"
#include "ir/Rope.h"
#include "ir/qlc_w4_tiles.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <fmt/format.h>

#include <map>

using namespace mlir;

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

int64_t width(Value v) { return cast<RankedTensorType>(v.getType()).getDimSize(1); }
std::string num(int64_t v) { return std::to_string(v); }

std::string dtypeOf(Type t) {
  if (t.isF16()) return "f16";
  if (t.isBF16()) return "bf16";
  if (t.isUnsignedInteger(8)) return "u8";
  if (t.isSignedInteger(8) || t.isSignlessInteger(8)) return "i8";
  if (t.isInteger(32)) return "i32";
  return "f32";
}
/// The bytes the KV formats give a head of `hd` channels (the kernels' head_bytes; the
/// generated code checks that they agree).
int64_t kvHeadBytes(StringRef dtype, int64_t hd) {
  return dtype == "int8" ? 4 + (hd + 3) / 4 * 4 : dtype == "f16" ? 2 * hd : 4 * hd;
}
/// An exact float literal (hexadecimal, so no digits are lost).
std::string flt(double v) { return fmt::format("{:a}f", static_cast<float>(v)); }

class Walker {
public:
  Walker(const KernelSyntax &syntax, const CodegenOptions &opts) : syntax(syntax), opts(opts) {}
  llvm::Expected<CodegenResult> run(ModuleOp module);

private:
  llvm::Error emitOp(Operation *op);
  std::string act(Value v) { return names.lookup(v.getAsOpaquePointer()); }
  /// The kernels' pointer to weight v, stored at its dtype (1-D float weights in f32).
  std::string weightExpr(Value v);
  /// The same for a weight stored as `as` says (a layout of ir/qlc_w4_tiles.h), the first
  /// time v is seen.
  std::string tiledWeightExpr(Value v, const PackedWeight &as);
  std::string weightName(Value v) {
    return v.getDefiningOp<WeightOp>().getTensorName().str();
  }
  void allocate(Value v);
  /// The plan's scratch region of `op` (the gather of permuted inputs, the logits' rows).
  std::string scratch(Operation *op) {
    return fmt::format("reinterpret_cast<float *>(ctx->scratch + {})", scratchOf.lookup(op));
  }
  llvm::Error readPlan(ModuleOp module);
  std::string invFreqTable(const RopeParams &p);
  /// The tiling template argument of `op` ("" without a qlc.tiling attribute: the
  /// kernels' defaults), or an error in `error`.
  std::string tilingArg(Operation *op, std::string &error);
  /// Appends the weight's element type and the tiling argument to a dense projection's
  /// template arguments (nothing without a qlc.tiling attribute).
  void addDenseTiling(Operation *op, Value weight, std::vector<std::string> &targs,
                      std::string &error);
  void call(Operation *op, const std::string &name, const std::vector<std::string> &targs,
            const std::string &args, const std::string &weight = "");

  const KernelSyntax &syntax;
  const CodegenOptions &opts;
  CodegenResult result;
  std::string body, decls;
  std::vector<ConstTable> tables;
  llvm::DenseMap<const void *, std::string> names;
  llvm::DenseMap<const void *, int> weightIndex;
  // The buffer plan: arena offsets of the activations and of the ops' scratch regions.
  llvm::DenseMap<const void *, int64_t> offsetOf;
  llvm::DenseMap<Operation *, int64_t> scratchOf;
  std::map<std::vector<float>, std::string> invFreqTables;
  int64_t numLayers = 0, vocab = 0, pageSize = 0;
  StagingNeeds needs;
};

llvm::Error Walker::readPlan(ModuleOp module) {
  std::string diag;
  ScopedDiagnosticHandler capture(module.getContext(), [&](Diagnostic &d) {
    if (diag.empty())
      diag = d.str();
    return success();
  });
  // A module from a pipeline without qlc-plan-buffers is planned here, by the pass's
  // own function; a plan it carries is checked before its offsets are trusted.
  if (!module->hasAttr("qlc.buffers") && failed(planBuffers(module, opts.maxTokens)))
    return err("planning the activation buffers: " + diag);
  FailureOr<BufferPlan> plan = readBufferPlan(module, opts.maxTokens);
  if (failed(plan))
    return err("the module's activation buffer plan is unusable: " + diag);
  BufferPlanInfo &info = result.buffers;
  info.maxTokens = plan->maxTokens;
  info.alignment = plan->alignment;
  info.arenaBytes = plan->arenaBytes;
  info.peakBytes = plan->peakBytes;
  for (const BufferRegion &r : plan->regions) {
    if (r.result < 0)
      scratchOf[r.op] = r.offset;
    else
      offsetOf[r.op->getResult(r.result).getAsOpaquePointer()] = r.offset;
    info.buffers.push_back({r.op->getName().getStringRef().str(), r.result, r.first, r.last,
                            r.offset, r.bytes});
  }
  result.scratchBytes = plan->arenaBytes;
  return llvm::Error::success();
}

void Walker::addDenseTiling(Operation *op, Value weight, std::vector<std::string> &targs,
                            std::string &error) {
  const std::string t = tilingArg(op, error);
  if (!t.empty())
    targs.insert(targs.end(),
                 {syntax.elementType(dtypeOf(cast<RankedTensorType>(weight.getType())
                                                 .getElementType())),
                  t});
}

std::string Walker::tilingArg(Operation *op, std::string &error) {
  auto t = op->getAttrOfType<DictionaryAttr>("qlc.tiling");
  if (!t)
    return "";
  std::string arg = syntax.tiling(t, error);
  if (!error.empty())
    error = op->getName().getStringRef().str() + ": qlc.tiling: " + error;
  return arg;
}

std::string Walker::weightExpr(Value v) {
  auto type = v.getDefiningOp<WeightOp>().getType();
  // 1-D float weights (norm scales, biases) are stored in f32 for the kernels.
  std::string dt = dtypeOf(type.getElementType());
  if (type.getRank() == 1 && isa<FloatType>(type.getElementType()))
    dt = "f32";
  PackedWeight p;
  p.dtype = dt;
  p.shape.assign(type.getShape().begin(), type.getShape().end());
  return tiledWeightExpr(v, p);
}

std::string Walker::tiledWeightExpr(Value v, const PackedWeight &as) {
  auto w = v.getDefiningOp<WeightOp>();
  auto it = weightIndex.find(w.getOperation());
  int idx;
  if (it == weightIndex.end()) {
    idx = static_cast<int>(result.weights.size());
    weightIndex[w.getOperation()] = idx;
    PackedWeight p = as;
    p.name = w.getTensorName().str();
    result.weights.push_back(p);
  } else {
    idx = it->second;
  }
  return fmt::format("static_cast<const {} *>(ctx->weights[{}])", syntax.elementType(as.dtype),
                     idx);
}

void Walker::allocate(Value v) {
  std::string name = fmt::format("b{}", names.size());
  names[v.getAsOpaquePointer()] = name;
  // readPlan checked that every activation has its offset.
  body += fmt::format("  float *{} = reinterpret_cast<float *>(ctx->scratch + {});\n", name,
                      offsetOf.lookup(v.getAsOpaquePointer()));
}

std::string Walker::invFreqTable(const RopeParams &p) {
  std::vector<float> values = ropeInvFreq(p);
  auto it = invFreqTables.find(values);
  if (it == invFreqTables.end()) {
    ConstTable t{fmt::format("kInvFreq{}", invFreqTables.size()), values};
    tables.push_back(t);
    it = invFreqTables.emplace(values, syntax.tableRef(t)).first;
  }
  return it->second;
}

void Walker::call(Operation *op, const std::string &name, const std::vector<std::string> &targs,
                  const std::string &args, const std::string &weight) {
  body += fmt::format("  {}({}, {});\n", syntax.kernel(name, targs, true), syntax.execArg(), args);
  result.kernels.push_back(
      {op->getName().getStringRef().str(), syntax.kernel(name, targs, false), weight});
}

llvm::Error Walker::emitOp(Operation *op) {
  std::string error;
  auto out = [&](Value v) {
    allocate(v);
    return act(v);
  };
  llvm::TypeSwitch<Operation *>(op)
      .Case<WeightOp>([&](auto) {})
      .Case<EmbeddingOp>([&](EmbeddingOp o) {
        std::string w = weightExpr(o.getTable()), y = out(o.getResult());
        call(o, "embedding", {num(width(o.getResult()))}, fmt::format("M, st->tokens, {}, {}", w, y),
             weightName(o.getTable()));
      })
      .Case<RmsNormOp>([&](RmsNormOp o) {
        std::string w = weightExpr(o.getWeight()), x = act(o.getX()), y = out(o.getResult());
        call(o, "rms_norm", {num(width(o.getX()))},
             fmt::format("M, {}, {}, {}, {}", x, w, flt(o.getEpsilon().convertToDouble()), y),
             weightName(o.getWeight()));
      })
      .Case<LinearOp>([&](LinearOp o) {
        std::string w = weightExpr(o.getWeight());
        std::string bias = o.getBias() ? weightExpr(o.getBias()) : "nullptr";
        std::vector<std::string> targs = {num(width(o.getX())), num(width(o.getResult()))};
        addDenseTiling(o, o.getWeight(), targs, error);
        if (!cast<RankedTensorType>(o.getWeight().getType()).getElementType().isF32())
          needs.projections.insert({width(o.getX()), width(o.getResult())});
        std::string x = act(o.getX()), y = out(o.getResult());
        call(o, "linear", targs, fmt::format("M, {}, {}, {}, {}", x, w, bias, y),
             weightName(o.getWeight()));
      })
      .Case<QuantizedLinearOp>([&](QuantizedLinearOp o) {
        const std::vector<std::string> kn = {num(o.getInFeatures()), num(o.getOutFeatures())};
        needs.projections.insert({o.getInFeatures(), o.getOutFeatures()});
        const std::string t = tilingArg(o, error);
        if (!error.empty())
          return;
        auto tiled = [&](std::vector<std::string> a) {
          if (!t.empty())
            a.push_back(t);
          return a;
        };
        if (o.getFormat() == "nf4") {
          const bool dq = static_cast<bool>(o.getScales2());
          std::string q = weightExpr(o.getQweight()), a = weightExpr(o.getScales());
          std::string a2 = dq ? weightExpr(o.getScales2()) : "nullptr";
          std::string bias = o.getBias() ? weightExpr(o.getBias()) : "nullptr";
          std::string x = act(o.getX()), y = out(o.getResult());
          call(o, "qlinear_nf4", tiled({kn[0], kn[1], num(o.getGroupSize()), dq ? "true" : "false"}),
               fmt::format("M, {}, {}, {}, {}, {}, {}, {}", x, q, a, a2,
                           flt(o.getAbsmaxOffset().convertToDouble()), bias, y),
               weightName(o.getQweight()));
          return;
        }
        if (o.getFormat() != "int") {
          error = "codegen does not handle quantized format '" + o.getFormat().str() + "' yet";
          return;
        }
        if (!cast<RankedTensorType>(o.getScales().getType()).getElementType().isF16()) {
          error = "the int kernels take f16 scales";
          return;
        }
        const int64_t K = o.getInFeatures(), N = o.getOutFeatures(), G = o.getGroupSize();
        if (syntax.w4Tiles() && o.getBits() == 4 && !o.getPerm() && G > 0 &&
            w4tiles::applies(K, N, G)) {
          // The codes and the scale/zero entries in the tile layout (ir/qlc_w4_tiles.h).
          PackedWeight codes{"", "u8", {N, K / 2}, "w4_tiles", "", K, N, G};
          PackedWeight entries{"", "u8", {w4tiles::entry_bytes(K, N, G)}, "w4_tile_entries", "", K,
                               N,  G};
          if (o.getZeros())
            entries.zeros = o.getZeros().getDefiningOp<WeightOp>().getTensorName().str();
          std::string q = tiledWeightExpr(o.getQweight(), codes);
          std::string e = tiledWeightExpr(o.getScales(), entries);
          std::string bias = o.getBias() ? weightExpr(o.getBias()) : "nullptr";
          std::string x = act(o.getX()), y = out(o.getResult());
          call(o, "qlinear_int_tiles", tiled({kn[0], kn[1], num(G)}),
               fmt::format("M, {}, {}, {}, {}, {}", x, q, e, bias, y), weightName(o.getQweight()));
          return;
        }
        std::string q = weightExpr(o.getQweight()), sc = weightExpr(o.getScales());
        std::string z = o.getZeros() ? weightExpr(o.getZeros()) : "nullptr";
        std::string bias = o.getBias() ? weightExpr(o.getBias()) : "nullptr";
        std::string x = act(o.getX()), y = out(o.getResult());
        const std::vector<std::string> shape =
            tiled({kn[0], kn[1], num(o.getBits()), num(o.getGroupSize())});
        if (o.getPerm()) {
          if (!syntax.supportsPerm()) {
            error = "this target's codegen does not handle input permutations (act-order "
                    "checkpoints with a g_idx) yet";
            return;
          }
          if (!o.getPerm().getDefiningOp<WeightOp>() ||
              !cast<RankedTensorType>(o.getPerm().getType()).getElementType().isInteger(32)) {
            error = "codegen: perm must be an i32 qlc.weight";
            return;
          }
          std::string perm = weightExpr(o.getPerm());
          call(o, "qlinear_int_perm", shape,
               fmt::format("M, {}, {}, {}, {}, {}, {}, {}, {}", x, perm, scratch(o), q, sc, z,
                           bias, y),
               weightName(o.getQweight()));
          return;
        }
        call(o, "qlinear_int", shape, fmt::format("M, {}, {}, {}, {}, {}, {}", x, q, sc, z, bias, y),
             weightName(o.getQweight()));
      })
      .Case<RopeOp>([&](RopeOp o) {
        std::string t = invFreqTable(o.getParams()), x = act(o.getX()), y = out(o.getResult());
        call(o, "rope", {num(width(o.getX())), num(o.getHeadDim())},
             fmt::format("M, st->positions, {}, {}, {}", t, x, y));
      })
      .Case<AttentionOp>([&](AttentionOp o) {
        const StringRef kvd = o.getKvDtype();
        const int64_t row = o.getNumKvHeads() * kvHeadBytes(kvd, o.getHeadDim());
        KvCacheLayout &kv = result.kvCache;
        if (kv.rowBytes == 0) {
          kv = {kvd.str(), row, 2 * numLayers * row};
          decls += fmt::format("static_assert({}::head_bytes<{}>() * {} * 2 * {} == {},\n"
                               "              \"KV row size differs from the manifest's\");\n",
                               syntax.kvFormat(kvd.str()), o.getHeadDim(), o.getNumKvHeads(),
                               numLayers, kv.positionBytes);
        } else if (kv.dtype != kvd || kv.rowBytes != row) {
          error = fmt::format("qlc.attention of layer {} has a {} KV row of {} bytes, another "
                              "layer {} of {}: the cache needs one row format",
                              o.getLayer(), kvd.str(), row, kv.dtype, kv.rowBytes);
          return;
        }
        std::string q = act(o.getQ()), k = act(o.getK()), v = act(o.getV());
        std::optional<RopeParams> rope = o.getRope(); // qlc-fuse-rope
        std::string freq = rope ? invFreqTable(*rope) : "nullptr";
        std::string y = out(o.getResult());
        std::string strides; // qlc-fold-qkv-split: column ranges of the fused rows
        if (o.getQkvPacked()) {
          const int64_t qw = o.getNumHeads() * o.getHeadDim();
          const int64_t kw = o.getNumKvHeads() * o.getHeadDim();
          k = fmt::format("{} + {}", q, qw);
          v = fmt::format("{} + {}", q, qw + kw);
          strides = fmt::format(", {}, {}", qw + 2 * kw, qw + 2 * kw);
        }
        call(o, "attention",
             {num(numLayers), num(o.getNumHeads()), num(o.getNumKvHeads()), num(o.getHeadDim()),
              num(o.getSlidingWindow().value_or(0)), syntax.kvFormat(kvd.str()), num(pageSize)},
             syntax.attentionArgs(o.getLayer(), flt(o.getScale().convertToDouble()), q, k, v, y,
                                  freq) +
                 strides);
      })
      .Case<SiluMulOp>([&](SiluMulOp o) {
        std::string g = act(o.getGate()), u = act(o.getUp()), y = out(o.getResult());
        call(o, "silu_mul", {num(width(o.getGate()))}, fmt::format("M, {}, {}, {}", g, u, y));
      })
      .Case<SwiGluOp>([&](SwiGluOp o) {
        std::string x = act(o.getX()), y = out(o.getResult());
        call(o, "swiglu", {num(width(o.getResult()))}, fmt::format("M, {}, {}", x, y));
      })
      .Case<SplitOp>([&](SplitOp o) {
        std::string x = act(o.getX());
        int64_t off = 0;
        for (Value r : o.getResults()) {
          std::string y = out(r);
          call(o, "split_cols", {num(width(o.getX())), num(off), num(width(r))},
               fmt::format("M, {}, {}", x, y));
          off += width(r);
        }
      })
      .Case<AddRmsNormOp>([&](AddRmsNormOp o) {
        std::string w = weightExpr(o.getWeight()), a = act(o.getLhs()), c = act(o.getRhs());
        std::string s = out(o.getSum()), y = out(o.getResult());
        call(o, "add_rms_norm", {num(width(o.getLhs()))},
             fmt::format("M, {}, {}, {}, {}, {}, {}", a, c, w,
                         flt(o.getEpsilon().convertToDouble()), s, y),
             weightName(o.getWeight()));
      })
      .Case<AddOp>([&](AddOp o) {
        std::string a = act(o.getLhs()), c = act(o.getRhs()), y = out(o.getResult());
        call(o, "add", {num(width(o.getLhs()))}, fmt::format("M, {}, {}, {}", a, c, y));
      })
      .Case<LogitsOp>([&](LogitsOp o) {
        std::string w = weightExpr(o.getWeight()), x = act(o.getX());
        vocab = width(o.getResult());
        // The rows asked for are gathered into the op's scratch region.
        std::vector<std::string> targs = {num(width(o.getX())), num(vocab)};
        addDenseTiling(o, o.getWeight(), targs, error);
        if (!cast<RankedTensorType>(o.getWeight().getType()).getElementType().isF32())
          needs.projections.insert({width(o.getX()), vocab});
        call(o, "logits", targs, syntax.logitsArgs(x, w, scratch(o)),
             weightName(o.getWeight()));
      })
      .Case<func::ReturnOp>([&](func::ReturnOp o) {
        if (o.getNumOperands() != 1 || !o.getOperand(0).getDefiningOp<LogitsOp>())
          error = "@forward must return the result of qlc.logits";
      })
      .Default([&](Operation *o) {
        error = "codegen does not handle '" + o->getName().getStringRef().str() + "'";
      });
  if (!error.empty())
    return err(error);
  return llvm::Error::success();
}

llvm::Expected<CodegenResult> Walker::run(ModuleOp module) {
  auto fn = module.lookupSymbol<func::FuncOp>("forward");
  if (!fn || fn.getNumArguments() != 2 || !fn.getBody().hasOneBlock())
    return err("the module has no @forward(tokens, positions) function");
  auto info = module->getAttrOfType<DictionaryAttr>("qlc.model");
  if (!info)
    return err("the module has no qlc.model attribute");
  auto layers = dyn_cast_or_null<IntegerAttr>(info.get("num_layers"));
  if (!layers || layers.getInt() <= 0)
    return err("qlc.model needs a positive integer num_layers");
  numLayers = layers.getInt();
  if (llvm::Error e = readPlan(module))
    return std::move(e);
  // The KV plan (qlc-plan-kv-cache): its page size is a template argument of attention.
  auto plan = module->getAttrOfType<DictionaryAttr>("qlc.kv_cache");
  auto planInt = [&](StringRef name) -> int64_t {
    auto a = plan ? dyn_cast_or_null<IntegerAttr>(plan.get(name)) : IntegerAttr();
    return a ? a.getInt() : -1;
  };
  pageSize = planInt("page_size");
  if (!plan || pageSize <= 0)
    return err("the module has no KV cache plan (qlc.kv_cache with a page_size): run "
               "qlc-plan-kv-cache");
  if (auto t = module->getAttrOfType<StringAttr>("qlc.tiling_target");
      t && t.getValue() != syntax.targetName())
    return err("the kernel configs (qlc.tiling) were selected for target " + t.getValue().str() +
               ", not " + syntax.targetName() + "; run qlc-select-tiling for this target");
  Block &block = fn.getBody().front();
  names[block.getArgument(0).getAsOpaquePointer()] = "st->tokens";
  names[block.getArgument(1).getAsOpaquePointer()] = "st->positions";
  for (Operation &op : block) {
    if (auto rope = dyn_cast<RopeOp>(op); rope && rope.getPositions() != block.getArgument(1))
      return err("qlc.rope must take @forward's positions argument");
    if (llvm::Error e = emitOp(&op))
      return std::move(e);
  }
  if (auto dtype = dyn_cast_or_null<StringAttr>(plan.get("dtype"));
      !dtype || (result.kvCache.rowBytes > 0 && dtype.getValue() != result.kvCache.dtype))
    return err("the qlc.kv_cache plan's dtype differs from the attention ops' kv_dtype " +
               result.kvCache.dtype);
  KvCacheLayout &kv = result.kvCache;
  kv.pageSize = pageSize;
  kv.pageBytes = planInt("page_bytes");
  kv.pages = planInt("pages");
  kv.maxPagesPerSeq = planInt("max_pages_per_seq");
  kv.maxBatch = planInt("max_batch");
  kv.budgetBytes = planInt("budget_bytes");
  if (auto layout = dyn_cast_or_null<StringAttr>(plan.get("layout")))
    kv.layout = layout.getValue().str();
  if (kv.layout != "page,layer,kv,position,head")
    return err("the qlc.kv_cache plan's layout '" + kv.layout +
               "' is not the kernels' page,layer,kv,position,head");
  if (kv.pages <= 0 || kv.maxPagesPerSeq <= 0 ||
      (kv.positionBytes > 0 && kv.pageBytes != kv.pageSize * kv.positionBytes))
    return err(fmt::format("the qlc.kv_cache plan is inconsistent: {} pages of {} bytes, {} "
                           "positions of {} bytes a page, {} pages a sequence",
                           kv.pages, kv.pageBytes, kv.pageSize, kv.positionBytes,
                           kv.maxPagesPerSeq));
  // The forward refuses a context whose pages are not the kernels' (qlc/abi.h).
  decls += fmt::format("constexpr int64_t kKvPageSize = {};\n", pageSize);
  // The backend's per-step staging (CUDA: tokens, positions, ... copied in) follows the
  // planned arena.
  const int64_t staging = (result.scratchBytes + 255) / 256 * 256;
  needs.vocab = vocab;
  const int64_t extra = syntax.stagingBytes(opts, needs);
  if (extra > 0) {
    result.scratchBytes = staging + extra;
    result.buffers.stagingOffset = staging;
    result.buffers.stagingBytes = extra;
  }
  result.source = syntax.finish(tables, decls, body, opts, staging, needs);
  return std::move(result);
}

} // namespace

int64_t tilingParam(DictionaryAttr t, const std::string &range, const std::string &key) {
  auto r = t.getAs<DictionaryAttr>(range);
  auto v = r ? r.getAs<IntegerAttr>(key) : IntegerAttr();
  return v ? v.getInt() : -1;
}

llvm::Expected<CodegenResult> emitKernelCalls(ModuleOp module, const KernelSyntax &syntax,
                                              const CodegenOptions &opts) {
  return Walker(syntax, opts).run(module);
}

} // namespace qlc
