//===- ModelConfig.cpp - config.json of a Hugging Face model ---------------===//
#include "compiler/ModelConfig.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <climits>
#include <fstream>
#include <sstream>

using nlohmann::json;

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// Reads typed keys of a JSON object, remembering the first problem.
struct Reader {
  const json &j;
  std::string source;
  std::string problem;

  bool has(const char *key) const { return j.contains(key) && !j[key].is_null(); }
  int64_t requiredInt(const char *key) {
    if (!has(key)) {
      note(std::string("missing required key '") + key + "'");
      return 0;
    }
    return intValue(key);
  }
  int64_t optionalInt(const char *key, int64_t dflt) { return has(key) ? intValue(key) : dflt; }
  int64_t intValue(const char *key) {
    if (!j[key].is_number_integer()) {
      note(std::string("key '") + key + "' must be an integer");
      return 0;
    }
    // Sizes stay within int32 (the runtime's and the ABI's type), so products of two
    // of them cannot overflow int64 in the importer.
    if (j[key].is_number_unsigned() && j[key].get<uint64_t>() > INT32_MAX) {
      note(std::string("key '") + key + "' is too large, got " +
           std::to_string(j[key].get<uint64_t>()) + " (at most 2147483647)");
      return 0;
    }
    int64_t v = j[key].get<int64_t>();
    if (v <= 0)
      note(std::string("key '") + key + "' must be positive, got " + std::to_string(v));
    return v;
  }
  double number(const json &obj, const char *key, double dflt) {
    if (!obj.contains(key) || obj[key].is_null())
      return dflt;
    if (!obj[key].is_number()) {
      note(std::string("key '") + key + "' must be a number");
      return dflt;
    }
    return obj[key].get<double>();
  }
  bool boolean(const char *key, bool dflt) {
    if (!has(key))
      return dflt;
    if (!j[key].is_boolean()) {
      note(std::string("key '") + key + "' must be true or false");
      return dflt;
    }
    return j[key].get<bool>();
  }
  void note(const std::string &msg) {
    if (problem.empty())
      problem = source + ": " + msg;
  }
};

void parseRope(Reader &r, ModelConfig &c) {
  const json &j = r.j;
  // Newer transformers: rope_parameters {rope_theta, rope_type, ...}; older: rope_theta
  // at the top level plus an optional rope_scaling {type|rope_type, factor, ...}.
  const json *params = nullptr;
  if (r.has("rope_parameters")) {
    if (!j["rope_parameters"].is_object())
      return r.note("'rope_parameters' must be an object");
    params = &j["rope_parameters"];
    c.rope.theta = r.number(*params, "rope_theta", r.number(j, "rope_theta", 10000.0));
  } else {
    c.rope.theta = r.number(j, "rope_theta", 10000.0);
    if (r.has("rope_scaling")) {
      if (!j["rope_scaling"].is_object())
        return r.note("'rope_scaling' must be an object or null");
      params = &j["rope_scaling"];
    }
  }
  std::string type = "default";
  if (params != nullptr) {
    for (const char *k : {"rope_type", "type"})
      if (params->contains(k) && (*params)[k].is_string()) {
        type = (*params)[k].get<std::string>();
        break;
      }
    c.rope.factor = r.number(*params, "factor", 1.0);
    c.rope.lowFreqFactor = r.number(*params, "low_freq_factor", 1.0);
    c.rope.highFreqFactor = r.number(*params, "high_freq_factor", 4.0);
    c.rope.originalMaxPosition = static_cast<int64_t>(
        r.number(*params, "original_max_position_embeddings", 8192.0));
  }
  if (type == "default")
    c.rope.scaling = "none";
  else if (type == "linear" || type == "llama3")
    c.rope.scaling = type;
  else
    r.note("unsupported rope scaling type '" + type + "' (supported: default, linear, llama3)");
  if (!(c.rope.theta > 0) || !(c.rope.factor > 0))
    r.note("rope theta and factor must be positive");
  if (c.rope.scaling == "llama3" && !(c.rope.highFreqFactor > c.rope.lowFreqFactor))
    r.note("llama3 rope scaling needs high_freq_factor > low_freq_factor");
}

