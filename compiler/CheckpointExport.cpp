//===- CheckpointExport.cpp - qlc's quantized module -> GPTQ/AWQ checkpoint ----===//
//
// Writes the layouts CheckpointImport.cpp describes (AutoGPTQ's QuantLinear.pack and
// AutoAWQ's WQLinear_GEMM.from_linear, as their sources document them), so that
// transformers (through gptqmodel/optimum or autoawq) and vLLM load the result:
//
//   gptq: qweight I32 [K/(32/bits), N], qzeros I32 [groups, N/(32/bits)] (v1: zero - 1),
//         scales F16 [groups, N], g_idx I32 [K] (the group of each input feature; from the
//         op's input permutation when it has one);
//   awq:  qweight I32 [K, N/8] and qzeros I32 [K/gs, N/8] with AutoAWQ's interleaved
//         nibble order {0, 2, 4, 6, 1, 3, 5, 7}, scales F16 [K/gs, N].
//
// The integers, zero points and scales are qlc's, unchanged; the one exception is
// checkpoint_format gptq (v1), which cannot store a zero point of 0 (it stores zero - 1;
// AutoGPTQ's own pack silently corrupts the word then): such a group is written as the
// same weights with codes maxq - q, zero point maxq and the scale negated.
//
#include "compiler/Checkpoint.h"

#include "compiler/Compile.h"
#include "ir/Float16.h"
#include "ir/QlcOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using nlohmann::json;
namespace fs = std::filesystem;
using namespace mlir;

