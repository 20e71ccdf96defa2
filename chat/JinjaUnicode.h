//===- JinjaUnicode.h - UTF-8 helpers with Python's str semantics -*- C++ -*-===//
//
// Python strings are sequences of code points; the interpreter keeps UTF-8 and converts
// where indexing, length, stripping or case mapping need code points. Invalid UTF-8
// bytes decode as single code points U+DC80..U+DCFF (Python's surrogateescape) and
// encode back to the same bytes, so no input is lost or rejected.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_JINJAUNICODE_H
#define QLC_CHAT_JINJAUNICODE_H

#include <string>
#include <vector>

namespace qlc::chat::jinja {

std::u32string decodeUtf8(const std::string &s);
std::string encodeUtf8(const std::u32string &s);
void appendUtf8(std::string &out, char32_t c);
/// Number of code points.
size_t codepointCount(const std::string &s);

/// Python's str.isspace() for one code point.
bool isPySpace(char32_t c);
/// Python's line boundaries (str.splitlines).
bool isLineBreak(char32_t c);

char32_t toUpperCp(char32_t c);
char32_t toLowerCp(char32_t c);
bool isCased(char32_t c);
bool isAlphaCp(char32_t c);
bool isDigitCp(char32_t c);

std::string pyUpper(const std::string &s);
std::string pyLower(const std::string &s);
/// str.title(): upper after an uncased character, lower after a cased one.
std::string pyTitle(const std::string &s);
/// str.capitalize(): first upper, rest lower.
std::string pyCapitalize(const std::string &s);

/// str.strip/lstrip/rstrip; `chars` == nullptr strips whitespace.
std::string pyStrip(const std::string &s, const std::string *chars, bool left, bool right);
/// str.split(sep, maxsplit); `sep` == nullptr splits on runs of whitespace.
std::vector<std::string> pySplit(const std::string &s, const std::string *sep, long maxsplit);
/// str.rsplit(sep, maxsplit).
std::vector<std::string> pyRSplit(const std::string &s, const std::string *sep, long maxsplit);
/// str.splitlines(keepends=False).
std::vector<std::string> pySplitLines(const std::string &s);
/// str.replace(old, new, count); count < 0 replaces all.
std::string pyReplace(const std::string &s, const std::string &from, const std::string &to,
                      long count);
/// Occurrences of `sub` (non-overlapping), as str.count.
long pyCount(const std::string &s, const std::string &sub);
/// str.find in code points, -1 when absent.
long pyFind(const std::string &s, const std::string &sub, bool reverse);

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJAUNICODE_H
