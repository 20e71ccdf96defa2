//===- GgufImport.cpp - GGUF model -> qlc config and weights ---------------===//
#include "compiler/GgufImport.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// Typed reads of `<arch>.<name>` keys, remembering the first problem.
struct MetaReader {
  const GgufFile &f;
  std::string problem;

  const GgufValue *get(const std::string &key) {
    const GgufValue *v = f.find(key);
    return v;
  }
  void note(const std::string &msg) {
    if (problem.empty())
      problem = f.path() + ": " + msg;
  }
  std::optional<int64_t> optInt(const std::string &key) {
    const GgufValue *v = get(key);
    if (v == nullptr)
      return std::nullopt;
    if (!v->isInteger() || v->type == GgufValueType::Bool) {
      note("metadata key '" + key + "' must be an integer, got " + ggufValueTypeName(v->type));
      return std::nullopt;
    }
    if (v->i <= 0 || v->i > (int64_t{1} << 40)) {
      note("metadata key '" + key + "' must be a positive integer, got " +
           (v->type == GgufValueType::Uint64 ? std::to_string(v->u) : std::to_string(v->i)));
      return std::nullopt;
    }
    return v->i;
  }
  int64_t reqInt(const std::string &key) {
    auto v = optInt(key);
    if (!v && problem.empty())
      note("missing required metadata key '" + key + "'");
    return v.value_or(0);
  }
  std::optional<double> optFloat(const std::string &key) {
    const GgufValue *v = get(key);
    if (v == nullptr)
      return std::nullopt;
    if (!v->isFloat()) {
      note("metadata key '" + key + "' must be a float, got " + ggufValueTypeName(v->type));
      return std::nullopt;
    }
    if (!(v->f > 0) || !std::isfinite(v->f)) {
      note("metadata key '" + key + "' must be positive and finite, got " + std::to_string(v->f));
      return std::nullopt;
    }
    return v->f;
  }
  std::optional<std::string> optString(const std::string &key) {
    const GgufValue *v = get(key);
    if (v == nullptr)
      return std::nullopt;
    if (v->type != GgufValueType::String) {
      note("metadata key '" + key + "' must be a string, got " + ggufValueTypeName(v->type));
      return std::nullopt;
    }
    return v->s;
  }
};

/// Llama 3.1/3.2-style GGUFs carry the llama3 rope scaling as per-frequency divisors in
/// `rope_freqs.weight`; recognise them as HF's llama3 scaling with the published
/// low/high frequency factors.
llvm::Error ropeFromFreqs(const GgufFile &f, const GgufTensorInfo &t, ModelConfig &c,
                          std::optional<int64_t> origCtx) {
  const std::string where = f.path() + ": tensor 'rope_freqs.weight'";
  if (t.type != GgmlType::F32 || t.ne.size() != 1 || t.ne[0] != c.headDim / 2)
    return err(where + " must be F32 with head_dim/2 = " + std::to_string(c.headDim / 2) +
               " elements");
  std::vector<float> div(static_cast<size_t>(t.ne[0]));
  std::memcpy(div.data(), t.data, div.size() * 4);
  float factor = *std::max_element(div.begin(), div.end());
  if (!(factor >= 1.0f) || !std::isfinite(factor))
    return err(where + ": frequency divisors must be finite and at least 1");
  if (factor == 1.0f)
    return llvm::Error::success();
  RopeParams p = c.rope;
  p.headDim = c.headDim;
  p.scaling = "llama3";
  p.factor = factor;
  p.lowFreqFactor = 1.0;
  p.highFreqFactor = 4.0;
  p.originalMaxPosition = origCtx.value_or(8192);
  RopeParams plain = c.rope;
  plain.headDim = c.headDim;
  plain.scaling = "none";
  std::vector<float> scaled = ropeInvFreq(p), base = ropeInvFreq(plain);
  for (size_t i = 0; i < div.size(); ++i) {
    double want = static_cast<double>(base[i]) / div[i];
    if (std::fabs(scaled[i] - want) > 1e-5 * std::fabs(want))
      return err(where + ": frequency divisors do not match llama3 rope scaling (factor " +
                 std::to_string(factor) + ", low 1, high 4, original context " +
                 std::to_string(p.originalMaxPosition) + "); this rope scaling is not supported");
  }
  c.rope = p;
  return llvm::Error::success();
}

/// Splits "blk.<N>.<rest>" into N and rest; false for other names.
bool splitLayerName(const std::string &g, int64_t &layer, std::string &rest) {
  if (g.compare(0, 4, "blk.") != 0)
    return false;
  size_t i = 4;
  layer = 0;
  while (i < g.size() && i < 14 && g[i] >= '0' && g[i] <= '9')
    layer = layer * 10 + (g[i++] - '0');
  if (i == 4 || i >= g.size() || g[i] != '.')
    return false;
  rest = g.substr(i + 1);
  return true;
}

