//===- Pipelines.cpp - the named pass pipelines of qlc ---------------------===//
//
// Every pipeline qlc runs is assembled here and nowhere else.
//
#include "ir/QlcOps.h"
#include "passes/Nf4.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"

namespace qlc {

namespace {
/// After weight quantization only the embedding table and the logits projection are
/// float matrices; they are narrowed to --embedding-dtype (never widened).
mlir::LogicalResult addEmbeddingCast(mlir::OpPassManager &pm, const CompilePipelineOptions &opts,
                                     std::string &error) {
  const std::string &d = opts.embeddingDtype;
  if (d == "source")
    return mlir::success();
  if (d != "f16" && d != "bf16" && d != "f32") {
    error = "--embedding-dtype " + d + ": unknown (available: f16, bf16, f32, source)";
    return mlir::failure();
  }
  CastWeightsPassOptions o;
  o.dtype = d;
  o.onlyNarrow = true;
  pm.addPass(createCastWeightsPass(o));
  return mlir::success();
}

/// The weight-storage pass of --quant: a cast or a quantization (none for "none").
mlir::LogicalResult addQuantPasses(mlir::OpPassManager &pm, const CompilePipelineOptions &opts,
                                   std::string &error) {
  if (opts.quant == "none")
    return mlir::success();
  if (opts.quant == "f32" || opts.quant == "f16" || opts.quant == "bf16") {
    CastWeightsPassOptions o;
    o.dtype = opts.quant;
    pm.addPass(createCastWeightsPass(o));
    return mlir::success();
  }
  if (opts.quant.rfind("rtn-w", 0) == 0) {
    std::string rest = opts.quant.substr(5);
    QuantizeRtnPassOptions o;
    o.symmetric = rest.size() > 4 && rest.compare(rest.size() - 4, 4, "-sym") == 0;
    if (o.symmetric)
      rest.resize(rest.size() - 4);
    if (rest == "4" || rest == "8") {
      o.bits = rest == "4" ? 4 : 8;
      o.groupSize = opts.groupSize >= 0 ? opts.groupSize : (o.bits == 4 ? 128 : 0);
      pm.addPass(createQuantizeRtnPass(o));
      return addEmbeddingCast(pm, opts, error);
    }
  }
  if (opts.quant.rfind("awq-w", 0) == 0 && isCalibratedQuantScheme(opts.quant)) {
    if (opts.actOrder) {
      error = "--act-order applies to gptq-* schemes, not " + opts.quant;
      return mlir::failure();
    }
    QuantizeAwqPassOptions o;
    o.symmetric = opts.quant.size() > 10; // awq-w4-sym
    o.bits = opts.quant[5] == '4' ? 4 : 8;
    o.groupSize = opts.groupSize >= 0 ? opts.groupSize : (o.bits == 4 ? 128 : 0);
    pm.addPass(createQuantizeAwqPass(o));
    return addEmbeddingCast(pm, opts, error);
  }
  if (isCalibratedQuantScheme(opts.quant)) {
    std::string rest = opts.quant.substr(6);
    QuantizeGptqPassOptions o;
    o.symmetric = rest.size() > 4 && rest.compare(rest.size() - 4, 4, "-sym") == 0;
    if (o.symmetric)
      rest.resize(rest.size() - 4);
    o.bits = rest == "4" ? 4 : 8;
    o.groupSize = opts.groupSize >= 0 ? opts.groupSize : (o.bits == 4 ? 128 : 0);
    o.actOrder = opts.actOrder;
    o.staticGroups = opts.actOrder; // act-order keeps natural-order groups only this way
    pm.addPass(createQuantizeGptqPass(o));
    return addEmbeddingCast(pm, opts, error);
  }
  if (opts.quant == "nf4" || opts.quant == "nf4-dq") {
    QuantizeNf4PassOptions o;
    o.doubleQuant = opts.quant == "nf4-dq";
    if (opts.groupSize > 0)
      o.blockSize = opts.groupSize;
    if (opts.groupSize == 0 || !isBnbBlockSize(o.blockSize)) {
      error = "--group-size " + std::to_string(opts.groupSize) + ": " + opts.quant +
              " takes a block size of 32, 64, 128, ..., 4096 (default 64)";
      return mlir::failure();
    }
    pm.addPass(createQuantizeNf4Pass(o));
    return addEmbeddingCast(pm, opts, error);
  }
  std::string list;
  for (const auto &q : knownQuantSchemes())
    list += (list.empty() ? "" : ", ") + q;
  error = "--quant " + opts.quant + ": unknown or not implemented yet (available: " + list + ")";
  return mlir::failure();
}

} // namespace

void addKvCachePlan(mlir::OpPassManager &pm, const CompilePipelineOptions &opts) {
  if (opts.maxSeqLen <= 0)
    return;
  PlanKvCachePassOptions o;
  o.maxSeqLen = opts.maxSeqLen;
  o.maxBatch = opts.maxBatch;
  o.pageSize = opts.kvPageSize;
  o.memoryBudget = opts.kvMemoryBudget;
  o.target = opts.targetKind;
  pm.addPass(createPlanKvCachePass(o));
}

mlir::LogicalResult buildCompilePipeline(mlir::OpPassManager &pm,
                                         const CompilePipelineOptions &opts,
                                         std::string &error) {
  if (!isKnownKvDtype(opts.kvCache)) {
    error = "--kv-cache " + opts.kvCache + ": unknown (available: f32, f16, int8)";
    return mlir::failure();
  }
  if (opts.quantize && opts.kvCache != "f32") {
    QuantizeKvPassOptions o;
    o.dtype = opts.kvCache;
    pm.addPass(createQuantizeKvPass(o));
  }
  if (opts.quantize && mlir::failed(addQuantPasses(pm, opts, error)))
    return mlir::failure();
  // Fusion runs after quantization: projections quantized with one scheme fuse into
  // the tensors that quantizing the fused projection would make, and NF4 ones whose
  // blocks would straddle two weights are refused (with a remark) and stay apart.
  if (opts.fuse) {
    pm.addPass(createFuseQkvPass());
    pm.addPass(createFuseRopePass()); // after qkv, which looks through the ropes
    pm.addPass(createFoldQkvSplitPass()); // after rope: the split then feeds the attention
    pm.addPass(createFuseGateUpPass());
    pm.addPass(createFuseNormResidualPass());
  }
  // The cache is planned last: its rows depend on the attention ops' kv_dtype only, but
  // later passes must not change the attention ops the plan was made for.
  addKvCachePlan(pm, opts);
  // Scheduling: the kernel configs depend on the final shapes (after fusion).
  if (!opts.target.empty() && opts.selectTiling) {
    SelectTilingPassOptions o;
    o.target = opts.target;
    o.cache = opts.tuningCache;
    o.maxTokens = opts.maxTokens;
    pm.addPass(createSelectTilingPass(o));
  }
  // Last: the activation arena of the graph the passes above leave.
  if (opts.planBuffers) {
    PlanBuffersPassOptions pb;
    pb.maxTokens = opts.maxTokens;
    pm.addPass(createPlanBuffersPass(pb));
  }
  return mlir::success();
}

const std::vector<std::string> &knownQuantSchemes() {
  static const std::vector<std::string> s = {"none",   "f32",        "f16",   "bf16",
                                             "rtn-w4", "rtn-w4-sym", "rtn-w8", "rtn-w8-sym",
                                             "nf4",    "nf4-dq",
                                             "gptq-w4", "gptq-w4-sym", "gptq-w8", "gptq-w8-sym",
                                             "awq-w4", "awq-w4-sym", "awq-w8", "awq-w8-sym"};
  return s;
}

const std::vector<std::string> &qlcPassArguments() {
  static const std::vector<std::string> s = [] {
    std::vector<std::unique_ptr<mlir::Pass>> passes;
    passes.push_back(createCastWeightsPass());
    passes.push_back(createQuantizeRtnPass());
    passes.push_back(createQuantizeNf4Pass());
    passes.push_back(createQuantizeGptqPass());
    passes.push_back(createQuantizeAwqPass());
    passes.push_back(createQuantizeKvPass());
    passes.push_back(createFuseQkvPass());
    passes.push_back(createFuseRopePass());
    passes.push_back(createFoldQkvSplitPass());
    passes.push_back(createFuseGateUpPass());
    passes.push_back(createFuseNormResidualPass());
    passes.push_back(createPlanKvCachePass());
    passes.push_back(createSelectTilingPass());
    passes.push_back(createPlanBuffersPass());
    std::vector<std::string> names;
    for (const auto &p : passes)
      names.push_back(p->getArgument().str());
    return names;
  }();
  return s;
}

bool isCalibratedQuantScheme(const std::string &quant) {
  return quant == "gptq-w4" || quant == "gptq-w4-sym" || quant == "gptq-w8" ||
         quant == "gptq-w8-sym" || quant == "awq-w4" || quant == "awq-w4-sym" ||
         quant == "awq-w8" || quant == "awq-w8-sym";
}

namespace {
struct CompilePipelineCliOptions : mlir::PassPipelineOptions<CompilePipelineCliOptions> {
  Option<std::string> quant{*this, "quant", llvm::cl::desc("Quantization scheme"),
                            llvm::cl::init("none")};
  Option<int64_t> groupSize{*this, "group-size", llvm::cl::desc("Quantization group size"),
                            llvm::cl::init(-1)};
  Option<std::string> kvCache{*this, "kv-cache", llvm::cl::desc("KV cache dtype"),
                              llvm::cl::init("f32")};
  Option<std::string> embeddingDtype{
      *this, "embedding-dtype",
      llvm::cl::desc("Embedding/lm_head storage under weight quantization"),
      llvm::cl::init("f16")};
  Option<bool> fuse{*this, "fuse", llvm::cl::desc("Run the fusion passes"),
                    llvm::cl::init(true)};
  Option<bool> actOrder{*this, "act-order", llvm::cl::desc("gptq: act-order"),
                        llvm::cl::init(false)};
  Option<int64_t> maxSeqLen{*this, "max-seq-len",
                            llvm::cl::desc("Plan the KV cache for this many positions (0: no plan)"),
                            llvm::cl::init(0)};
  Option<int64_t> maxBatch{*this, "max-batch", llvm::cl::desc("KV plan: sequences at once"),
                           llvm::cl::init(1)};
  Option<int64_t> kvPageSize{*this, "kv-page-size",
                             llvm::cl::desc("KV plan: positions per page (0: the target's)"),
                             llvm::cl::init(0)};
  Option<int64_t> kvMemoryBudget{*this, "kv-memory-budget",
                                 llvm::cl::desc("KV plan: bytes the cache may take (0: no cap)"),
                                 llvm::cl::init(0)};
  Option<std::string> target{*this, "target",
                             llvm::cl::desc("Target (sm_XX: the KV plan is for CUDA; none: qlc-select-tiling does not run)"),
                             llvm::cl::init("")};
  Option<std::string> tuningCache{*this, "tuning-cache",
                                  llvm::cl::desc("Tuning cache of qlc-select-tiling"),
                                  llvm::cl::init("")};
  Option<int64_t> maxTokens{*this, "max-tokens",
                            llvm::cl::desc("Tokens per step the activation arena is sized for"),
                            llvm::cl::init(512)};
};
} // namespace

void registerQlcPassesAndPipelines() {
  registerQlcPasses();
  mlir::registerPassPipeline(
      "qlc-compile-pipeline", "The passes `qlc compile` runs before codegen",
      [](mlir::OpPassManager &pm, llvm::StringRef optionsStr,
         llvm::function_ref<mlir::LogicalResult(const llvm::Twine &)> errorHandler) {
        CompilePipelineCliOptions o;
        if (mlir::failed(o.parseFromString(optionsStr)))
          return mlir::failure();
        CompilePipelineOptions opts;
        opts.quant = o.quant;
        opts.groupSize = o.groupSize;
        opts.kvCache = o.kvCache;
        opts.embeddingDtype = o.embeddingDtype;
        opts.fuse = o.fuse;
        opts.actOrder = o.actOrder;
        opts.maxSeqLen = o.maxSeqLen;
        opts.maxBatch = o.maxBatch;
        opts.kvPageSize = o.kvPageSize;
        opts.kvMemoryBudget = o.kvMemoryBudget;
        opts.targetKind = llvm::StringRef(o.target).starts_with("sm_") ? "cuda" : "x86";
        opts.target = o.target;
        opts.tuningCache = o.tuningCache;
        opts.maxTokens = o.maxTokens;
        std::string error;
        if (mlir::failed(buildCompilePipeline(pm, opts, error)))
          return errorHandler("qlc-compile-pipeline: " + error);
        return mlir::success();
      },
      [](llvm::function_ref<void(const mlir::detail::PassOptions &)> optHandler) {
        optHandler(CompilePipelineCliOptions());
      });
}

} // namespace qlc