/// quantization_config: AutoGPTQ/GPTQModel (quant_method gptq) or AutoAWQ GEMM (awq), with
/// the keys transformers' GPTQConfig/AwqConfig write (and AutoAWQ's w_bit/q_group_size).
void parseQuantConfig(Reader &r, ModelConfig &c) {
  const json &q = r.j["quantization_config"];
  auto bad = [&](const std::string &key, const std::string &why) {
    r.note("quantization_config." + key + ": " + why);
  };
  if (!q.is_object())
    return r.note("'quantization_config' must be an object");
  if (!q.contains("quant_method") || !q["quant_method"].is_string())
    return bad("quant_method", "missing (expected gptq or awq)");
  CheckpointQuant cq;
  cq.method = q["quant_method"].get<std::string>();
  std::transform(cq.method.begin(), cq.method.end(), cq.method.begin(), ::tolower);
  if (cq.method != "gptq" && cq.method != "awq")
    return bad("quant_method", "'" + cq.method +
                                   "' is not supported (supported: gptq, awq; bitsandbytes, "
                                   "fp8 and others are not)");
  auto intKey = [&](std::initializer_list<const char *> keys, int64_t dflt,
                    std::string &used) -> int64_t {
    for (const char *k : keys)
      if (q.contains(k) && !q[k].is_null()) {
        used = k;
        if (!q[k].is_number_integer()) {
          bad(k, "must be an integer");
          return dflt;
        }
        return q[k].get<int64_t>();
      }
    used = *keys.begin();
    return dflt;
  };
  auto boolKey = [&](const char *k, bool dflt) {
    if (!q.contains(k) || q[k].is_null())
      return dflt;
    if (!q[k].is_boolean()) {
      bad(k, "must be true or false");
      return dflt;
    }
    return q[k].get<bool>();
  };
  auto strKey = [&](std::initializer_list<const char *> keys, const std::string &dflt,
                    std::string &used) {
    for (const char *k : keys)
      if (q.contains(k) && !q[k].is_null()) {
        used = k;
        if (!q[k].is_string()) {
          bad(k, "must be a string");
          return dflt;
        }
        std::string v = q[k].get<std::string>();
        std::transform(v.begin(), v.end(), v.begin(), ::tolower);
        return v;
      }
    used = *keys.begin();
    return dflt;
  };
  std::string bitsKey, groupKey, formatKey;
  cq.bits = intKey({"bits", "w_bit"}, -1, bitsKey);
  cq.groupSize = intKey({"group_size", "q_group_size"}, cq.method == "awq" ? 128 : -1, groupKey);
  if (cq.groupSize == 0 || cq.groupSize < -1)
    bad(groupKey, "must be positive or -1 (one group per row), got " +
                      std::to_string(cq.groupSize));
  if (cq.method == "gptq") {
    if (cq.bits != 4 && cq.bits != 8)
      bad(bitsKey, cq.bits < 0 ? "missing" : std::to_string(cq.bits) +
                                                 " bits are not supported (gptq: 4 or 8)");
    cq.descAct = boolKey("desc_act", false);
    cq.sym = boolKey("sym", true);
    cq.format = strKey({"checkpoint_format", "format"}, "gptq", formatKey);
    if (cq.format != "gptq" && cq.format != "gptq_v2")
      bad(formatKey, "'" + cq.format + "' is not supported (supported: gptq, gptq_v2)");
    if (q.contains("dynamic") && !q["dynamic"].is_null() &&
        !(q["dynamic"].is_object() && q["dynamic"].empty()))
      bad("dynamic", "per-module overrides are not supported");
    std::string packKey;
    std::string pack = strKey({"pack_dtype"}, "int32", packKey);
    if (pack != "int32" && pack != "torch.int32")
      bad(packKey, "'" + pack + "' is not supported (int32 only)");
  } else {
    if (cq.bits != 4)
      bad(bitsKey, cq.bits < 0 ? "missing"
                               : std::to_string(cq.bits) + " bits are not supported (awq: 4)");
    if (!boolKey("zero_point", true))
      bad("zero_point", "false is not supported (AutoAWQ GEMM checkpoints have zero points)");
    cq.format = strKey({"version"}, "gemm", formatKey);
    if (cq.format != "gemm")
      bad(formatKey, "'" + cq.format + "' is not supported (supported: gemm)");
    cq.sym = false;
  }
  c.checkpointQuant = cq;
}

} // namespace

const std::vector<std::string> &supportedArchitectures() {
  static const std::vector<std::string> archs = {"LlamaForCausalLM", "MistralForCausalLM",
                                                 "Qwen2ForCausalLM"};
  return archs;
}