/// GGUF tensor name -> Hugging Face name, for the tensors qlc's llama/qwen2 graph uses.
std::optional<std::string> hfName(const std::string &g) {
  static const std::pair<const char *, const char *> top[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  for (const auto &[from, to] : top)
    if (g == from)
      return std::string(to);
  static const std::pair<const char *, const char *> perLayer[] = {
      {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  int64_t layer = 0;
  std::string rest;
  if (!splitLayerName(g, layer, rest))
    return std::nullopt;
  size_t dot = rest.rfind('.');
  if (dot == std::string::npos)
    return std::nullopt;
  const std::string module = rest.substr(0, dot), suffix = rest.substr(dot + 1);
  if (suffix != "weight" && suffix != "bias")
    return std::nullopt;
  for (const auto &[from, to] : perLayer)
    if (module == from) {
      if ((module == "attn_norm" || module == "ffn_norm") && suffix == "bias")
        return std::nullopt;
      return "model.layers." + std::to_string(layer) + "." + to + "." + suffix;
    }
  return std::nullopt;
}

/// Row r of a llama.cpp-permuted q/k matrix holds Hugging Face row perm(r): within each
/// head of 2*half rows, llama.cpp interleaves the two rotary halves (gguf row 2d+t is HF
/// row t*half+d). This is transformers' `_reverse_permute_weights`.
std::vector<int64_t> unpermuteRows(int64_t rows, int64_t heads) {
  std::vector<int64_t> dst(static_cast<size_t>(rows));
  const int64_t half = rows / heads / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t d = 0; d < half; ++d)
      for (int64_t t = 0; t < 2; ++t)
        dst[h * 2 * half + d * 2 + t] = h * 2 * half + t * half + d;
  return dst;
}

/// Moves `units` equal chunks of `unitBytes` from `src` to their unpermuted places in `dst`.
void scatter(const uint8_t *src, uint8_t *dst, const std::vector<int64_t> &perm, size_t unitBytes) {
  for (size_t r = 0; r < perm.size(); ++r)
    std::memcpy(dst + perm[r] * unitBytes, src + r * unitBytes, unitBytes);
}

/// Dequantizes a whole tensor to float32, rows spread over threads.
void dequantizeTensor(const GgufTensorInfo &t, const GgmlTypeInfo &info, float *dst) {
  const int64_t rowLen = t.ne[0], rows = t.numel() / std::max<int64_t>(rowLen, 1);
  const size_t rowBytes = static_cast<size_t>(rowLen / info.blockSize * info.typeSize);
  auto work = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      dequantizeGgml(t.type, t.data + r * rowBytes, dst + r * rowLen, static_cast<size_t>(rowLen));
  };
  const int64_t nThreads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()),
                                             std::max<int64_t>(1, t.numel() >> 20));
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < nThreads; ++i) {
    const int64_t begin = rows * i / nThreads, end = rows * (i + 1) / nThreads;
    try {
      pool.emplace_back(work, begin, end);
    } catch (const std::system_error &) {
      work(begin, end); // no thread to be had: do it here
    }
  }
  work(0, rows / nThreads);
  for (std::thread &th : pool)
    th.join();
}

/// Converts one GGUF tensor into the store under `name`, undoing llama.cpp's q/k row
/// permutation when `heads` > 0 (rows of a matrix, elements of a bias).
llvm::Error convertTensor(const GgufFile &f, const GgufTensorInfo &t, const std::string &name,
                          int64_t heads, WeightStore &store, const std::string &where) {
  const bool vector = t.ne.size() == 1;
  const int64_t units = vector ? t.ne[0] : t.numel() / std::max<int64_t>(t.ne[0], 1);
  std::vector<int64_t> perm;
  if (heads > 0) {
    if (units % (2 * heads) != 0)
      return err(where + ": " + std::to_string(units) + " rows cannot be split into " +
                 std::to_string(heads) + " heads of rotary pairs");
    perm = unpermuteRows(units, heads);
  }
  std::optional<DType> keep;
  if (t.type == GgmlType::F32)
    keep = DType::F32;
  if (t.type == GgmlType::F16)
    keep = DType::F16;
  if (t.type == GgmlType::BF16)
    keep = DType::BF16;
  if (keep && perm.empty()) {
    TensorRef ref;
    ref.name = name;
    ref.file = f.path();
    ref.dtype = *keep;
    ref.shape = t.shape();
    ref.data = t.data;
    ref.bytes = t.bytes;
    return store.addRef(std::move(ref));
  }
  if (keep) {
    std::vector<uint8_t> out(t.bytes);
    if (units > 0)
      scatter(t.data, out.data(), perm, t.bytes / static_cast<size_t>(units));
    return store.addOwned(name, *keep, t.shape(), std::move(out), f.path());
  }
  auto info = ggmlTypeInfo(static_cast<uint32_t>(t.type));
  if (!info->dequantizable)
    return err(where + " has type " + info->name +
               ", which qlc cannot dequantize (supported: " + dequantizableTypeList() + ")");
  std::vector<uint8_t> out(static_cast<size_t>(t.numel()) * 4);
  dequantizeTensor(t, *info, reinterpret_cast<float *>(out.data()));
  if (!perm.empty() && units > 0) {
    std::vector<uint8_t> natural = std::move(out);
    out.assign(natural.size(), 0);
    scatter(natural.data(), out.data(), perm, natural.size() / static_cast<size_t>(units));
  }
  return store.addOwned(name, DType::F32, t.shape(), std::move(out), f.path());
}

