// The BPE model of tokenizer.json: vocabulary, merges by rank, unknown-token handling,
// byte fallback to <0xXX> tokens. Byte-level (GPT-2) and SentencePiece-style vocabularies
// differ only in their pre-tokenizer and normalizer, not here.
#pragma once

#include "tokenizer/JsonUtil.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qlc::tok {

class Bpe {
public:
  /// Builds the model from tokenizer.json's "model" object; throws LoadError.
  static std::unique_ptr<Bpe> fromJson(const Json &j, const std::string &where);

  /// Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t> &out) const;

  int32_t tokenToId(std::string_view token) const;
  /// nullptr for ids the vocabulary does not have.
  const std::string *idToToken(int32_t id) const;
  int32_t maxId() const { return int32_t(idToToken_.size()) - 1; }

private:
  struct Merge {
    uint32_t rank;
    int32_t newId;
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  const Merge *findMerge(int32_t a, int32_t b) const;
  int32_t lookup(std::string_view s) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint32_t, int32_t> charIds_; // one-character tokens by code point
  std::vector<std::string> idToToken_;
  std::vector<bool> hasId_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t unkId_ = -1;
  bool fuseUnk_ = false, byteFallback_ = false, ignoreMerges_ = false;
  std::string prefix_, suffix_; // continuing_subword_prefix, end_of_word_suffix
  int32_t byteIds_[256];
  bool allBytes_ = false;
};

} // namespace qlc::tok
