// PCRE2 (UTF + UCP) regexes and the Unicode character classes the tokenizer needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qlc::tok {

using Span = std::pair<size_t, size_t>; // [start, end) byte offsets

/// A compiled pattern. Subjects must be valid UTF-8 (the tokenizer sanitizes its input).
class Regex {
public:
  /// Compiles `pattern` (a literal string when `literal`); nullptr and *error on failure.
  static std::unique_ptr<Regex> compile(std::string_view pattern, bool literal, std::string *error);
  ~Regex();
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;

  /// Every non-overlapping match, leftmost first, with the find_iter semantics of the
  /// Oniguruma/Rust regex crates tokenizers uses (an empty match right after the previous
  /// match is skipped).
  std::vector<Span> findAll(std::string_view text) const;

private:
  explicit Regex(void *code) : code_(code) {}
  void *code_; // pcre2_code_8
};

/// Unicode predicates on code points (tables from utf8proc).
namespace uni {
bool isWhitespace(uint32_t cp);  // White_Space (Rust's char::is_whitespace, regex \s)
bool isNumeric(uint32_t cp);     // Nd, Nl, No (Rust's char::is_numeric)
bool isWordChar(uint32_t cp);    // regex \w: letters, marks, Nd, Pc, joiners
bool isPunctuation(uint32_t cp); // ASCII punctuation or a P* category
} // namespace uni

} // namespace qlc::tok
