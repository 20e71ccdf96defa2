// Pre-tokenizers split text into the pieces the model tokenizes one by one, with the
// semantics of Hugging Face tokenizers (Split, ByteLevel, Digits, Metaspace, Sequence, ...).
#pragma once

#include "tokenizer/JsonUtil.h"
#include "tokenizer/Regex.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qlc::tok {

/// A piece of text on its way to the model, or an added token already resolved (id >= 0).
struct Piece {
  std::string text;
  int32_t id = -1;
  bool atStart = false; // begins at offset 0 of the original input (Metaspace "first")
};
using Pieces = std::vector<Piece>;

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

/// Finds the spans a pattern matches: a regex, or each character a predicate accepts.
class Matcher {
public:
  static std::unique_ptr<Matcher> regex(std::string_view pattern, bool literal, const std::string &where);
  static std::unique_ptr<Matcher> chars(bool (*pred)(uint32_t));
  virtual ~Matcher() = default;
  virtual std::vector<Span> find(std::string_view text) const = 0;
};

/// The pieces of `text` that NormalizedString::split keeps for these matches.
std::vector<Span> splitSpans(std::string_view text, const std::vector<Span> &matches,
                             SplitBehavior behavior, bool invert = false);

/// Replaces every unresolved piece by the spans `spansOf(text)` returns, dropping empty ones.
template <class F> void splitPieces(Pieces &pieces, F spansOf) {
  Pieces out;
  out.reserve(pieces.size());
  for (Piece &p : pieces) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    bool first = true;
    for (const Span &s : spansOf(p.text)) {
      if (s.second > s.first)
        out.push_back(Piece{p.text.substr(s.first, s.second - s.first), -1, p.atStart && first && s.first == 0});
      first = false;
    }
  }
  pieces = std::move(out);
}

class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  virtual void apply(Pieces &pieces) const = 0;
};

/// Builds the pre-tokenizer a tokenizer.json "pre_tokenizer" object describes; throws LoadError.
std::unique_ptr<PreTokenizer> parsePreTokenizer(const Json &j, const std::string &where);

} // namespace qlc::tok