llvm::Error addTensor(const GgufFile &f, const GgufTensorInfo &t, const std::string &name,
                      int64_t heads, WeightStore &store) {
  const std::string where = f.path() + ": tensor '" + printable(t.name) + "'";
  try {
    return convertTensor(f, t, name, heads, store, where);
  } catch (const std::bad_alloc &) {
    return err(where + ": out of memory converting it to float32 (" +
               std::to_string(t.numel() * 4) + " bytes)");
  }
}

} // namespace

llvm::Expected<ModelConfig> ggufModelConfig(const GgufFile &f) {
  MetaReader r{f, ""};
  auto arch = r.optString("general.architecture");
  if (!r.problem.empty())
    return err(r.problem);
  if (!arch)
    return err(f.path() + ": missing required metadata key 'general.architecture'");
  ModelConfig c;
  if (*arch == "llama")
    c.architecture = "LlamaForCausalLM";
  else if (*arch == "qwen2")
    c.architecture = "Qwen2ForCausalLM";
  else
    return err(f.path() + ": unsupported GGUF architecture '" + printable(*arch) +
               "' (supported: llama, qwen2)");
  const std::string a = *arch + ".";
  c.hiddenSize = r.reqInt(a + "embedding_length");
  c.numLayers = r.reqInt(a + "block_count");
  c.intermediateSize = r.reqInt(a + "feed_forward_length");
  c.numHeads = r.reqInt(a + "attention.head_count");
  c.numKvHeads = r.optInt(a + "attention.head_count_kv").value_or(c.numHeads);
  auto eps = r.optFloat(a + "attention.layer_norm_rms_epsilon");
  if (!eps)
    r.note("missing required metadata key '" + a + "attention.layer_norm_rms_epsilon'");
  c.rmsNormEps = eps.value_or(1e-6);
  c.rope.theta = r.optFloat(a + "rope.freq_base").value_or(10000.0);
  c.maxPositionEmbeddings = r.optInt(a + "context_length").value_or(2048);
  auto keyLen = r.optInt(a + "attention.key_length");
  auto ropeDims = r.optInt(a + "rope.dimension_count");
  if (!r.problem.empty())
    return err(r.problem);
  if (c.hiddenSize % c.numHeads != 0 && !keyLen)
    return err(f.path() + ": embedding_length " + std::to_string(c.hiddenSize) +
               " is not divisible by attention.head_count " + std::to_string(c.numHeads));
  c.headDim = keyLen.value_or(c.hiddenSize / c.numHeads);
  if (*arch == "llama" && ropeDims && !keyLen)
    c.headDim = *ropeDims; // transformers reads rope.dimension_count as head_dim for llama
  if (ropeDims && *ropeDims != c.headDim)
    return err(f.path() + ": partial rotary embedding (" + a + "rope.dimension_count " +
               std::to_string(*ropeDims) + " < head_dim " + std::to_string(c.headDim) +
               ") is not supported");
  if (c.numHeads % c.numKvHeads != 0)
    return err(f.path() + ": attention.head_count " + std::to_string(c.numHeads) +
               " is not a multiple of attention.head_count_kv " + std::to_string(c.numKvHeads));
  if (c.headDim <= 0 || c.headDim % 2 != 0)
    return err(f.path() + ": head_dim " + std::to_string(c.headDim) + " must be positive and even");
  if (auto type = r.optString(a + "rope.scaling.type")) {
    if (*type == "linear") {
      c.rope.scaling = "linear";
      c.rope.factor = r.optFloat(a + "rope.scaling.factor").value_or(1.0);
    } else if (*type != "none") {
      return err(f.path() + ": unsupported rope scaling '" + printable(*type) + "' (" + a +
                 "rope.scaling.type; supported: none, linear)");
    }
  }
  auto origCtx = r.optInt(a + "rope.scaling.original_context_length");
  if (!r.problem.empty())
    return err(r.problem);
  c.rope.headDim = c.headDim;
  if (const GgufTensorInfo *t = f.findTensor("rope_freqs.weight"))
    if (llvm::Error e = ropeFromFreqs(f, *t, c, origCtx))
      return std::move(e);

  // Vocabulary: <arch>.vocab_size, else the token list, else the embedding's rows.
  const GgufValue *tokens = f.find("tokenizer.ggml.tokens");
  const GgufTensorInfo *emb = f.findTensor("token_embd.weight");
  if (auto v = r.optInt(a + "vocab_size"))
    c.vocabSize = *v;
  else if (tokens != nullptr && tokens->isArray() && tokens->count > 0)
    c.vocabSize = static_cast<int64_t>(tokens->count);
  else if (emb != nullptr && emb->ne.size() == 2)
    c.vocabSize = emb->ne[1];
  if (!r.problem.empty())
    return err(r.problem);
  if (c.vocabSize <= 0)
    return err(f.path() + ": cannot tell the vocabulary size (no " + a +
               "vocab_size, tokenizer.ggml.tokens or token_embd.weight)");

  c.tieWordEmbeddings = f.findTensor("output.weight") == nullptr;
  auto has = [&](const char *suffix) {
    return f.findTensor(std::string("blk.0.") + suffix) != nullptr;
  };
  c.qkvBias = *arch == "qwen2" || has("attn_q.bias");
  c.oBias = has("attn_output.bias");
  c.mlpBias = has("ffn_up.bias");
  c.dtype = "float32";
  for (const char *k : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    const GgufValue *v = f.find(k);
    if (v != nullptr && v->isInteger() && v->i >= 0 && v->i < c.vocabSize) {
      if (std::strstr(k, "bos"))
        c.bosTokenId = v->i;
      else
        c.eosTokenIds.push_back(v->i);
    }
  }
  return c;
}

