#include "tokenizer/Tokenizer.h"

#include "tokenizer/AddedVocab.h"
#include "tokenizer/Bpe.h"
#include "tokenizer/Decoder.h"
#include "tokenizer/Normalizer.h"
#include "tokenizer/PostProcessor.h"
#include "tokenizer/PreTokenizer.h"
#include "tokenizer/Utf8.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace qlc::tok {

struct TokenizerImpl {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> preTokenizer;
  std::unique_ptr<Bpe> model;
  std::unique_ptr<Decoder> decoder;
  PostProcessor post;
  bool hasPost = false;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> addedById;
  std::unordered_map<std::string, int32_t> addedByContent;
  AddedMatcher rawMatcher;        // added tokens with normalized = false, matched in the input
  AddedMatcher normalizedMatcher; // the others, matched in normalized text
  int32_t vocabSize = 0, bos = -1, eos = -1;

  void load(const Json &root);
  void loadAddedTokens(const Json &list);
  const std::string *tokenOf(int32_t id) const;
  std::string decodeRaw(const std::vector<int32_t> &ids, bool skipSpecial, bool raw) const;
};

void TokenizerImpl::load(const Json &root) {
  if (!root.is_object())
    fail("tokenizer.json", "expected a JSON object at the top level");
  const Json &m = need(root, "model", "tokenizer.json");
  if (!m.is_object())
    fail("model", "expected an object");
  std::string type = field(m, "type") ? typeOf(m, "model") : (field(m, "merges") ? "BPE" : "");
  if (type.empty())
    fail("model", "missing field 'type'");
  if (type == "Unigram" || type == "WordPiece" || type == "WordLevel")
    fail("model.type", "unsupported model type '" + type + "' (qlc tokenizes BPE models only)");
  if (type != "BPE")
    fail("model.type", "unknown model type '" + type + "'");
  model = Bpe::fromJson(m, "model");
  if (const Json *n = field(root, "normalizer"))
    normalizer = parseNormalizer(*n, "normalizer");
  if (const Json *p = field(root, "pre_tokenizer"))
    preTokenizer = parsePreTokenizer(*p, "pre_tokenizer");
  if (const Json *d = field(root, "decoder"))
    decoder = parseDecoder(*d, "decoder");
  if (const Json *p = field(root, "post_processor")) {
    post = PostProcessor::fromJson(*p, "post_processor");
    hasPost = true;
  }
  if (const Json *a = field(root, "added_tokens"))
    loadAddedTokens(*a);

  vocabSize = model->maxId() + 1;
  for (const AddedToken &t : added)
    vocabSize = std::max(vocabSize, t.id + 1);
  if (hasPost) {
    bos = post.bos();
    eos = post.eos();
  }
  if (eos < 0)
    if (auto it = addedByContent.find("</s>"); it != addedByContent.end() && added[addedById.at(it->second)].special)
      eos = it->second;
  for (int32_t id : {bos, eos})
    if (id >= vocabSize)
      fail("post_processor", "special token id " + std::to_string(id) + " is outside the vocabulary");
}

void TokenizerImpl::loadAddedTokens(const Json &list) {
  if (!list.is_array())
    fail("added_tokens", "expected an array");
  for (size_t i = 0; i < list.size(); ++i) {
    std::string at = "added_tokens[" + std::to_string(i) + "]";
    const Json &j = list[i];
    AddedToken t;
    t.content = needString(j, "content", at);
    if (!utf8::isValid(t.content))
      fail(at + ".content", "not valid UTF-8");
    if (t.content.empty())
      continue; // tokenizers ignores empty added tokens
    int64_t id = optInt(j, "id", at, -1);
    if (id < 0 || id > INT32_MAX)
      fail(at + ".id", "expected a non-negative id");
    t.special = optBool(j, "special", at, false);
    t.singleWord = optBool(j, "single_word", at, false);
    t.lstrip = optBool(j, "lstrip", at, false);
    t.rstrip = optBool(j, "rstrip", at, false);
    t.normalized = optBool(j, "normalized", at, !t.special);
    // As tokenizers does: a token the model knows keeps the model's id.
    int32_t modelId = model->tokenToId(t.content);
    t.id = modelId >= 0 ? modelId : int32_t(id);
    if (addedByContent.count(t.content))
      continue;
    if (auto it = addedById.find(t.id); it != addedById.end()) {
      // A second token with the same id replaces the first (tokenizers keeps the last).
      AddedToken &old = added[it->second];
      addedByContent.erase(old.content);
      old.content.clear();
    }
    addedById[t.id] = added.size();
    addedByContent[t.content] = t.id;
    added.push_back(t);
  }
  std::vector<AddedToken> raw, norm;
  std::vector<std::string> rawPatterns, normPatterns;
  for (const AddedToken &t : added) {
    if (t.content.empty())
      continue;
    if (!t.normalized) {
      raw.push_back(t);
      rawPatterns.push_back(t.content);
      continue;
    }
    std::string p = t.content;
    if (normalizer)
      normalizer->normalize(p);
    norm.push_back(t);
    normPatterns.push_back(p);
  }
  rawMatcher.build(raw, rawPatterns);
  normalizedMatcher.build(norm, normPatterns);
}

const std::string *TokenizerImpl::tokenOf(int32_t id) const {
  if (auto it = addedById.find(id); it != addedById.end() && !added[it->second].content.empty())
    return &added[it->second].content;
  return model->idToToken(id);
}

