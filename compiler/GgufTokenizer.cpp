//===- GgufTokenizer.cpp - tokenizer.ggml.* -> Hugging Face tokenizer.json -===//
//
// Mirrors transformers' GGUF tokenizer conversion (integrations/ggml.py:
// GGUFTokenizerSkeleton, GGUFLlamaConverter, GGUFQwen2Converter, plus the post processor
// TokenizersBackend installs), so `tokenizers.Tokenizer.from_str` of the text encodes as
// the tokenizer transformers builds from the same file. One deliberate difference: the
// post processor honours tokenizer.ggml.add_bos_token / add_eos_token (llama.cpp's
// behaviour), where transformers never adds them for a GGUF tokenizer.
//
//===----------------------------------------------------------------------===//
#include "compiler/GgufImport.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

using ojson = nlohmann::ordered_json;

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// Byte offsets of the code point boundaries of valid UTF-8 `s` (0 and s.size()
/// included), or nullopt when `s` is not valid UTF-8.
std::optional<std::vector<size_t>> codePointBounds(const std::string &s) {
  std::vector<size_t> b;
  size_t i = 0;
  while (i < s.size()) {
    b.push_back(i);
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size())
      return std::nullopt;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80)
        return std::nullopt;
      cp = cp << 6 | (cc & 0x3F);
    }
    static const uint32_t minCp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minCp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return std::nullopt;
    i += n;
  }
  b.push_back(s.size());
  return b;
}

/// Integer metadata `key` as an id into a vocabulary of `n`, or -1 when absent.
llvm::Error readId(const GgufFile &f, const char *key, size_t n, int64_t &out) {
  const GgufValue *v = f.find(key);
  if (v == nullptr)
    return llvm::Error::success();
  if (!v->isInteger() || v->type == GgufValueType::Bool)
    return err(f.path() + ": metadata key '" + key + "' must be an integer token id");
  if (v->i < 0 || static_cast<uint64_t>(v->i) >= n)
    return err(f.path() + ": metadata key '" + key + "' = " + std::to_string(v->i) +
               " is outside the vocabulary of " + std::to_string(n) + " tokens");
  out = v->i;
  return llvm::Error::success();
}

