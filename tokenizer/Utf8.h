// UTF-8 helpers for the tokenizer: validation, replacement of invalid bytes and an
// incremental assembler that only ever hands out complete characters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qlc::tok::utf8 {

/// What the bytes at the front of a buffer hold.
enum class Scan { Valid, Invalid, Incomplete };

/// Classifies the bytes at p[0..n) (n >= 1) by the well-formed sequences of Unicode's
/// Table 3-7. Valid: *len is the sequence length. Invalid: *len is the length of the
/// maximal subpart to replace by one U+FFFD (at least 1). Incomplete: all n bytes are the
/// start of a well-formed sequence that needs more bytes.
Scan scan(const unsigned char *p, size_t n, size_t *len);

bool isValid(std::string_view s);

/// Replaces every maximal invalid subpart by U+FFFD (as Python's
/// bytes.decode("utf-8", errors="replace") and Rust's String::from_utf8_lossy do).
std::string sanitize(std::string_view s);

/// Appends the UTF-8 encoding of cp.
void append(std::string &out, uint32_t cp);

/// Decodes the character at s[i] and advances i; s must be valid UTF-8 at i.
uint32_t next(std::string_view s, size_t &i);

/// Length in bytes of the character whose lead byte is c (1 for stray bytes).
inline size_t charLength(unsigned char c) {
  return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

/// Turns a stream of bytes into a stream of complete UTF-8 text: bytes that end in the
/// middle of a character are held until the rest arrives; invalid bytes become U+FFFD.
class Assembler {
public:
  /// Returns the complete characters now available.
  std::string push(std::string_view bytes);
  /// Returns what is held (an unfinished character becomes U+FFFD) and resets.
  std::string flush();
  bool holding() const { return !pending_.empty(); }

private:
  std::string pending_;
};

} // namespace qlc::tok::utf8