llvm::Expected<ModelConfig> parseModelConfig(const std::string &text, const std::string &source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception &e) {
    return err(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object())
    return err(source + ": not a JSON object");
  ModelConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty() || !j["architectures"][0].is_string())
    return err(source + ": missing required key 'architectures'");
  c.architecture = j["architectures"][0].get<std::string>();
  const auto &archs = supportedArchitectures();
  if (std::find(archs.begin(), archs.end(), c.architecture) == archs.end()) {
    std::string list;
    for (const auto &a : archs)
      list += (list.empty() ? "" : ", ") + a;
    return err(source + ": unknown architecture '" + c.architecture + "' (supported: " + list + ")");
  }
  Reader r{j, source, {}};
  c.hiddenSize = r.requiredInt("hidden_size");
  c.intermediateSize = r.requiredInt("intermediate_size");
  c.numLayers = r.requiredInt("num_hidden_layers");
  if (c.numLayers > 65536)
    r.note("key 'num_hidden_layers' is too large, got " + std::to_string(c.numLayers) +
           " (at most 65536)");
  c.numHeads = r.requiredInt("num_attention_heads");
  c.vocabSize = r.requiredInt("vocab_size");
  c.numKvHeads = r.optionalInt("num_key_value_heads", c.numHeads);
  if (r.has("hidden_act") && j["hidden_act"] != "silu")
    r.note("unsupported hidden_act " +
           (j["hidden_act"].is_string() ? "'" + j["hidden_act"].get<std::string>() + "'"
                                        : j["hidden_act"].dump()) +
           " (only silu)");
  if (!r.has("rms_norm_eps"))
    r.note("missing required key 'rms_norm_eps'");
  c.rmsNormEps = r.number(j, "rms_norm_eps", 1e-6);
  c.maxPositionEmbeddings = r.optionalInt("max_position_embeddings", 4096);
  if (!r.problem.empty())
    return err(r.problem);
  c.headDim = r.optionalInt("head_dim", c.numHeads ? c.hiddenSize / c.numHeads : 0);
  if (!r.has("head_dim") && c.hiddenSize % c.numHeads != 0)
    r.note("hidden_size " + std::to_string(c.hiddenSize) + " is not divisible by " +
           "num_attention_heads " + std::to_string(c.numHeads) + " and head_dim is not given");
  if (c.numHeads % c.numKvHeads != 0)
    r.note("num_attention_heads " + std::to_string(c.numHeads) +
           " is not a multiple of num_key_value_heads " + std::to_string(c.numKvHeads));
  if (c.headDim % 2 != 0)
    r.note("head_dim " + std::to_string(c.headDim) + " must be even for rotary embedding");
  if (c.rmsNormEps <= 0)
    r.note("rms_norm_eps must be positive");
  parseRope(r, c);

  if (c.architecture == "Qwen2ForCausalLM") {
    c.qkvBias = true;
    if (r.boolean("use_sliding_window", false))
      c.slidingWindow = r.optionalInt("sliding_window", 4096);
  } else {
    c.qkvBias = c.oBias = r.boolean("attention_bias", false);
    c.mlpBias = r.boolean("mlp_bias", false);
    if (c.architecture == "MistralForCausalLM" && r.has("sliding_window"))
      c.slidingWindow = r.optionalInt("sliding_window", 4096);
  }
  c.tieWordEmbeddings = r.boolean("tie_word_embeddings", false);
  for (const char *k : {"dtype", "torch_dtype"})
    if (r.has(k) && j[k].is_string()) {
      c.dtype = j[k].get<std::string>();
      break;
    }
  if (r.has("bos_token_id") && j["bos_token_id"].is_number_integer())
    c.bosTokenId = j["bos_token_id"].get<int64_t>();
  if (r.has("eos_token_id")) {
    const json &e = j["eos_token_id"];
    if (e.is_number_integer())
      c.eosTokenIds.push_back(e.get<int64_t>());
    else if (e.is_array())
      for (const json &v : e)
        if (v.is_number_integer())
          c.eosTokenIds.push_back(v.get<int64_t>());
  }
  if (r.has("quantization_config"))
    parseQuantConfig(r, c);
  if (!r.problem.empty())
    return err(r.problem);
  return c;
}

llvm::Expected<ModelConfig> loadModelConfig(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return err(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parseModelConfig(ss.str(), path);
}

} // namespace qlc
