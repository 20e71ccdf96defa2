// Added tokens (special tokens such as <s> or <|im_start|>, and user-added words): found in
// the text before the model runs and turned into their ids directly.
#pragma once

#include "tokenizer/PreTokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qlc::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, singleWord = false, lstrip = false, rstrip = false, normalized = true;
};

/// Leftmost-longest matching of a set of added tokens, with tokenizers' single_word,
/// lstrip and rstrip rules.
class AddedMatcher {
public:
  /// `patterns[i]` is what token i looks like in the text it is matched against.
  void build(const std::vector<AddedToken> &tokens, const std::vector<std::string> &patterns);
  bool empty() const { return nodes_.size() <= 1; }
  /// Splits every unresolved piece around the added tokens it contains.
  void split(Pieces &pieces) const;

private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> kids;
    int32_t token = -1; // index into tokens_ of the pattern ending here
  };
  /// The longest pattern starting at text[pos]: its token index and end, or -1.
  int32_t longestAt(std::string_view text, size_t pos, size_t *end) const;
  void splitOne(Piece &piece, Pieces &out) const;

  std::vector<Node> nodes_{1};
  std::vector<AddedToken> tokens_;
  bool firstByte_[256] = {};
};

} // namespace qlc::tok