/// transformers' merges for a vocabulary without any (GGUFTokenizerSkeleton): every
/// split of a token into two tokens, ordered by the token's score, then by the scores
/// of the two halves, all descending and stable.
std::vector<std::pair<std::string, std::string>> mergesFromScores(const GgufTokenizer &t) {
  std::unordered_map<std::string, float> score; // last occurrence wins, as in a dict
  std::vector<const std::string *> order;       // first occurrence order
  for (size_t i = 0; i < t.tokens.size(); ++i) {
    auto [it, fresh] = score.insert_or_assign(t.tokens[i], t.scores[i]);
    if (fresh)
      order.push_back(&it->first);
  }
  struct Merge {
    std::string l, r;
    float s;
  };
  std::vector<Merge> all;
  for (const std::string *tok : order) {
    std::vector<Merge> local;
    auto bounds = codePointBounds(*tok); // validated by readGgufTokenizer
    for (size_t k = 1; bounds && k + 1 < bounds->size(); ++k) {
      std::string l = tok->substr(0, (*bounds)[k]), r = tok->substr((*bounds)[k]);
      if (score.count(l) && score.count(r))
        local.push_back({std::move(l), std::move(r), score[*tok]});
    }
    std::stable_sort(local.begin(), local.end(), [&](const Merge &a, const Merge &b) {
      float al = score[a.l], bl = score[b.l];
      return al != bl ? al > bl : score[a.r] > score[b.r];
    });
    for (Merge &m : local)
      all.push_back(std::move(m));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Merge &a, const Merge &b) { return a.s > b.s; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(all.size());
  for (Merge &m : all)
    out.emplace_back(std::move(m.l), std::move(m.r));
  return out;
}

ojson addedToken(int64_t id, const std::string &content) {
  return ojson{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
               {"rstrip", false}, {"normalized", false}, {"special", true}};
}

/// TemplateProcessing as TokenizersBackend.update_post_processor builds it, adding the
/// BOS/EOS tokens the file asks for; Qwen2Converter's ByteLevel one when it asks for none.
ojson postProcessor(const GgufTokenizer &t, bool qwen) {
  const bool bos = t.addBos.value_or(false) && t.bosId >= 0;
  const bool eos = t.addEos.value_or(false) && t.eosId >= 0;
  if (qwen && !bos && !eos)
    return {{"type", "ByteLevel"},
            {"add_prefix_space", true},
            {"trim_offsets", false},
            {"use_regex", true}};
  auto special = [&](int64_t id, int typeId) {
    return ojson{{"SpecialToken", {{"id", t.tokens[id]}, {"type_id", typeId}}}};
  };
  auto seq = [](const char *id, int typeId) {
    return ojson{{"Sequence", {{"id", id}, {"type_id", typeId}}}};
  };
  ojson single = ojson::array(), pair = ojson::array(), specials = ojson::object();
  if (bos)
    single.push_back(special(t.bosId, 0));
  single.push_back(seq("A", 0));
  if (eos)
    single.push_back(special(t.eosId, 0));
  pair = single;
  if (bos)
    pair.push_back(special(t.bosId, 1));
  pair.push_back(seq("B", 1));
  if (eos)
    pair.push_back(special(t.eosId, 1));
  for (int64_t id : {bos ? t.bosId : -1, eos ? t.eosId : -1})
    if (id >= 0)
      specials[t.tokens[id]] = {{"id", t.tokens[id]}, {"ids", {id}}, {"tokens", {t.tokens[id]}}};
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", specials}};
}

ojson replace(const std::string &from, const std::string &to) {
  return {{"type", "Replace"}, {"pattern", {{"String", from}}}, {"content", to}};
}

const char *kSpace = "\xe2\x96\x81"; // U+2581, SentencePiece's word boundary

} // namespace

llvm::Expected<GgufTokenizer> readGgufTokenizer(const GgufFile &f) {
  GgufTokenizer t;
  const std::string &src = f.path();
  auto strArray = [&](const char *key, std::vector<std::string> &out,
                      bool &present) -> llvm::Error {
    const GgufValue *v = f.find(key);
    present = v != nullptr;
    if (v == nullptr)
      return llvm::Error::success();
    if (!v->isArray() || v->elemType != GgufValueType::String)
      return err(src + ": metadata key '" + key + "' must be an array of strings");
    for (size_t i = 0; i < v->strings.size(); ++i)
      if (!codePointBounds(v->strings[i]))
        return err(src + ": metadata key '" + key + "': entry " + std::to_string(i) +
                   " is not valid UTF-8");
    out = v->strings;
    return llvm::Error::success();
  };
  bool hasTokens = false;
  if (llvm::Error e = strArray("tokenizer.ggml.tokens", t.tokens, hasTokens))
    return std::move(e);
  if (!hasTokens || t.tokens.empty())
    return err(src + ": has no tokenizer (metadata key 'tokenizer.ggml.tokens' is missing)");
  if (llvm::Error e = strArray("tokenizer.ggml.merges", t.merges, t.hasMerges))
    return std::move(e);
  const size_t n = t.tokens.size();
  if (const GgufValue *v = f.find("tokenizer.ggml.scores")) {
    if (!v->isArray() ||
        !(v->elemType == GgufValueType::Float32 || v->elemType == GgufValueType::Float64) ||
        v->floats.size() != n)
      return err(src + ": metadata key 'tokenizer.ggml.scores' must be " + std::to_string(n) +
                 " floats, one per token");
    t.scores.assign(v->floats.begin(), v->floats.end());
  }
  if (const GgufValue *v = f.find("tokenizer.ggml.token_type")) {
    if (!v->isArray() || v->ints.size() != n)
      return err(src + ": metadata key 'tokenizer.ggml.token_type' must be " + std::to_string(n) +
                 " integers, one per token");
    t.tokenTypes.assign(v->ints.begin(), v->ints.end());
  }
  auto str = [&](const char *key, std::string &out) -> llvm::Error {
    const GgufValue *v = f.find(key);
    if (v == nullptr)
      return llvm::Error::success();
    if (v->type != GgufValueType::String)
      return err(src + ": metadata key '" + key + "' must be a string");
    out = v->s;
    return llvm::Error::success();
  };
  auto flag = [&](const char *key, std::optional<bool> &out) -> llvm::Error {
    const GgufValue *v = f.find(key);
    if (v == nullptr)
      return llvm::Error::success();
    if (v->type != GgufValueType::Bool)
      return err(src + ": metadata key '" + key + "' must be a bool");
    out = v->i != 0;
    return llvm::Error::success();
  };
  if (llvm::Error e = str("tokenizer.ggml.model", t.model))
    return std::move(e);
  if (llvm::Error e = str("tokenizer.ggml.pre", t.pre))
    return std::move(e);
  if (llvm::Error e = str("tokenizer.chat_template", t.chatTemplate))
    return std::move(e);
  if (llvm::Error e = readId(f, "tokenizer.ggml.bos_token_id", n, t.bosId))
    return std::move(e);
  if (llvm::Error e = readId(f, "tokenizer.ggml.eos_token_id", n, t.eosId))
    return std::move(e);
  if (llvm::Error e = readId(f, "tokenizer.ggml.unknown_token_id", n, t.unkId))
    return std::move(e);
  if (llvm::Error e = readId(f, "tokenizer.ggml.padding_token_id", n, t.padId))
    return std::move(e);
  if (llvm::Error e = flag("tokenizer.ggml.add_bos_token", t.addBos))
    return std::move(e);
  if (llvm::Error e = flag("tokenizer.ggml.add_eos_token", t.addEos))
    return std::move(e);
  if (llvm::Error e = flag("tokenizer.ggml.add_space_prefix", t.addSpacePrefix))
    return std::move(e);
  if (t.model.empty())
    t.model = "llama";
  return t;
}

