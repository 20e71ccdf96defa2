//===- Compile.cpp - the qlc compile driver --------------------------------===//
#include "compiler/Compile.h"

#include "codegen/Codegen.h"
#include "compiler/Artifact.h"
#include "compiler/Autotune.h"
#include "compiler/Calibration.h"
#include "compiler/Checkpoint.h"
#include "compiler/GgufImport.h"
#include "compiler/Importer.h"
#include "compiler/StoreProvider.h"
#include "compiler/TokenizerAsset.h"
#include "passes/CalibExecutor.h"
#include "passes/Passes.h"

#include "qlc/abi.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using nlohmann::json;
namespace fs = std::filesystem;

namespace qlc {

char CompileError::ID = 0;

namespace {

llvm::Error badInput(const std::string &msg) {
  return llvm::make_error<CompileError>(msg, true);
}
llvm::Error internal(const std::string &msg) {
  return llvm::make_error<CompileError>(msg, false);
}
/// Wraps a frontend error (always about the input) as bad input.
llvm::Error asBadInput(llvm::Error e) { return badInput(llvm::toString(std::move(e))); }

class Stopwatch {
public:
  explicit Stopwatch(bool on) : on(on), t0(std::chrono::steady_clock::now()) {}
  void stage(const char *name) {
    auto now = std::chrono::steady_clock::now();
    if (on)
      llvm::errs() << llvm::format("qlc: %-22s %8.3f s\n", name,
                                   std::chrono::duration<double>(now - t0).count());
    t0 = now;
  }

private:
  bool on;
  std::chrono::steady_clock::time_point t0;
};

/// Loads config + weights of an HF model folder or a GGUF file.
llvm::Error loadSource(const std::string &source, bool configOnly, ModelConfig &cfg,
                       std::unique_ptr<WeightStore> &store, TokenizerAsset *tokenizer = nullptr) {
  fs::path p(source);
  std::error_code ec;
  if (!fs::exists(p, ec))
    return badInput(source + ": no such file or directory");
  if (!fs::is_directory(p)) {
    if (p.extension() == ".gguf") {
      auto mOr = importGguf(source, configOnly);
      if (!mOr)
        return asBadInput(mOr.takeError());
      cfg = mOr->config;
      store = std::move(mOr->store);
      if (tokenizer != nullptr) {
        if (mOr->tokenizerJson.empty() && !mOr->tokenizerError.empty())
          llvm::errs() << "qlc: warning: the artifact will have no tokenizer: "
                       << mOr->tokenizerError << "\n";
        tokenizer->json = std::move(mOr->tokenizerJson);
        tokenizer->chatTemplate = std::move(mOr->chatTemplate);
        tokenizer->bosToken = std::move(mOr->bosToken);
        tokenizer->eosToken = std::move(mOr->eosToken);
      }
      return llvm::Error::success();
    }
    if (!configOnly)
      return badInput(source + ": expected a Hugging Face model folder (config.json + "
                               "safetensors)");
  }
  fs::path config = fs::is_directory(p) ? p / "config.json" : p;
  if (!fs::exists(config))
    return badInput(config.string() + ": missing (a model folder needs config.json)");
  auto cfgOr = loadModelConfig(config.string());
  if (!cfgOr)
    return asBadInput(cfgOr.takeError());
  cfg = *cfgOr;
  if (configOnly)
    return llvm::Error::success();
  auto storeOr = WeightStore::loadFolder(p.string());
  if (!storeOr)
    return asBadInput(storeOr.takeError());
  store = std::move(*storeOr);
  if (llvm::Error e = repackCheckpoint(cfg, *store))
    return badInput(source + ": " + llvm::toString(std::move(e)));
  if (tokenizer != nullptr) {
    auto tokOr = loadFolderTokenizer(p.string());
    if (!tokOr)
      return asBadInput(tokOr.takeError());
    *tokenizer = std::move(*tokOr);
  }
  return llvm::Error::success();
}

struct PipelineRequest {
  CompilePipelineOptions po;
  std::string passPipeline;
  bool printIrAfterAll = false;
  std::vector<std::string> printIrAfter;
  bool timing = false;
};

llvm::Error runPipeline(mlir::ModuleOp module, const PipelineRequest &req) {
  for (const std::string &p : req.printIrAfter)
    if (std::find(qlcPassArguments().begin(), qlcPassArguments().end(), p) ==
        qlcPassArguments().end()) {
      std::string list;
      for (const auto &a : qlcPassArguments())
        list += (list.empty() ? "" : ", ") + a;
      return badInput("--mlir-print-ir-after " + p + ": no such pass (available: " + list + ")");
    }
  mlir::PassManager pm(module->getContext());
  // The KV plan refuses a budget too small for one sequence: that is bad input (its
  // flags), reported as one line; other pass errors stay internal.
  std::string planError;
  mlir::ScopedDiagnosticHandler planDiag(module->getContext(), [&](mlir::Diagnostic &d) {
    std::string msg = d.str();
    if (d.getSeverity() != mlir::DiagnosticSeverity::Error ||
        msg.rfind("qlc-plan-kv-cache: ", 0) != 0)
      return mlir::failure(); // printed as before
    if (planError.empty())
      planError = msg;
    return mlir::success(); // reported below as qlc's one line
  });
  std::string error;
  if (!req.passPipeline.empty()) {
    llvm::raw_string_ostream os(error);
    auto parsed = mlir::parsePassPipeline(req.passPipeline, os);
    if (mlir::failed(parsed)) {
      std::string line = error.substr(0, error.find('\n'));
      return badInput("--pass-pipeline " + req.passPipeline + ": " +
                      (line.empty() ? "cannot be parsed" : line));
    }
    if (parsed->getOpAnchorName() != mlir::ModuleOp::getOperationName())
      return badInput("--pass-pipeline " + req.passPipeline +
                      ": the pipeline must run on builtin.module(...)");
    static_cast<mlir::OpPassManager &>(pm) = *parsed;
    if (req.passPipeline.find("qlc-plan-kv-cache") == std::string::npos)
      addKvCachePlan(pm, req.po); // codegen needs a plan
  } else if (mlir::failed(buildCompilePipeline(pm, req.po, error))) {
    return badInput(error);
  }
  if (req.printIrAfterAll || !req.printIrAfter.empty()) {
    module->getContext()->disableMultithreading();
    std::vector<std::string> after = req.printIrAfter;
    const bool all = req.printIrAfterAll;
    pm.enableIRPrinting(
        [](mlir::Pass *, mlir::Operation *) { return false; },
        [after, all](mlir::Pass *p, mlir::Operation *) {
          return all || std::find(after.begin(), after.end(), p->getArgument().str()) != after.end();
        },
        /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
  }
  if (req.timing)
    pm.enableTiming();
  // A tuning cache that cannot be used is bad input, reported in one line.
  std::string cacheError;
  mlir::ScopedDiagnosticHandler cacheErrors(module->getContext(), [&](mlir::Diagnostic &d) {
    if (d.getSeverity() != mlir::DiagnosticSeverity::Error ||
        d.str().rfind("qlc-select-tiling: tuning cache", 0) != 0)
      return mlir::failure();
    if (cacheError.empty())
      cacheError = d.str();
    return mlir::success();
  });
  if (mlir::failed(pm.run(module))) {
    if (!planError.empty())
      return badInput(planError.substr(std::string("qlc-plan-kv-cache: ").size()));
    if (!cacheError.empty())
      return badInput(cacheError);
    return internal("the compile pipeline failed");
  }
  return llvm::Error::success();
}

/// The compiler that builds the generated code: the one asked for, else the
/// environment's, else the usual names.
llvm::Expected<std::string> findCompiler(const CodeBuild &build, const CompileOptions &opts) {
  const bool cuda = build.compiler == "nvcc";
  std::vector<std::string> candidates;
  const std::string &requested = cuda ? opts.nvcc : opts.cxx;
  if (!requested.empty())
    candidates.push_back(requested);
  else {
    if (auto env = llvm::sys::Process::GetEnv(cuda ? "NVCC" : "CXX"))
      candidates.push_back(*env);
    if (cuda)
      candidates.insert(candidates.end(), {"nvcc", "/usr/local/cuda/bin/nvcc"});
    else
      candidates.insert(candidates.end(), {"c++", "g++", "clang++"});
  }
  for (const auto &c : candidates) {
    if (c.find('/') != std::string::npos) {
      if (llvm::sys::fs::can_execute(c))
        return c;
      continue;
    }
    if (auto found = llvm::sys::findProgramByName(c))
      return *found;
  }
  if (cuda)
    return badInput("--target " + opts.target + " needs the CUDA compiler nvcc (CUDA 12 or "
                    "newer), which was not found (tried " + candidates.front() +
                    "); install the CUDA toolkit or pass --nvcc PATH");
  return badInput("no C++ compiler found (tried " + candidates.front() +
                  "); install g++ or pass --cxx");
}

/// Compiles the generated source into a shared object at `soPath`.
llvm::Error buildCode(const CodegenResult &cg, const TargetInfo &target, const std::string &dir,
                      const CompileOptions &opts, const std::string &soPath) {
  fs::create_directories(fs::path(dir) / "include" / "qlc");
  for (const EmbeddedFile &f : embeddedKernelSources()) {
    std::ofstream o(fs::path(dir) / "include" / f.path, std::ios::binary);
    o << f.contents;
  }
  const CodeBuild build = target.codeBuild();
  const std::string src = (fs::path(dir) / build.sourceName).string();
  {
    std::ofstream o(src, std::ios::binary);
    o << cg.source;
    if (!o)
      return internal(src + ": cannot write the generated source");
  }
  auto compiler = findCompiler(build, opts);
  if (!compiler)
    return compiler.takeError();
  std::vector<std::string> args = {*compiler};
  args.insert(args.end(), build.flags.begin(), build.flags.end());
  args.insert(args.end(), {"-I" + (fs::path(dir) / "include").string(), src, "-o", soPath});
  std::vector<llvm::StringRef> argRefs(args.begin(), args.end());
  const std::string log = (fs::path(dir) / "cxx.log").string();
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(log),
                                                llvm::StringRef(log)};
  std::string execErr;
  int rc = llvm::sys::ExecuteAndWait(*compiler, argRefs, std::nullopt, redirects, 0, 0, &execErr);
  if (rc != 0) {
    std::string out;
    if (auto buf = llvm::MemoryBuffer::getFile(log))
      out = (*buf)->getBuffer().take_back(2000).str();
    return internal("the " + build.compiler + " compiler failed (" + std::to_string(rc) +
                    ") on the generated code " + src + ": " + execErr + "\n" + out);
  }
  return llvm::Error::success();
}

/// The activation plan (qlc-plan-buffers) as the runtime checks it and `qlc inspect`
/// shows it: the summary, the staging after the arena, and every region with its live
/// range (op indices of @forward), so overlaps can be checked without the IR.
json bufferPlanJson(const BufferPlanInfo &b) {
  json table = json::array();
  for (const PlannedBuffer &r : b.buffers)
    table.push_back({{"op", r.op}, {"result", r.result}, {"first", r.first}, {"last", r.last},
                     {"offset", r.offset}, {"bytes", r.bytes}});
  return {{"max_tokens", b.maxTokens},       {"alignment", b.alignment},
          {"peak_bytes", b.peakBytes},       {"arena_bytes", b.arenaBytes},
          {"num_buffers", b.buffers.size()}, {"staging_offset", b.stagingOffset},
          {"staging_bytes", b.stagingBytes}, {"buffers", table}};
}

json makeManifest(const ModelConfig &cfg, const CompileOptions &opts, const TargetInfo &target,
                  const CodegenResult &cg, int64_t maxSeq) {
  json kernels = json::array();
  for (const auto &k : cg.kernels)
    kernels.push_back({{"op", k.op}, {"kernel", k.kernel}, {"weight", k.weight}});
  return {
      {"format", "qlc-artifact"},
      {"format_version", 1},
      {"qlc_version", QLC_VERSION_STRING},
      {"abi_version", QLC_ABI_VERSION},
      {"source", fs::absolute(opts.source).lexically_normal().string()},
      {"target",
       {{"name", target.name()}, {"kind", target.kind()}, {"features", target.requiredFeatures()},
        {"kernel_isa", target.kernelIsa()}}},
      {"quant",
       {{"scheme", opts.quant},
        {"group_size", opts.groupSize},
        {"embedding_dtype", opts.embeddingDtype}}},
      {"model",
       {{"architecture", cfg.architecture},
        {"vocab_size", cfg.vocabSize},
        {"hidden_size", cfg.hiddenSize},
        {"intermediate_size", cfg.intermediateSize},
        {"num_layers", cfg.numLayers},
        {"num_heads", cfg.numHeads},
        {"num_kv_heads", cfg.numKvHeads},
        {"head_dim", cfg.headDim},
        {"max_position_embeddings", cfg.maxPositionEmbeddings},
        {"max_seq_len", maxSeq},
        {"source_dtype", cfg.dtype},
        {"bos_token_id", cfg.bosTokenId},
        {"eos_token_ids", cfg.eosTokenIds}}},
      {"exec",
       {{"max_tokens", opts.maxTokens},
        {"scratch_bytes", cg.scratchBytes},
        {"activations", bufferPlanJson(cg.buffers)},
        {"kv_cache",
         {{"dtype", cg.kvCache.dtype},
          {"scales", cg.kvCache.dtype == "int8" ? "per-token-head-asym" : "none"},
          {"layout", cg.kvCache.layout},
          {"row_bytes", cg.kvCache.rowBytes},
          {"bytes_per_position", cg.kvCache.positionBytes},
          {"page_size", cg.kvCache.pageSize},
          {"page_bytes", cg.kvCache.pageBytes},
          {"pages", cg.kvCache.pages},
          {"max_pages_per_seq", cg.kvCache.maxPagesPerSeq},
          {"max_batch", cg.kvCache.maxBatch},
          {"budget_bytes", cg.kvCache.budgetBytes}}}}},
      {"kernels", kernels},
  };
}

/// What the frontend and the passes leave for codegen or the checkpoint writer.
struct Session {
  ModelConfig cfg;
  std::unique_ptr<WeightStore> store;
  TokenizerAsset tokenizer;
  CalibrationData calib;
  mlir::MLIRContext ctx;
  std::unique_ptr<StoreProvider> provider;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

/// The schemes that quantize the projections (not the storage casts).
bool quantizesProjections(const std::string &quant) {
  return quant != "none" && quant != "f32" && quant != "f16" && quant != "bf16";
}

/// Loads opts.source, imports it and runs the compile pipeline (calibrating where the
/// scheme needs it). With `checkpoint` (--emit-checkpoint / qlc export) the fusion passes
/// run only after the checkpoint is written, from the unfused quantized module.
llvm::Error loadAndRunPasses(const CompileOptions &opts, Session &s, Stopwatch &clock,
                             const ExportOptions *checkpoint) {
  // Calibration files are checked before the (possibly long) model load.
  for (const auto &[flag, file] : {std::pair<std::string, std::string>{"--calib", opts.calibFile},
                                   {"--calib-tokens", opts.calibTokens}}) {
    std::error_code ec;
    if (!file.empty() && !fs::is_regular_file(file, ec))
      return badInput(flag + " " + file + ": no such file");
  }
  if (isCalibratedQuantScheme(opts.quant) && opts.calibDevice == "cuda") {
    // A GPU that is asked for and missing is found out before the (long) model load.
    CalibrationData probe;
    probe.device = opts.calibDevice;
    std::string why;
    if (mlir::failed(calibDevice(probe, why)))
      return badInput(why);
  }
  if (llvm::Error e = loadSource(opts.source, false, s.cfg, s.store, &s.tokenizer))
    return e;
  if (llvm::Error e = validateTokenizer(s.tokenizer, opts.source))
    return asBadInput(std::move(e));
  if (s.cfg.checkpointQuant && quantizesProjections(opts.quant))
    return badInput(opts.source + ": is already quantized (quantization_config: " +
                    s.cfg.checkpointQuant->method + " w" +
                    std::to_string(s.cfg.checkpointQuant->bits) + "); compile it with --quant "
                    "none (its projections are imported as they are), not --quant " +
                    opts.quant);
  if (s.cfg.checkpointQuant && checkpoint != nullptr)
    return badInput(opts.source + ": is already a " + s.cfg.checkpointQuant->method +
                    " checkpoint; export quantizes a float model");
  clock.stage("load");

  auto moduleOr = importModel(s.ctx, s.cfg, s.store.get());
  if (!moduleOr)
    return badInput(opts.source + ": " + llvm::toString(moduleOr.takeError()));
  s.module = std::move(*moduleOr);
  clock.stage("import");
  s.provider = std::make_unique<StoreProvider>(*s.store);
  setWeightProvider(&s.ctx, s.provider.get());
  if (isCalibratedQuantScheme(opts.quant)) {
    CalibrationOptions copts{opts.calibFile, opts.calibTokens, opts.calibSamples,
                             opts.calibSeqLen};
    auto calibOr = loadCalibration(copts, s.tokenizer, s.cfg.maxPositionEmbeddings);
    if (!calibOr)
      return asBadInput(calibOr.takeError());
    s.calib = std::move(*calibOr);
    s.calib.device = opts.calibDevice;
    for (int32_t id : s.calib.tokens)
      if (id >= s.cfg.vocabSize)
        return badInput("--calib-tokens " + s.calib.source + ": token id " + std::to_string(id) +
                        " is outside the model's vocabulary of " +
                        std::to_string(s.cfg.vocabSize));
    llvm::errs() << "qlc: calibrating on " << s.calib.samples << " x " << s.calib.seqLen
                 << " tokens of " << s.calib.source << "\n";
    setCalibrationData(&s.ctx, &s.calib);
    clock.stage("calibration text");
  } else if (opts.calibFlagsGiven || opts.actOrder) {
    return badInput(std::string(opts.actOrder ? "--act-order" : "--calib") +
                    " applies to the calibrated schemes (gptq-*, awq-*), not --quant " +
                    opts.quant);
  }
  // --verbose shows the passes' remarks (a fusion refused, a weight left unquantized).
  mlir::ScopedDiagnosticHandler remarks(&s.ctx, [&](mlir::Diagnostic &d) {
    if (d.getSeverity() != mlir::DiagnosticSeverity::Remark)
      return mlir::failure(); // errors go on to the default handler
    if (opts.verbose)
      llvm::errs() << "qlc: remark: " << d.str() << "\n";
    return mlir::success();
  });
  PipelineRequest req;
  req.po.quant = opts.quant;
  req.po.groupSize = opts.groupSize;
  req.po.kvCache = opts.kvCache;
  req.po.embeddingDtype = opts.embeddingDtype;
  req.po.fuse = opts.fuse && checkpoint == nullptr;
  req.po.actOrder = opts.actOrder;
  // The KV plan runs with the last passes: not before a checkpoint is written.
  const int64_t maxSeq = opts.maxSeqLen ? opts.maxSeqLen
                                        : std::min<int64_t>(s.cfg.maxPositionEmbeddings, 4096);
  auto targetOr = lookupTarget(opts.target);
  if (!targetOr)
    return asBadInput(targetOr.takeError());
  req.po.targetKind = (*targetOr)->kind();
  req.po.maxSeqLen = checkpoint == nullptr ? maxSeq : 0;
  req.po.maxBatch = opts.maxBatch;
  req.po.kvPageSize = opts.kvPageSize;
  req.po.kvMemoryBudget = opts.kvMemoryMiB * (int64_t{1} << 20);
  // qlc-select-tiling runs with the last passes too (for the target checked above).
  auto selectTiling = [&] {
    if (!opts.selectTiling)
      return;
    req.po.target = (*targetOr)->name();
    req.po.tuningCache = opts.tuningCache.empty() ? defaultTuningCache() : opts.tuningCache;
  };
  if (checkpoint == nullptr)
    selectTiling();
  req.po.maxTokens = opts.maxTokens;
  req.passPipeline = opts.passPipeline;
  req.printIrAfterAll = opts.printIrAfterAll;
  req.printIrAfter = opts.printIrAfter;
  req.timing = opts.timing;
  if (llvm::Error e = runPipeline(*s.module, req))
    return e;
  clock.stage("passes");
  if (checkpoint == nullptr)
    return llvm::Error::success();
  if (llvm::Error e = writeCheckpoint(*s.module, s.cfg, *s.store, *checkpoint))
    return e;
  clock.stage("write checkpoint");
  // Then the fusion passes (unless --no-fuse), the KV plan and the kernel configs that
  // codegen needs.
  req.po.quantize = false;
  req.po.fuse = opts.fuse;
  req.po.maxSeqLen = maxSeq;
  selectTiling();
  return runPipeline(*s.module, req);
}

/// The checkpoint options of --emit-checkpoint / qlc export, checked before any work.
llvm::Expected<ExportOptions> checkpointOptions(const CompileOptions &opts,
                                                const std::string &outDir) {
  if (!opts.passPipeline.empty())
    return badInput("--pass-pipeline cannot be combined with writing a checkpoint (its "
                    "layout follows --quant)");
  auto formatOr = exportFormatFor(opts.quant);
  if (!formatOr)
    return formatOr.takeError();
  if (opts.checkpointFormat != "gptq" && opts.checkpointFormat != "gptq_v2")
    return badInput("--checkpoint-format " + opts.checkpointFormat +
                    ": unknown (available: gptq, gptq_v2)");
  std::error_code ec;
  if (!fs::is_directory(opts.source, ec))
    return badInput(opts.source + ": writing a checkpoint needs a Hugging Face model folder "
                                  "(its config.json is the checkpoint's)");
  if (fs::exists(outDir, ec) && (!fs::is_directory(outDir, ec) || !fs::is_empty(outDir, ec)))
    return badInput(outDir + ": exists and is not an empty directory");
  fs::path parent = fs::absolute(outDir).parent_path();
  if (!fs::is_directory(parent, ec))
    return badInput(outDir + ": the parent directory " + parent.string() + " does not exist");
  ExportOptions e;
  e.sourceDir = opts.source;
  e.outDir = outDir;
  e.format = *formatOr;
  e.gptqFormat = opts.checkpointFormat;
  e.descAct = opts.actOrder;
  e.quantizer = std::string("qlc ") + QLC_VERSION_STRING + " " + opts.quant;
  return e;
}

} // namespace

llvm::Error exportCheckpoint(const CompileOptions &opts) {
  Stopwatch clock(opts.verbose || opts.timing);
  if (opts.output.empty())
    return badInput("missing -o DIR: where to write the checkpoint");
  auto ckOr = checkpointOptions(opts, opts.output);
  if (!ckOr)
    return ckOr.takeError();
  CompileOptions o = opts;
  o.fuse = false;
  Session s;
  return loadAndRunPasses(o, s, clock, &*ckOr);
}

llvm::Error compileModel(const CompileOptions &opts) {
  Stopwatch clock(opts.verbose || opts.timing);
  if (opts.output.empty())
    return badInput("missing -o OUT: where to write the artifact");
  if (opts.maxTokens <= 0 || opts.maxTokens > 65536)
    return badInput("--max-tokens must be in [1, 65536]");
  // Positions are int32 in the ABI; qlc-run --max-seq has the same bound.
  if (opts.maxSeqLen < 0 || opts.maxSeqLen > (int64_t{1} << 24))
    return badInput("--max-seq-len must be in [1, 16777216] (or 0: the model's default), got " +
                    std::to_string(opts.maxSeqLen));
  if (opts.maxBatch <= 0 || opts.maxBatch > 65536)
    return badInput("--max-batch must be in [1, 65536], got " + std::to_string(opts.maxBatch));
  if (opts.kvPageSize < 0 || opts.kvPageSize > 65536)
    return badInput("--kv-page-size must be in [1, 65536] (or 0: the target's choice), got " +
                    std::to_string(opts.kvPageSize));
  if (opts.kvMemoryMiB < 0 || opts.kvMemoryMiB > (int64_t{1} << 30))
    return badInput("--kv-memory must be in [1, 2^30] MiB (or 0: no cap), got " +
                    std::to_string(opts.kvMemoryMiB));
  if (!opts.passPipeline.empty() && opts.quant != "none")
    return badInput("--pass-pipeline replaces the passes of --quant " + opts.quant +
                    ": give one or the other");
  if (opts.autotune && (!opts.selectTiling || !opts.passPipeline.empty()))
    return badInput("--autotune tunes the configs qlc-select-tiling chooses: it cannot be "
                    "combined with --no-select-tiling or --pass-pipeline");
  auto targetOr = lookupTarget(opts.target);
  if (!targetOr)
    return asBadInput(targetOr.takeError());
  const TargetInfo &target = **targetOr;
  if (opts.autotune)
    if (llvm::Error e = checkAutotuneMachine(target))
      return e;
  {
    fs::path parent = fs::absolute(opts.output).parent_path();
    std::error_code ec;
    if (!fs::is_directory(parent, ec))
      return badInput(opts.output + ": the output directory " + parent.string() + " does not exist");
    if (fs::is_directory(opts.output, ec))
      return badInput(opts.output + ": is a directory; -o needs the artifact's file name");
    if (::access(parent.c_str(), W_OK) != 0)
      return badInput(opts.output + ": the output directory " + parent.string() +
                      " is not writable");
  }
  std::optional<ExportOptions> checkpoint;
  if (!opts.emitCheckpoint.empty()) {
    auto ckOr = checkpointOptions(opts, opts.emitCheckpoint);
    if (!ckOr)
      return ckOr.takeError();
    checkpoint = std::move(*ckOr);
  }

  Session s;
  if (llvm::Error e = loadAndRunPasses(opts, s, clock, checkpoint ? &*checkpoint : nullptr))
    return e;
  ModelConfig &cfg = s.cfg;
  std::unique_ptr<WeightStore> &store = s.store;
  TokenizerAsset &tokenizer = s.tokenizer;
  mlir::OwningOpRef<mlir::ModuleOp> *moduleOr = &s.module;

  if (opts.autotune) {
    const std::string cache = opts.tuningCache.empty() ? defaultTuningCache() : opts.tuningCache;
    if (llvm::Error e = autotuneProjections(**moduleOr, target, opts, cache))
      return e;
    clock.stage("autotune");
    // The winners are in the cache now: select again.
    mlir::PassManager pm(&s.ctx);
    SelectTilingPassOptions so;
    so.target = target.name();
    so.cache = cache;
    so.maxTokens = opts.maxTokens;
    pm.addPass(createSelectTilingPass(so));
    if (mlir::failed(pm.run(**moduleOr)))
      return badInput("qlc-select-tiling failed on the tuning cache " + cache);
  }

  CodegenOptions co;
  co.maxTokens = opts.maxTokens;
  auto cgOr = target.emit(**moduleOr, co);
  if (!cgOr)
    return internal(llvm::toString(cgOr.takeError()));
  clock.stage("codegen");

  llvm::SmallString<128> tmpDir;
  if (auto ec = llvm::sys::fs::createUniqueDirectory("qlc-build", tmpDir))
    return internal("cannot create a temporary directory: " + ec.message());
  struct RemoveDir {
    std::string d;
    bool keep;
    ~RemoveDir() {
      std::error_code ec;
      if (!keep)
        fs::remove_all(d, ec);
    }
  } removeTmp{tmpDir.str().str(), opts.keepTemps};
  if (opts.keepTemps)
    llvm::errs() << "qlc: keeping build files in " << tmpDir << "\n";
  const std::string so = (fs::path(tmpDir.str().str()) / "code.so").string();
  if (llvm::Error e = buildCode(*cgOr, target, tmpDir.str().str(), opts, so))
    return e;
  clock.stage(target.kind() == "cuda" ? "nvcc" : "host compile");

  int64_t maxSeq = opts.maxSeqLen ? opts.maxSeqLen : std::min<int64_t>(cfg.maxPositionEmbeddings, 4096);
  json manifest = makeManifest(cfg, opts, target, *cgOr, maxSeq);
  if (const auto &cq = cfg.checkpointQuant)
    manifest["quant"]["checkpoint"] = {{"quant_method", cq->method},
                                       {"bits", cq->bits},
                                       {"group_size", cq->groupSize},
                                       {"desc_act", cq->descAct},
                                       {"format", cq->format}};
  std::vector<PackedWeight> packed = cgOr->weights;
  if (!tokenizer.json.empty()) {
    // The tokenizer travels in the weights section, memory-mapped like the weights.
    const std::string name = "qlc.tokenizer.json";
    store->replaceOwned(name, DType::U8, {static_cast<int64_t>(tokenizer.json.size())},
                        std::vector<uint8_t>(tokenizer.json.begin(), tokenizer.json.end()));
    packed.push_back({name, "u8", {static_cast<int64_t>(tokenizer.json.size())}});
    manifest["tokenizer"] = {{"weight", name},
                             {"chat_template", tokenizer.chatTemplate},
                             {"bos_token", tokenizer.bosToken},
                             {"eos_token", tokenizer.eosToken}};
  }
  const bool tty = isatty(2);
  int lastPct = -1;
  auto progress = [&](double f) {
    int pct = static_cast<int>(f * 100);
    if (tty && pct != lastPct) {
      llvm::errs() << "\rqlc: packing weights " << pct << "%";
      lastPct = pct;
    }
  };
  if (llvm::Error e = writeArtifact(opts.output, so, packed, *store, manifest, progress))
    return internal(llvm::toString(std::move(e)));
  if (tty && lastPct >= 0)
    llvm::errs() << "\n";
  clock.stage("write artifact");
  return llvm::Error::success();
}

std::string defaultTuningCache() {
  if (auto xdg = llvm::sys::Process::GetEnv("XDG_CACHE_HOME"); xdg && !xdg->empty())
    return (fs::path(*xdg) / "qlc" / "tuning.json").string();
  if (auto home = llvm::sys::Process::GetEnv("HOME"); home && !home->empty())
    return (fs::path(*home) / ".cache" / "qlc" / "tuning.json").string();
  return ".qlc-tuning.json";
}

llvm::Error importAndPrint(const std::string &source, bool configOnly, const std::string &quant,
                           bool fuse, const std::string &target, const std::string &tuningCache) {
  ModelConfig cfg;
  std::unique_ptr<WeightStore> store;
  if (llvm::Error e = loadSource(source, configOnly, cfg, store))
    return e;
  mlir::MLIRContext ctx;
  auto moduleOr = importModel(ctx, cfg, store.get());
  if (!moduleOr)
    return badInput(source + ": " + llvm::toString(moduleOr.takeError()));
  PipelineRequest req;
  req.po.quant = quant;
  req.po.fuse = fuse;
  if (!target.empty()) {
    auto t = lookupTarget(target);
    if (!t)
      return asBadInput(t.takeError());
    req.po.target = (*t)->name();
    req.po.tuningCache = tuningCache;
  }
  req.po.planBuffers = false; // the graph, not codegen's arena
  if (llvm::Error e = runPipeline(**moduleOr, req))
    return e;
  (*moduleOr)->print(llvm::outs());
  llvm::outs() << "\n";
  return llvm::Error::success();
}

} // namespace qlc
