#include "tokenizer/AddedVocab.h"

#include "tokenizer/Regex.h"
#include "tokenizer/Utf8.h"

#include <algorithm>

namespace qlc::tok {
namespace {

/// The code point that ends text[0..end).
uint32_t lastChar(std::string_view text, size_t end) {
  size_t i = end;
  while (i > 0 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80)
    --i;
  if (i > 0)
    --i;
  return utf8::next(text, i);
}

} // namespace

void AddedMatcher::build(const std::vector<AddedToken> &tokens, const std::vector<std::string> &patterns) {
  nodes_.assign(1, Node());
  tokens_ = tokens;
  for (size_t t = 0; t < patterns.size(); ++t) {
    const std::string &p = patterns[t];
    if (p.empty())
      continue;
    int32_t n = 0;
    for (unsigned char c : p) {
      int32_t next = -1;
      for (auto &[k, v] : nodes_[size_t(n)].kids)
        if (k == c)
          next = v;
      if (next < 0) {
        next = int32_t(nodes_.size());
        nodes_[size_t(n)].kids.emplace_back(c, next);
        nodes_.emplace_back();
      }
      n = next;
    }
    nodes_[size_t(n)].token = int32_t(t);
    firstByte_[static_cast<unsigned char>(p[0])] = true;
  }
}

int32_t AddedMatcher::longestAt(std::string_view text, size_t pos, size_t *end) const {
  int32_t best = -1, n = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    int32_t next = -1;
    for (auto &[k, v] : nodes_[size_t(n)].kids)
      if (k == static_cast<unsigned char>(text[i])) {
        next = v;
        break;
      }
    if (next < 0)
      break;
    n = next;
    if (nodes_[size_t(n)].token >= 0) {
      best = nodes_[size_t(n)].token;
      *end = i + 1;
    }
  }
  return best;
}

void AddedMatcher::splitOne(Piece &piece, Pieces &out) const {
  const std::string &text = piece.text;
  size_t startOffset = 0, pos = 0;
  auto emitText = [&](size_t a, size_t b) {
    if (b > a)
      out.push_back(Piece{text.substr(a, b - a), -1, piece.atStart && a == 0});
  };
  while (pos < text.size()) {
    if (!firstByte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t stop = 0;
    int32_t t = longestAt(text, pos, &stop);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken &tok = tokens_[size_t(t)];
    size_t start = pos;
    pos = stop; // the search goes on after this match, even if it is discarded
    if (tok.singleWord) {
      bool wordBefore = start > 0 && uni::isWordChar(lastChar(text, start));
      size_t k = stop;
      bool wordAfter = stop < text.size() && uni::isWordChar(utf8::next(text, k));
      if (wordBefore || wordAfter)
        continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t c = s - 1;
        while (c > 0 && (static_cast<unsigned char>(text[c]) & 0xC0) == 0x80)
          --c;
        size_t probe = c;
        if (!uni::isWhitespace(utf8::next(text, probe)))
          break;
        s = c;
      }
      start = std::max(s, startOffset);
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t k = stop;
        if (!uni::isWhitespace(utf8::next(text, k)))
          break;
        stop = k;
      }
      pos = std::max(pos, stop);
    }
    emitText(startOffset, start);
    out.push_back(Piece{text.substr(start, stop - start), tok.id, false});
    startOffset = stop;
  }
  emitText(startOffset, text.size());
}

void AddedMatcher::split(Pieces &pieces) const {
  if (empty())
    return;
  Pieces out;
  out.reserve(pieces.size());
  for (Piece &p : pieces) {
    if (p.id >= 0)
      out.push_back(std::move(p));
    else
      splitOne(p, out);
  }
  pieces = std::move(out);
}

} // namespace qlc::tok