llvm::Expected<std::string> buildTokenizerJson(const GgufTokenizer &t,
                                               const std::string &architecture,
                                               const std::string &source) {
  if (architecture != "llama" && architecture != "qwen2")
    return err(source + ": no tokenizer conversion for architecture '" + architecture + "'");
  if (t.model != "llama" && t.model != "gpt2")
    return err(source + ": unsupported tokenizer model '" + printable(t.model) +
               "' (tokenizer.ggml.model; supported: llama, gpt2)");
  const bool qwen = architecture == "qwen2";
  const bool byteLevel = t.model != "llama"; // GGUFLlamaConverter.is_llama_3_tokenizer

  std::vector<std::pair<std::string, std::string>> merges;
  if (t.hasMerges) {
    for (size_t i = 0; i < t.merges.size(); ++i) {
      const std::string &m = t.merges[i];
      size_t sp = m.find(' ');
      if (sp == std::string::npos || m.find(' ', sp + 1) != std::string::npos)
        return err(source + ": tokenizer.ggml.merges entry " + std::to_string(i) + " ('" +
                   printable(m) + "') is not two tokens separated by one space");
      merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
  } else {
    if (t.scores.empty())
      return err(source + ": the tokenizer has neither tokenizer.ggml.merges nor "
                          "tokenizer.ggml.scores to derive them from");
    merges = mergesFromScores(t);
  }
  std::unordered_map<std::string, int64_t> vocab; // {token: id}, last id wins
  for (size_t i = 0; i < t.tokens.size(); ++i)
    vocab[t.tokens[i]] = static_cast<int64_t>(i);
  for (const auto &[l, r] : merges)
    if (!vocab.count(l) || !vocab.count(r) || !vocab.count(l + r))
      return err(source + ": tokenizer merge '" + printable(l + " " + r) +
                 "' names a token not in the vocabulary");

  // Special tokens: the converter's (qwen2: three fixed ones; llama: every control token),
  // plus the unk and bos tokens it hands TokenizersBackend to register. (It hands over
  // the bos token as "eos" too, so an eos token that is no control token stays ordinary
  // text, as in llama.cpp.) Ones the vocabulary lacks get fresh ids after it, as
  // tokenizers' add_special_tokens does; the list is sorted by id, as tokenizers writes it.
  std::vector<std::string> specials;
  if (qwen) {
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  } else {
    for (size_t i = 0; i < t.tokenTypes.size(); ++i)
      if (t.tokenTypes[i] == 3)
        specials.push_back(t.tokens[i]);
    for (int64_t id : {t.unkId, t.bosId})
      if (id >= 0)
        specials.push_back(t.tokens[id]);
  }
  std::vector<std::pair<int64_t, std::string>> addedIds;
  std::unordered_set<std::string> seen;
  int64_t next = static_cast<int64_t>(t.tokens.size());
  for (const std::string &s : specials) {
    if (!seen.insert(s).second)
      continue;
    auto it = vocab.find(s);
    addedIds.emplace_back(it != vocab.end() ? it->second : next++, s);
  }
  std::sort(addedIds.begin(), addedIds.end());
  ojson added = ojson::array();
  for (const auto &[id, s] : addedIds)
    added.push_back(addedToken(id, s));

  ojson normalizer, pre, decoder;
  if (qwen) {
    normalizer = {{"type", "NFC"}};
    pre = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"},
           {"add_prefix_space", t.addSpacePrefix.value_or(false)},
           {"trim_offsets", true},
           {"use_regex", false}}}}};
    decoder = {{"type", "ByteLevel"},
               {"add_prefix_space", true},
               {"trim_offsets", true},
               {"use_regex", true}};
  } else {
    const bool prefix = t.addSpacePrefix.value_or(true);
    ojson decoders =
        ojson::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}, replace(kSpace, " ")});
    if (byteLevel) {
      normalizer = {{"type", "Sequence"}, {"normalizers", ojson::array()}};
      pre = {{"type", "ByteLevel"},
             {"add_prefix_space", false},
             {"trim_offsets", false},
             {"use_regex", true}};
      decoders.push_back({{"type", "ByteLevel"},
                          {"add_prefix_space", true},
                          {"trim_offsets", true},
                          {"use_regex", true}});
    } else {
      ojson seq = ojson::array();
      if (prefix)
        seq.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
      seq.push_back(replace(" ", kSpace));
      normalizer = {{"type", "Sequence"}, {"normalizers", seq}};
    }
    if (prefix)
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    decoder = {{"type", "Sequence"}, {"decoders", decoders}};
  }

  ojson model = {{"type", "BPE"}, {"dropout", nullptr}};
  if (qwen) {
    model.update({{"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false}});
  } else {
    model["unk_token"] = t.unkId >= 0 ? ojson(t.tokens[t.unkId]) : ojson(nullptr);
    model.update({{"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", true}});
  }
  model["ignore_merges"] = false;

  ojson top = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", added},
               {"normalizer", normalizer},
               {"pre_tokenizer", pre},
               {"post_processor", postProcessor(t, qwen)},
               {"decoder", decoder}};
  // The vocabulary and merges are written by hand: an ordered_json object of 100k keys
  // inserts in quadratic time.
  std::string out = top.dump();
  out.pop_back(); // the closing brace
  std::string m = model.dump();
  m.pop_back();
  out += ",\"model\":" + m + ",\"vocab\":{";
  bool first = true;
  for (size_t i = 0; i < t.tokens.size(); ++i) {
    if (vocab[t.tokens[i]] != static_cast<int64_t>(i))
      continue; // a duplicate token: the dict keeps its last id
    out += (first ? "" : ",") + ojson(t.tokens[i]).dump() + ":" + std::to_string(i);
    first = false;
  }
  out += "},\"merges\":[";
  for (size_t i = 0; i < merges.size(); ++i)
    out += (i ? ",[" : "[") + ojson(merges[i].first).dump() + "," + ojson(merges[i].second).dump() +
           "]";
  out += "]}}";
  return out;
}

} // namespace qlc
