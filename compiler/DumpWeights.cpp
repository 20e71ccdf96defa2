//===- DumpWeights.cpp - debug dumps of imported weights and tokenizers ----===//
#include "compiler/DumpWeights.h"

#include "compiler/Checkpoint.h"

#include "compiler/Compile.h"
#include "compiler/GgufImport.h"
#include "compiler/Importer.h"
#include "compiler/StoreProvider.h"
#include "ir/QlcOps.h"
#include "passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <filesystem>
#include <fstream>
#include <set>

namespace fs = std::filesystem;

namespace qlc {

namespace {

llvm::Error badInput(const std::string &msg) { return llvm::make_error<CompileError>(msg, true); }

/// Writes `bytes` of elements of NumPy type `descr` ('<f4', '|u1', ...) in `shape` as a
/// .npy file (format 1.0).
bool writeNpy(const std::string &path, const std::vector<int64_t> &shape, const char *descr,
              const void *data, size_t bytes) {
  std::string dims;
  for (int64_t d : shape)
    dims += std::to_string(d) + ", ";
  if (shape.size() > 1)
    dims.resize(dims.size() - 2);
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream o(path, std::ios::binary);
  o.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  o.write(reinterpret_cast<const char *>(&len), 2);
  o << header;
  o.write(static_cast<const char *>(data), static_cast<std::streamsize>(bytes));
  return static_cast<bool>(o);
}

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

/// Each requested tensor as float32, under its name.
llvm::Expected<std::map<std::string, Tensor>> collect(const std::string &source, bool raw,
                                                      const std::set<std::string> &wanted) {
  std::map<std::string, Tensor> out;
  auto want = [&](const std::string &n) { return wanted.empty() || wanted.count(n); };
  const bool gguf = fs::path(source).extension() == ".gguf";
  if (gguf && raw) {
    auto fileOr = GgufFile::open(source);
    if (!fileOr)
      return badInput(llvm::toString(fileOr.takeError()));
    for (const GgufTensorInfo &t : (*fileOr)->tensors()) {
      if (!want(t.name))
        continue;
      Tensor &x = out[t.name];
      x.shape = t.shape();
      x.data.resize(static_cast<size_t>(t.numel()));
      if (!dequantizeGgml(t.type, t.data, x.data.data(), x.data.size()))
        return badInput(source + ": tensor '" + printable(t.name) + "' has type " +
                        ggmlTypeInfo(static_cast<uint32_t>(t.type))->name +
                        ", which qlc cannot dequantize (supported: " + dequantizableTypeList() +
                        ")");
    }
    return std::move(out);
  }
  std::unique_ptr<WeightStore> store;
  if (gguf) {
    auto mOr = importGguf(source);
    if (!mOr)
      return badInput(llvm::toString(mOr.takeError()));
    store = std::move(mOr->store);
  } else {
    auto sOr = WeightStore::loadFolder(source);
    if (!sOr)
      return badInput(llvm::toString(sOr.takeError()));
    store = std::move(*sOr);
  }
  for (const auto &[name, t] : store->tensors()) {
    if (!want(name))
      continue;
    Tensor &x = out[name];
    x.shape = t.shape;
    x.data.resize(static_cast<size_t>(t.numel()));
    if (!convertElements(t.data, t.dtype, x.data.data(), DType::F32, x.data.size()))
      return badInput(source + ": tensor '" + name + "' has dtype " + shortName(t.dtype) +
                      ", not a float type");
  }
  return std::move(out);
}

/// NumPy's name of a stored dtype; bf16, which NumPy lacks, as its uint16 bits.
const char *npyDescr(DType t) {
  switch (t) {
  case DType::F32: return "<f4";
  case DType::F16: return "<f2";
  case DType::BF16: return "<u2";
  case DType::I32: return "<i4";
  case DType::U8: return "|u1";
  case DType::I8: return "|i1";
  }
  return "|u1";
}

/// Runs the compile pipeline of `quant` on `source` with its weights attached, then
/// writes every tensor the resulting IR reads in its stored dtype (the passes' packed
/// tensors included), and the IR as module.mlir.
llvm::Error dumpCompiled(const std::string &source, const std::string &outDir,
                         const std::set<std::string> &wanted, const std::string &quant,
                         int64_t groupSize) {
  ModelConfig cfg;
  std::unique_ptr<WeightStore> store;
  if (fs::path(source).extension() == ".gguf") {
    auto mOr = importGguf(source);
    if (!mOr)
      return badInput(llvm::toString(mOr.takeError()));
    cfg = mOr->config;
    store = std::move(mOr->store);
  } else {
    auto cfgOr = loadModelConfig((fs::path(source) / "config.json").string());
    if (!cfgOr)
      return badInput(llvm::toString(cfgOr.takeError()));
    cfg = *cfgOr;
    auto sOr = WeightStore::loadFolder(source);
    if (!sOr)
      return badInput(llvm::toString(sOr.takeError()));
    store = std::move(*sOr);
    if (llvm::Error e = repackCheckpoint(cfg, *store))
      return badInput(source + ": " + llvm::toString(std::move(e)));
  }
  mlir::MLIRContext ctx;
  auto moduleOr = importModel(ctx, cfg, store.get());
  if (!moduleOr)
    return badInput(source + ": " + llvm::toString(moduleOr.takeError()));
  StoreProvider provider(*store);
  setWeightProvider(&ctx, &provider);
  mlir::PassManager pm(&ctx);
  CompilePipelineOptions po;
  po.quant = quant;
  po.groupSize = groupSize;
  po.fuse = false; // one tensor per source weight, as the tests compare them
  std::string error;
  if (mlir::failed(buildCompilePipeline(pm, po, error)))
    return badInput(error);
  if (mlir::failed(pm.run(**moduleOr)))
    return llvm::make_error<CompileError>("the compile pipeline failed", false);
  std::set<std::string> used;
  (*moduleOr)->walk([&](WeightOp w) {
    if (wanted.empty() || wanted.count(w.getTensorName().str()))
      used.insert(w.getTensorName().str());
  });
  for (const std::string &n : wanted)
    if (!used.count(n))
      return badInput(source + ": no tensor named '" + printable(n) + "' after --quant " + quant);
  std::error_code ec;
  fs::create_directories(outDir, ec);
  if (ec || !fs::is_directory(outDir))
    return badInput(outDir + ": cannot create the output directory");
  for (const std::string &name : used) {
    const TensorRef *t = store->find(name);
    if (t == nullptr)
      return llvm::make_error<CompileError>("the IR reads '" + name + "', which has no data", false);
    if (name.find('/') != std::string::npos || name[0] == '.')
      return badInput(source + ": tensor name '" + printable(name) + "' cannot be used as a file name");
    const std::string path = (fs::path(outDir) / (name + ".npy")).string();
    if (!writeNpy(path, t->shape, npyDescr(t->dtype), t->data, t->bytes))
      return llvm::make_error<CompileError>(path + ": write failed", false);
  }
  std::string ir;
  llvm::raw_string_ostream os(ir);
  (*moduleOr)->print(os);
  std::ofstream o(fs::path(outDir) / "module.mlir", std::ios::binary);
  o << ir;
  if (!o)
    return llvm::make_error<CompileError>(outDir + "/module.mlir: write failed", false);
  return llvm::Error::success();
}

} // namespace

llvm::Error dumpWeights(const std::string &source, const std::string &outDir,
                        const std::vector<std::string> &names, bool raw,
                        const std::string &quant, int64_t groupSize) {
  std::error_code ec;
  if (!fs::exists(source, ec))
    return badInput(source + ": no such file or directory");
  if (raw && fs::path(source).extension() != ".gguf")
    return badInput(source + ": --raw applies to .gguf files only");
  if (raw && quant != "none")
    return badInput("--raw and --quant cannot be combined");
  if (isCalibratedQuantScheme(quant))
    return badInput("--quant " + quant + ": dump-weights does not calibrate (use qlc compile)");
  const std::set<std::string> wanted(names.begin(), names.end());
  if (quant != "none")
    return dumpCompiled(source, outDir, wanted, quant, groupSize);
  auto tensorsOr = collect(source, raw, wanted);
  if (!tensorsOr)
    return tensorsOr.takeError();
  for (const std::string &n : wanted)
    if (!tensorsOr->count(n))
      return badInput(source + ": no tensor named '" + printable(n) + "'");
  fs::create_directories(outDir, ec);
  if (ec || !fs::is_directory(outDir))
    return badInput(outDir + ": cannot create the output directory");
  for (const auto &[name, t] : *tensorsOr) {
    if (name.find('/') != std::string::npos || name.empty() || name[0] == '.')
      return badInput(source + ": tensor name '" + printable(name) +
                      "' cannot be used as a file name");
    const std::string path = (fs::path(outDir) / (name + ".npy")).string();
    if (!writeNpy(path, t.shape, "<f4", t.data.data(), t.data.size() * sizeof(float)))
      return llvm::make_error<CompileError>(path + ": write failed", false);
  }
  return llvm::Error::success();
}

llvm::Expected<std::string> ggufTokenizerJson(const std::string &path) {
  auto mOr = importGguf(path, /*configOnly=*/true);
  if (!mOr)
    return badInput(llvm::toString(mOr.takeError()));
  if (mOr->tokenizerJson.empty())
    return badInput(mOr->tokenizerError);
  return std::move(mOr->tokenizerJson);
}

} // namespace qlc