llvm::Expected<GgufModel> importGguf(const std::string &path, bool configOnly) {
  auto fileOr = GgufFile::open(path);
  if (!fileOr)
    return fileOr.takeError();
  GgufFile &f = **fileOr;
  GgufModel m;
  auto cfgOr = ggufModelConfig(f);
  if (!cfgOr)
    return cfgOr.takeError();
  m.config = *cfgOr;
  const GgufValue *arch = f.find("general.architecture");
  if (auto tokOr = readGgufTokenizer(f)) {
    m.chatTemplate = tokOr->chatTemplate;
    auto tokenText = [&](int64_t id) {
      return id >= 0 && id < static_cast<int64_t>(tokOr->tokens.size()) ? tokOr->tokens[id]
                                                                       : std::string();
    };
    m.bosToken = tokenText(tokOr->bosId);
    m.eosToken = tokenText(tokOr->eosId);
    auto jsonOr = buildTokenizerJson(*tokOr, arch->s, f.path());
    if (jsonOr)
      m.tokenizerJson = std::move(*jsonOr);
    else
      m.tokenizerError = llvm::toString(jsonOr.takeError());
  } else {
    m.tokenizerError = llvm::toString(tokOr.takeError());
  }
  if (configOnly)
    return std::move(m);

  const ModelConfig &c = m.config;
  auto store = std::make_unique<WeightStore>();
  bool allF16 = true, allBF16 = true;
  for (const GgufTensorInfo &t : f.tensors()) {
    std::optional<std::string> name = hfName(t.name);
    int64_t layer = 0;
    std::string rest;
    const bool inLayer = splitLayerName(t.name, layer, rest);
    if (!name) {
      if (inLayer)
        return err(f.path() + ": tensor '" + printable(t.name) + "' is not part of the " + arch->s +
                   " architecture qlc supports (dense attention + SwiGLU MLP)");
      continue; // e.g. rope_freqs.weight, folded into the config
    }
    if (inLayer && layer >= c.numLayers)
      return err(f.path() + ": tensor '" + printable(t.name) +
                 "' belongs to a layer beyond block_count " + std::to_string(c.numLayers));
    int64_t heads = 0;
    if (arch->s == "llama" && t.name.find(".attn_q.") != std::string::npos)
      heads = c.numHeads;
    if (arch->s == "llama" && t.name.find(".attn_k.") != std::string::npos)
      heads = c.numKvHeads;
    if (llvm::Error e = addTensor(f, t, *name, heads, *store))
      return std::move(e);
    if (t.ne.size() == 2) {
      allF16 = allF16 && t.type == GgmlType::F16;
      allBF16 = allBF16 && t.type == GgmlType::BF16;
    }
  }
  if (allF16 != allBF16)
    m.config.dtype = allF16 ? "float16" : "bfloat16";
  store->adoptMapping(f.releaseMapping());
  m.store = std::move(store);
  return std::move(m);
}

} // namespace qlc