std::string TokenizerImpl::decodeRaw(const std::vector<int32_t> &ids, bool skipSpecial, bool raw) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string *t = tokenOf(id);
    if (!t)
      continue;
    if (skipSpecial)
      if (auto it = addedById.find(id); it != addedById.end() && added[it->second].special)
        continue;
    tokens.push_back(*t);
  }
  std::string out;
  if (decoder) {
    decoder->decodeChain(tokens, raw);
    for (const std::string &t : tokens)
      out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i)
      out += (i ? " " : "") + tokens[i];
  }
  return out;
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::fromJson(std::string_view json, std::string *error) {
  auto setError = [&](const std::string &msg) {
    if (error)
      *error = msg;
    return nullptr;
  };
  Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return setError("not valid JSON");
  auto impl = std::make_unique<TokenizerImpl>();
  try {
    impl->load(root);
  } catch (const LoadError &e) {
    return setError(e.what());
  } catch (const std::exception &e) { // a JSON type mismatch the checks above did not foresee
    return setError(std::string("malformed tokenizer.json: ") + e.what());
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::unique_ptr<Tokenizer> Tokenizer::fromFile(const std::string &path, std::string *error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error)
      *error = path + ": cannot open";
    return nullptr;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto tok = fromJson(ss.str(), error);
  if (!tok && error)
    *error = path + ": " + *error;
  return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool addSpecialTokens) const {
  const TokenizerImpl &im = *impl_;
  Pieces pieces;
  if (!text.empty())
    pieces.push_back(Piece{utf8::isValid(text) ? std::string(text) : utf8::sanitize(text), -1, true});
  im.rawMatcher.split(pieces);
  if (im.normalizer) {
    for (Piece &p : pieces)
      if (p.id < 0)
        im.normalizer->normalize(p.text);
    Pieces kept;
    for (Piece &p : pieces)
      if (p.id >= 0 || !p.text.empty())
        kept.push_back(std::move(p));
    pieces = std::move(kept);
  }
  im.normalizedMatcher.split(pieces);
  if (im.preTokenizer)
    im.preTokenizer->apply(pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  // Words repeat: remember each short word's ids for the rest of this call.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
  std::vector<int32_t> cached;
  for (const Piece &p : pieces) {
    if (p.id >= 0) {
      ids.push_back(p.id);
      continue;
    }
    if (pieces.size() < 64 || p.text.size() > 64) {
      im.model->tokenize(p.text, ids);
      continue;
    }
    auto it = cache.find(p.text);
    if (it == cache.end()) {
      size_t start = cached.size();
      im.model->tokenize(p.text, cached);
      it = cache.emplace(p.text, std::make_pair(start, cached.size())).first;
    }
    ids.insert(ids.end(), cached.begin() + long(it->second.first), cached.begin() + long(it->second.second));
  }
  if (addSpecialTokens && im.hasPost)
    ids = im.post.apply(std::move(ids));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t> &ids, bool skipSpecialTokens) const {
  std::string raw = impl_->decodeRaw(ids, skipSpecialTokens, false);
  return utf8::isValid(raw) ? raw : utf8::sanitize(raw);
}

int32_t Tokenizer::tokenToId(std::string_view token) const {
  if (auto it = impl_->addedByContent.find(std::string(token)); it != impl_->addedByContent.end())
    return it->second;
  return impl_->model->tokenToId(token);
}

std::string Tokenizer::idToToken(int32_t id) const {
  const std::string *t = impl_->tokenOf(id);
  return t ? *t : std::string();
}

bool Tokenizer::isSpecial(int32_t id) const {
  auto it = impl_->addedById.find(id);
  return it != impl_->addedById.end() && impl_->added[it->second].special;
}

int32_t Tokenizer::vocabSize() const { return impl_->vocabSize; }
int32_t Tokenizer::bosId() const { return impl_->bos; }
int32_t Tokenizer::eosId() const { return impl_->eos; }

StreamDecoder::StreamDecoder(const Tokenizer &tokenizer, bool skipSpecialTokens)
    : tok_(&tokenizer), skipSpecial_(skipSpecialTokens) {}

std::string StreamDecoder::push(int32_t id) {
  const TokenizerImpl &im = *tok_->impl_;
  // Decode the new id together with the token(s) before it, so that decoders which treat
  // the start of the text specially (Strip, Metaspace) see it in context; the new text is
  // what follows the context's own decoding.
  window_.push_back(id);
  std::string all = im.decodeRaw(window_, skipSpecial_, true);
  std::string fresh;
  if (all.compare(0, windowText_.size(), windowText_) == 0) {
    fresh = all.substr(windowText_.size());
  } else { // cannot happen with tokenizers' decoders; emit what differs
    size_t common = 0;
    while (common < all.size() && common < windowText_.size() && all[common] == windowText_[common])
      ++common;
    fresh = all.substr(common);
  }
  std::string alone = im.decodeRaw({id}, skipSpecial_, true);
  if (!alone.empty() || window_.size() > 64) {
    window_.assign(1, id);
    windowText_ = std::move(alone);
  } else {
    windowText_ = std::move(all);
  }
  // Hand out complete characters only.
  pending_ += fresh;
  std::string out;
  auto *p = reinterpret_cast<const unsigned char *>(pending_.data());
  size_t i = 0;
  while (i < pending_.size()) {
    size_t len;
    utf8::Scan r = utf8::scan(p + i, pending_.size() - i, &len);
    if (r == utf8::Scan::Incomplete)
      break;
    if (r == utf8::Scan::Valid)
      out.append(pending_, i, len);
    else
      out += utf8::kReplacement;
    i += len;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  window_.clear();
  windowText_.clear();
  return out;
}

} // namespace qlc::tok