namespace qlc {

namespace {

llvm::Error badInput(const std::string &msg) {
  return llvm::make_error<CompileError>(msg, true);
}
llvm::Error internal(const std::string &msg) {
  return llvm::make_error<CompileError>(msg, false);
}

/// A tensor to write: safetensors dtype, shape, bytes.
struct OutTensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

template <class T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

llvm::Error writeSafetensors(const std::string &path, const std::map<std::string, OutTensor> &ts) {
  json header = json::object();
  uint64_t off = 0;
  for (const auto &[name, t] : ts) {
    header[name] = {{"dtype", safetensorsName(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {off, off + t.data.size()}}};
    off += t.data.size();
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream o(path, std::ios::binary);
  const uint64_t n = h.size();
  o.write(reinterpret_cast<const char *>(&n), 8);
  o.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto &[name, t] : ts)
    o.write(reinterpret_cast<const char *>(t.data.data()),
            static_cast<std::streamsize>(t.data.size()));
  o.close();
  if (!o)
    return internal(path + ": cannot write");
  return llvm::Error::success();
}

/// The quantized projection's tensors in qlc's layout, read from the store.
struct QlcInt {
  int64_t n, k, bits, gs, groups, rowBytes;
  const uint8_t *qweight;
  const uint16_t *scales;
  const uint8_t *zeros = nullptr;  // null: symmetric
  const int32_t *perm = nullptr;   // null: natural order
  int code(int64_t n_, int64_t j) const {
    const uint8_t *row = qweight + n_ * rowBytes;
    return bits == 8 ? row[j] : (row[j / 2] >> (4 * (j % 2))) & 15;
  }
  int zero(int64_t n_, int64_t g) const {
    return zeros ? zeros[n_ * groups + g] : 1 << (bits - 1);
  }
};

class Exporter {
public:
  Exporter(const ModelConfig &cfg, const WeightStore &store, const ExportOptions &opts)
      : cfg(cfg), store(store), opts(opts) {}
  llvm::Error run(ModuleOp module);

private:
  const TensorRef *find(Value w) {
    auto op = w.getDefiningOp<WeightOp>();
    return op ? store.find(op.getTensorName().str()) : nullptr;
  }
  /// A float tensor as the IR types it (matrices narrowed by qlc-cast-weights), 1-D ones
  /// as stored.
  llvm::Error addFloat(const std::string &name, Value w);
  llvm::Error addQuantized(const std::string &prefix, QuantizedLinearOp op);
  llvm::Error gptq(const std::string &prefix, const QlcInt &q);
  llvm::Error awq(const std::string &prefix, const QlcInt &q);
  llvm::Error writeConfig();
  void copyTokenizer();

  const ModelConfig &cfg;
  const WeightStore &store;
  const ExportOptions &opts;
  std::map<std::string, OutTensor> out;
  std::set<int64_t> bitsSeen, groupSizes;
  bool allSymmetric = true, anyPerm = false;
  std::set<int64_t> perRowKs; // K of the projections quantized with one group per row
};

llvm::Error Exporter::addFloat(const std::string &name, Value w) {
  const TensorRef *t = find(w);
  if (t == nullptr)
    return internal("checkpoint: the data of '" + name + "' is missing");
  auto type = cast<RankedTensorType>(w.getType());
  DType to = t->dtype;
  if (type.getRank() == 2) {
    Type e = type.getElementType();
    to = e.isF16() ? DType::F16 : e.isBF16() ? DType::BF16 : DType::F32;
  }
  OutTensor o{to, t->shape, std::vector<uint8_t>(static_cast<size_t>(t->numel()) * dtypeSize(to))};
  if (!convertElements(t->data, t->dtype, o.data.data(), to, static_cast<size_t>(t->numel())))
    return internal("checkpoint: '" + name + "' is not a float tensor");
  out[name] = std::move(o);
  return llvm::Error::success();
}

llvm::Error Exporter::gptq(const std::string &p, const QlcInt &q) {
  const int64_t per = 32 / q.bits, maxq = (1 << q.bits) - 1;
  if (q.k % per != 0 || q.n % per != 0)
    return badInput(p + ": a " + std::to_string(q.n) + "x" + std::to_string(q.k) +
                    " weight cannot be written as a GPTQ checkpoint: its " +
                    (q.k % per ? "input" : "output") + " features must be a multiple of " +
                    std::to_string(per) + " for " + std::to_string(q.bits) + " bits");
  std::vector<int64_t> where(static_cast<size_t>(q.k)); // stored column of input feature k
  for (int64_t j = 0; j < q.k; ++j)
    where[q.perm ? q.perm[j] : j] = j;
  const bool v1 = opts.gptqFormat == "gptq";
  // Zero points as written, and per (n, group) whether the group is flipped: v1 cannot
  // store a zero point of 0, so (q - 0) * s is written as ((maxq - q) - maxq) * (-s).
  std::vector<int> zeros(static_cast<size_t>(q.n * q.groups));
  std::vector<uint8_t> flip(zeros.size(), 0);
  for (int64_t n = 0; n < q.n; ++n)
    for (int64_t g = 0; g < q.groups; ++g) {
      int z = q.zero(n, g);
      if (v1 && z == 0) {
        flip[n * q.groups + g] = 1;
        z = static_cast<int>(maxq);
      }
      if (z > maxq)
        return badInput(p + ": zero point " + std::to_string(z) + " does not fit " +
                        std::to_string(q.bits) + " bits");
      zeros[n * q.groups + g] = z;
    }
  std::vector<int32_t> qweight(static_cast<size_t>(q.k / per * q.n), 0), gIdx(q.k);
  for (int64_t k = 0; k < q.k; ++k) {
    const int64_t j = where[k], g = j / q.gs;
    gIdx[k] = static_cast<int32_t>(g);
    for (int64_t n = 0; n < q.n; ++n) {
      const int code = q.code(n, j);
      const uint32_t c = static_cast<uint32_t>(flip[n * q.groups + g] ? maxq - code : code);
      uint32_t &w = reinterpret_cast<uint32_t &>(qweight[(k / per) * q.n + n]);
      w |= c << (q.bits * (k % per));
    }
  }
  std::vector<int32_t> qzeros(static_cast<size_t>(q.groups * (q.n / per)), 0);
  std::vector<uint16_t> scales(static_cast<size_t>(q.groups * q.n));
  for (int64_t g = 0; g < q.groups; ++g)
    for (int64_t n = 0; n < q.n; ++n) {
      const uint32_t z = static_cast<uint32_t>(zeros[n * q.groups + g] - (v1 ? 1 : 0));
      uint32_t &w = reinterpret_cast<uint32_t &>(qzeros[g * (q.n / per) + n / per]);
      w |= z << (q.bits * (n % per));
      // Negating an f16 is exact: flip its sign bit.
      scales[g * q.n + n] = q.scales[n * q.groups + g] ^ (flip[n * q.groups + g] ? 0x8000 : 0);
    }
  out[p + ".qweight"] = {DType::I32, {q.k / per, q.n}, bytesOf(qweight)};
  out[p + ".qzeros"] = {DType::I32, {q.groups, q.n / per}, bytesOf(qzeros)};
  out[p + ".scales"] = {DType::F16, {q.groups, q.n}, bytesOf(scales)};
  out[p + ".g_idx"] = {DType::I32, {q.k}, bytesOf(gIdx)};
  return llvm::Error::success();
}

llvm::Error Exporter::awq(const std::string &p, const QlcInt &q) {
  static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  if (q.bits != 4)
    return internal(p + ": AutoAWQ's GEMM layout is 4-bit");
  if (q.perm)
    return badInput(p + ": has an input permutation, which AutoAWQ's layout cannot hold");
  if (q.n % 8 != 0 || q.k % q.gs != 0)
    return badInput(p + ": a " + std::to_string(q.n) + "x" + std::to_string(q.k) +
                    " weight with group size " + std::to_string(q.gs) +
                    " cannot be written in AutoAWQ's GEMM layout (output features a multiple "
                    "of 8, input features a multiple of the group size)");
  const int64_t cols = q.n / 8;
  std::vector<int32_t> qweight(static_cast<size_t>(q.k * cols), 0),
      qzeros(static_cast<size_t>(q.groups * cols), 0);
  std::vector<uint16_t> scales(static_cast<size_t>(q.groups * q.n));
  for (int64_t k = 0; k < q.k; ++k)
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t w = 0;
      for (int i = 0; i < 8; ++i)
        w |= static_cast<uint32_t>(q.code(c * 8 + kOrder[i], k)) << (4 * i);
      qweight[k * cols + c] = static_cast<int32_t>(w);
    }
  for (int64_t g = 0; g < q.groups; ++g) {
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t w = 0;
      for (int i = 0; i < 8; ++i)
        w |= static_cast<uint32_t>(q.zero(c * 8 + kOrder[i], g)) << (4 * i);
      qzeros[g * cols + c] = static_cast<int32_t>(w);
    }
    for (int64_t n = 0; n < q.n; ++n)
      scales[g * q.n + n] = q.scales[n * q.groups + g];
  }
  out[p + ".qweight"] = {DType::I32, {q.k, cols}, bytesOf(qweight)};
  out[p + ".qzeros"] = {DType::I32, {q.groups, cols}, bytesOf(qzeros)};
  out[p + ".scales"] = {DType::F16, {q.groups, q.n}, bytesOf(scales)};
  return llvm::Error::success();
}

llvm::Error Exporter::addQuantized(const std::string &p, QuantizedLinearOp op) {
  if (op.getFormat() != "int")
    return badInput(p + ": format " + op.getFormat().str() +
                    " has no GPTQ/AWQ layout (only integer quantization does)");
  const TensorRef *qw = find(op.getQweight()), *sc = find(op.getScales());
  const TensorRef *zp = op.getZeros() ? find(op.getZeros()) : nullptr;
  const TensorRef *pm = op.getPerm() ? find(op.getPerm()) : nullptr;
  if (!qw || !sc || (op.getZeros() && !zp) || (op.getPerm() && !pm) ||
      sc->dtype != DType::F16 || qw->dtype != DType::U8 || (pm && pm->dtype != DType::I32))
    return internal("checkpoint: the packed tensors of " + p + " are missing or mistyped");
  QlcInt q;
  q.n = op.getOutFeatures();
  q.k = op.getInFeatures();
  q.bits = op.getBits();
  q.gs = op.getGroupSize();
  q.groups = (q.k + q.gs - 1) / q.gs;
  q.rowBytes = (q.k * q.bits + 7) / 8;
  q.qweight = qw->data;
  q.scales = reinterpret_cast<const uint16_t *>(sc->data);
  q.zeros = zp ? zp->data : nullptr;
  q.perm = pm ? reinterpret_cast<const int32_t *>(pm->data) : nullptr;
  bitsSeen.insert(q.bits);
  if (q.gs < q.k)
    groupSizes.insert(q.gs);
  else
    perRowKs.insert(q.k);
  allSymmetric = allSymmetric && !q.zeros;
  anyPerm = anyPerm || q.perm;
  if (llvm::Error e = opts.format == "gptq" ? gptq(p, q) : awq(p, q))
    return e;
  if (op.getBias())
    return addFloat(p + ".bias", op.getBias());
  return llvm::Error::success();
}

llvm::Error Exporter::writeConfig() {
  const fs::path src = fs::path(opts.sourceDir) / "config.json";
  json config;
  try {
    std::ifstream in(src);
    config = json::parse(in);
  } catch (const std::exception &e) {
    return badInput(src.string() + ": not valid JSON: " + e.what());
  }
  if (bitsSeen.size() != 1)
    return internal("checkpoint: the projections are quantized with " +
                    std::to_string(bitsSeen.size()) + " bit widths; one is needed");
  if (groupSizes.size() > 1)
    return internal("checkpoint: the projections use several group sizes");
  // A projection of one group per row (K <= the group size) is one GPTQ group of any
  // larger group size; AutoAWQ needs K a multiple of its group size, so K itself.
  int64_t gs = groupSizes.empty() ? -1 : *groupSizes.begin();
  if (gs > 0 && !perRowKs.empty() && *perRowKs.rbegin() > gs)
    return internal("checkpoint: a projection of one group per row among groups of " +
                    std::to_string(gs));
  if (opts.format == "awq") {
    if (gs < 0 && perRowKs.size() == 1)
      gs = *perRowKs.begin();
    for (int64_t k : perRowKs)
      if (k != gs)
        return badInput("AutoAWQ's GEMM layout needs every projection's input features to be "
                        "a multiple of one group size; a projection of " + std::to_string(k) +
                        " features has one group per row (use a --group-size that divides "
                        "every projection's input features)");
  }
  json q;
  if (opts.format == "gptq") {
    q = {{"quant_method", "gptq"},
         {"bits", *bitsSeen.begin()},
         {"group_size", gs},
         {"desc_act", opts.descAct || anyPerm},
         {"static_groups", opts.descAct && !anyPerm},
         {"sym", allSymmetric},
         {"true_sequential", true},
         {"checkpoint_format", opts.gptqFormat},
         {"pack_dtype", "int32"},
         {"meta", {{"quantizer", {opts.quantizer}}}}};
  } else {
    q = {{"quant_method", "awq"}, {"bits", 4},          {"group_size", gs},
         {"zero_point", true},    {"version", "gemm"},  {"modules_to_not_convert", nullptr}};
  }
  config["quantization_config"] = q;
  // GPTQ and AWQ kernels compute in float16; the float tensors keep their own dtypes.
  bool set = false;
  for (const char *k : {"torch_dtype", "dtype"})
    if (config.contains(k)) {
      config[k] = "float16";
      set = true;
    }
  if (!set)
    config["torch_dtype"] = "float16";
  std::ofstream o(fs::path(opts.outDir) / "config.json");
  o << config.dump(2) << "\n";
  if (!o)
    return internal(opts.outDir + "/config.json: cannot write");
  return llvm::Error::success();
}

void Exporter::copyTokenizer() {
  for (const char *f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                        "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                        "generation_config.json", "chat_template.jinja"}) {
    std::error_code ec;
    const fs::path from = fs::path(opts.sourceDir) / f;
    if (fs::is_regular_file(from, ec))
      fs::copy_file(from, fs::path(opts.outDir) / f, fs::copy_options::overwrite_existing, ec);
  }
}

llvm::Error Exporter::run(ModuleOp module) {
  auto fn = module.lookupSymbol<func::FuncOp>("forward");
  if (!fn)
    return internal("checkpoint: the module has no @forward");
  // The importer's graph, unfused: per layer two norms and seven projections in order.
  SmallVector<RmsNormOp> norms;
  SmallVector<Operation *> projections;
  EmbeddingOp embedding;
  LogitsOp logits;
  fn.walk([&](Operation *op) {
    if (auto n = dyn_cast<RmsNormOp>(op))
      norms.push_back(n);
    else if (isa<LinearOp, QuantizedLinearOp>(op))
      projections.push_back(op);
    else if (auto e = dyn_cast<EmbeddingOp>(op))
      embedding = e;
    else if (auto l = dyn_cast<LogitsOp>(op))
      logits = l;
  });
  const int64_t layers = cfg.numLayers;
  if (!embedding || !logits || static_cast<int64_t>(norms.size()) != 2 * layers + 1 ||
      static_cast<int64_t>(projections.size()) != 7 * layers)
    return internal("checkpoint: the module does not have the imported layer structure "
                    "(2 norms and 7 projections per layer, unfused)");
  static const char *kProj[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                 "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                 "mlp.down_proj"};
  if (llvm::Error e = addFloat("model.embed_tokens.weight", embedding.getTable()))
    return e;
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    if (llvm::Error e = addFloat(l + "input_layernorm.weight", norms[2 * i].getWeight()))
      return e;
    if (llvm::Error e =
            addFloat(l + "post_attention_layernorm.weight", norms[2 * i + 1].getWeight()))
      return e;
    for (int j = 0; j < 7; ++j) {
      const std::string p = l + kProj[j];
      Operation *op = projections[7 * i + j];
      if (auto q = dyn_cast<QuantizedLinearOp>(op)) {
        if (q.getSource() && *q.getSource() != p + ".weight")
          return internal("checkpoint: projection " + std::to_string(7 * i + j) + " is " +
                          q.getSource()->str() + ", expected " + p + ".weight");
        if (llvm::Error e = addQuantized(p, q))
          return e;
        continue;
      }
      auto lin = cast<LinearOp>(op);
      if (llvm::Error e = addFloat(p + ".weight", lin.getWeight()))
        return e;
      if (lin.getBias())
        if (llvm::Error e = addFloat(p + ".bias", lin.getBias()))
          return e;
    }
  }
  if (llvm::Error e = addFloat("model.norm.weight", norms.back().getWeight()))
    return e;
  if (!cfg.tieWordEmbeddings)
    if (llvm::Error e = addFloat("lm_head.weight", logits.getWeight()))
      return e;
  if (bitsSeen.empty())
    return badInput("nothing was quantized: a checkpoint needs quantized projections");
  std::error_code ec;
  fs::create_directories(opts.outDir, ec);
  if (ec)
    return badInput(opts.outDir + ": cannot create: " + ec.message());
  if (llvm::Error e = writeConfig())
    return e;
  copyTokenizer();
  return writeSafetensors((fs::path(opts.outDir) / "model.safetensors").string(), out);
}

} // namespace

