//===- Compile.cpp - the qlc compile driver --------------------------------===//
#include "compiler/Compile.h"

#include "codegen/Codegen.h"
#include "compiler/Artifact.h"
#include "compiler/Calibration.h"
#include "compiler/GgufImport.h"
#include "compiler/Importer.h"
#include "compiler/StoreProvider.h"
#include "compiler/TokenizerAsset.h"
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
  if (mlir::failed(pm.run(module)))
    return internal("the compile pipeline failed");
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
        {"kv_cache",
         {{"dtype", cg.kvCache.dtype},
          {"scales", cg.kvCache.dtype == "int8" ? "per-token-head-asym" : "none"},
          {"layout", "slot,layer,kv,position,row"},
          {"row_bytes", cg.kvCache.rowBytes},
          {"bytes_per_position", cg.kvCache.positionBytes}}}}},
      {"kernels", kernels},
  };
}

} // namespace

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
  if (!opts.passPipeline.empty() && opts.quant != "none")
    return badInput("--pass-pipeline replaces the passes of --quant " + opts.quant +
                    ": give one or the other");
  auto targetOr = lookupTarget(opts.target);
  if (!targetOr)
    return asBadInput(targetOr.takeError());
  const TargetInfo &target = **targetOr;
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

  // Calibration files are checked before the (possibly long) model load.
  for (const auto &[flag, file] : {std::pair<std::string, std::string>{"--calib", opts.calibFile},
                                   {"--calib-tokens", opts.calibTokens}}) {
    std::error_code ec;
    if (!file.empty() && !fs::is_regular_file(file, ec))
      return badInput(flag + " " + file + ": no such file");
  }

  ModelConfig cfg;
  std::unique_ptr<WeightStore> store;
  TokenizerAsset tokenizer;
  if (llvm::Error e = loadSource(opts.source, false, cfg, store, &tokenizer))
    return e;
  if (llvm::Error e = validateTokenizer(tokenizer, opts.source))
    return asBadInput(std::move(e));
  clock.stage("load");

  mlir::MLIRContext ctx;
  auto moduleOr = importModel(ctx, cfg, store.get());
  if (!moduleOr)
    return badInput(opts.source + ": " + llvm::toString(moduleOr.takeError()));
  clock.stage("import");
  StoreProvider provider(*store);
  setWeightProvider(&ctx, &provider);
  CalibrationData calib;
  if (isCalibratedQuantScheme(opts.quant)) {
    CalibrationOptions copts{opts.calibFile, opts.calibTokens, opts.calibSamples,
                             opts.calibSeqLen};
    auto calibOr = loadCalibration(copts, tokenizer, cfg.maxPositionEmbeddings);
    if (!calibOr)
      return asBadInput(calibOr.takeError());
    calib = std::move(*calibOr);
    for (int32_t id : calib.tokens)
      if (id >= cfg.vocabSize)
        return badInput("--calib-tokens " + calib.source + ": token id " + std::to_string(id) +
                        " is outside the model's vocabulary of " +
                        std::to_string(cfg.vocabSize));
    llvm::errs() << "qlc: calibrating on " << calib.samples << " x " << calib.seqLen
                 << " tokens of " << calib.source << "\n";
    setCalibrationData(&ctx, &calib);
    clock.stage("calibration text");
  } else if (opts.calibFlagsGiven || opts.actOrder) {
    return badInput(std::string(opts.actOrder ? "--act-order" : "--calib") +
                    " applies to the calibrated schemes (gptq-*, awq-*), not --quant " +
                    opts.quant);
  }
  // --verbose shows the passes' remarks (a fusion refused, a weight left unquantized).
  mlir::ScopedDiagnosticHandler remarks(&ctx, [&](mlir::Diagnostic &d) {
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
  req.po.fuse = opts.fuse;
  req.po.actOrder = opts.actOrder;
  req.passPipeline = opts.passPipeline;
  req.printIrAfterAll = opts.printIrAfterAll;
  req.printIrAfter = opts.printIrAfter;
  req.timing = opts.timing;
  if (llvm::Error e = runPipeline(**moduleOr, req))
    return e;
  clock.stage("passes");

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

llvm::Error importAndPrint(const std::string &source, bool configOnly, const std::string &quant,
                           bool fuse) {
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
  if (llvm::Error e = runPipeline(**moduleOr, req))
    return e;
  (*moduleOr)->print(llvm::outs());
  llvm::outs() << "\n";
  return llvm::Error::success();
}

} // namespace qlc
