// GPT-2's byte-to-character table: every byte gets a printable character so that byte-level
// BPE vocabularies are plain strings (space is 'Ġ', newline 'Ċ').
#pragma once

#include "tokenizer/Utf8.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace qlc::tok::bytelevel {

struct Tables {
  std::array<uint32_t, 256> byteToChar{};
  std::array<std::string, 256> byteToUtf8;
  std::array<int16_t, 512> charToByte{}; // -1 where the code point stands for no byte

  Tables() {
    charToByte.fill(-1);
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      byteToChar[b] = printable ? b : 256 + n++;
      charToByte[byteToChar[b]] = int16_t(b);
      utf8::append(byteToUtf8[b], byteToChar[b]);
    }
  }
};

inline const Tables &tables() {
  static const Tables t;
  return t;
}

/// Maps every byte of s to its character.
inline std::string encode(std::string_view s) {
  const Tables &t = tables();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s)
    out += t.byteToUtf8[b];
  return out;
}

/// Maps the characters of token back to bytes; false if one of them stands for no byte.
inline bool decode(std::string_view token, std::string &out) {
  const Tables &t = tables();
  std::string bytes;
  for (size_t i = 0; i < token.size();) {
    uint32_t cp = utf8::next(token, i);
    if (cp >= t.charToByte.size() || t.charToByte[cp] < 0)
      return false;
    bytes.push_back(char(t.charToByte[cp]));
  }
  out += bytes;
  return true;
}

} // namespace qlc::tok::bytelevel