llvm::Expected<std::string> exportFormatFor(const std::string &quant) {
  for (const char *q : {"gptq-w4", "gptq-w4-sym", "gptq-w8", "gptq-w8-sym", "rtn-w4",
                        "rtn-w4-sym", "rtn-w8", "rtn-w8-sym"})
    if (quant == q)
      return std::string("gptq");
  if (quant == "awq-w4" || quant == "awq-w4-sym")
    return std::string("awq");
  if (quant == "nf4" || quant == "nf4-dq")
    return badInput("--quant " + quant + ": NF4 is bitsandbytes' format, which qlc does not "
                    "write as a checkpoint (gptq-*, rtn-* and awq-w4 have GPTQ/AWQ layouts)");
  if (quant.rfind("awq-w8", 0) == 0)
    return badInput("--quant " + quant + ": AutoAWQ's GEMM layout is 4-bit only (awq-w4)");
  return badInput("--quant " + quant + ": has no GPTQ/AWQ checkpoint layout (available: "
                  "gptq-w4, gptq-w8, rtn-w4, rtn-w8 (-sym), awq-w4, awq-w4-sym)");
}

llvm::Error writeCheckpoint(ModuleOp module, const ModelConfig &cfg, const WeightStore &store,
                            const ExportOptions &opts) {
  return Exporter(cfg, store, opts).run(module);
}

} // namespace qlc
