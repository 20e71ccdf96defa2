//===- JinjaUnicode.cpp - UTF-8 helpers with Python's str semantics -------===//
#include "chat/JinjaUnicode.h"

#include <locale.h>
#include <wctype.h>

namespace qlc::chat::jinja {

namespace {

/// glibc's C.UTF-8 locale carries the Unicode case tables; ASCII rules without it.
locale_t utf8Locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

bool isAsciiOnly(const std::string &s) {
  for (unsigned char c : s)
    if (c >= 0x80)
      return false;
  return true;
}

} // namespace

std::u32string decodeUtf8(const std::string &s) {
  std::u32string out;
  out.reserve(s.size());
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (c >= 0xF5)
      len = 0;
    char32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) ||
               (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
      ok = false;
    if (!ok) {
      out.push_back(0xDC00 + c); // surrogateescape
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void appendUtf8(std::string &out, char32_t c) {
  if (c >= 0xDC80 && c <= 0xDCFF) { // surrogateescape: the original byte
    out.push_back(static_cast<char>(c - 0xDC00));
  } else if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encodeUtf8(const std::u32string &s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s)
    appendUtf8(out, c);
  return out;
}

size_t codepointCount(const std::string &s) {
  if (isAsciiOnly(s))
    return s.size();
  return decodeUtf8(s).size();
}

bool isPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool isLineBreak(char32_t c) {
  return (c >= 0x0A && c <= 0x0D) || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

char32_t toUpperCp(char32_t c) {
  if (c < 0x80)
    return c >= 'a' && c <= 'z' ? c - 32 : c;
  locale_t loc = utf8Locale();
  return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t toLowerCp(char32_t c) {
  if (c < 0x80)
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  locale_t loc = utf8Locale();
  return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

bool isCased(char32_t c) {
  if (c < 0x80)
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t loc = utf8Locale();
  return loc && (iswupper_l(static_cast<wint_t>(c), loc) || iswlower_l(static_cast<wint_t>(c), loc));
}

bool isAlphaCp(char32_t c) {
  if (c < 0x80)
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t loc = utf8Locale();
  return loc && iswalpha_l(static_cast<wint_t>(c), loc);
}

bool isDigitCp(char32_t c) { return c >= '0' && c <= '9'; }

namespace {

/// Python's unconditional multi-character mappings (SpecialCasing.txt) for the
/// characters text commonly holds; `upper`, `title` or nullptr when single.
struct SpecialCase {
  char32_t c;
  const char32_t *upper, *title;
};
const SpecialCase kSpecialCases[] = {
    {0x00DF, U"SS", U"Ss"},       {0x0149, U"\u02BCN", U"\u02BCN"}, {0x01F0, U"J\u030C", U"J\u030C"},
    {0xFB00, U"FF", U"Ff"},       {0xFB01, U"FI", U"Fi"},           {0xFB02, U"FL", U"Fl"},
    {0xFB03, U"FFI", U"Ffi"},     {0xFB04, U"FFL", U"Ffl"},         {0xFB05, U"ST", U"St"},
    {0xFB06, U"ST", U"St"},       {0x0587, U"\u0535\u0552", U"\u0535\u0582"},
};

const SpecialCase *specialCase(char32_t c) {
  for (const SpecialCase &sc : kSpecialCases)
    if (sc.c == c)
      return &sc;
  return nullptr;
}

void appendUpper(std::u32string &out, char32_t c) {
  if (const SpecialCase *sc = specialCase(c))
    out += sc->upper;
  else
    out.push_back(toUpperCp(c));
}

/// Title case differs from upper case for the Latin digraphs and the ligatures.
void appendTitle(std::u32string &out, char32_t c) {
  if (const SpecialCase *sc = specialCase(c)) {
    out += sc->title;
    return;
  }
  switch (c) {
  case 0x01C4: case 0x01C5: case 0x01C6:
    out.push_back(0x01C5);
    return;
  case 0x01C7: case 0x01C8: case 0x01C9:
    out.push_back(0x01C8);
    return;
  case 0x01CA: case 0x01CB: case 0x01CC:
    out.push_back(0x01CB);
    return;
  case 0x01F1: case 0x01F2: case 0x01F3:
    out.push_back(0x01F2);
    return;
  default:
    out.push_back(toUpperCp(c));
  }
}

/// Lower case of u[i], with Python's final sigma and dotted capital I.
void appendLower(std::u32string &out, const std::u32string &u, size_t i) {
  char32_t c = u[i];
  if (c == 0x0130) {
    out += U"i\u0307";
  } else if (c == 0x03A3) {
    bool after = i > 0 && isCased(u[i - 1]);
    bool before = i + 1 < u.size() && isCased(u[i + 1]);
    out.push_back(after && !before ? 0x03C2 : 0x03C3);
  } else {
    out.push_back(toLowerCp(c));
  }
}

} // namespace

std::string pyUpper(const std::string &s) {
  std::u32string u = decodeUtf8(s), out;
  for (char32_t c : u)
    appendUpper(out, c);
  return encodeUtf8(out);
}

std::string pyLower(const std::string &s) {
  std::u32string u = decodeUtf8(s), out;
  for (size_t i = 0; i < u.size(); ++i)
    appendLower(out, u, i);
  return encodeUtf8(out);
}

std::string pyTitle(const std::string &s) {
  std::u32string u = decodeUtf8(s), out;
  bool prevCased = false;
  for (size_t i = 0; i < u.size(); ++i) {
    if (prevCased)
      appendLower(out, u, i);
    else
      appendTitle(out, u[i]);
    prevCased = isCased(u[i]);
  }
  return encodeUtf8(out);
}

std::string pyCapitalize(const std::string &s) {
  std::u32string u = decodeUtf8(s), out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 0)
      appendTitle(out, u[i]);
    else
      appendLower(out, u, i);
  }
  return encodeUtf8(out);
}

std::string pyStrip(const std::string &s, const std::string *chars, bool left, bool right) {
  std::u32string u = decodeUtf8(s), set = chars ? decodeUtf8(*chars) : std::u32string();
  auto strip = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : isPySpace(c);
  };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip(u[b]))
      ++b;
  if (right)
    while (e > b && strip(u[e - 1]))
      --e;
  return encodeUtf8(u.substr(b, e - b));
}

std::vector<std::string> pySplit(const std::string &s, const std::string *sep, long maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
      size_t hit = s.find(*sep, pos);
      if (hit == std::string::npos)
        break;
      out.push_back(s.substr(pos, hit - pos));
      pos = hit + sep->size();
    }
    out.push_back(s.substr(pos));
    return out;
  }
  std::u32string u = decodeUtf8(s);
  size_t i = 0, n = u.size();
  while (true) {
    while (i < n && isPySpace(u[i]))
      ++i;
    if (i >= n)
      break;
    if (maxsplit >= 0 && static_cast<long>(out.size()) >= maxsplit) {
      size_t e = n;
      while (e > i && isPySpace(u[e - 1]))
        --e;
      out.push_back(encodeUtf8(u.substr(i, e - i)));
      break;
    }
    size_t j = i;
    while (j < n && !isPySpace(u[j]))
      ++j;
    out.push_back(encodeUtf8(u.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> pyRSplit(const std::string &s, const std::string *sep, long maxsplit) {
  if (maxsplit < 0)
    return pySplit(s, sep, maxsplit);
  std::vector<std::string> out;
  if (sep) {
    size_t end = s.size();
    while (static_cast<long>(out.size()) < maxsplit) {
      if (end < sep->size())
        break;
      size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string::npos)
        break;
      out.insert(out.begin(), s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    out.insert(out.begin(), s.substr(0, end));
    return out;
  }
  std::u32string u = decodeUtf8(s);
  size_t e = u.size();
  while (true) {
    while (e > 0 && isPySpace(u[e - 1]))
      --e;
    if (e == 0)
      break;
    if (static_cast<long>(out.size()) >= maxsplit) {
      size_t b = 0;
      while (b < e && isPySpace(u[b]))
        ++b;
      out.insert(out.begin(), encodeUtf8(u.substr(b, e - b)));
      break;
    }
    size_t b = e;
    while (b > 0 && !isPySpace(u[b - 1]))
      --b;
    out.insert(out.begin(), encodeUtf8(u.substr(b, e - b)));
    e = b;
  }
  return out;
}

std::vector<std::string> pySplitLines(const std::string &s) {
  std::u32string u = decodeUtf8(s);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < u.size()) {
    if (isLineBreak(u[i])) {
      out.push_back(encodeUtf8(u.substr(start, i - start)));
      if (u[i] == '\r' && i + 1 < u.size() && u[i + 1] == '\n')
        ++i;
      start = ++i;
    } else {
      ++i;
    }
  }
  if (start < u.size())
    out.push_back(encodeUtf8(u.substr(start)));
  return out;
}

std::string pyReplace(const std::string &s, const std::string &from, const std::string &to,
                      long count) {
  std::string out;
  if (from.empty()) { // inserts `to` around every code point
    std::u32string u = decodeUtf8(s);
    long done = 0;
    for (char32_t c : u) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      appendUtf8(out, c);
    }
    if (count < 0 || done < count)
      out += to;
    return out;
  }
  size_t pos = 0;
  long done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos)
      break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

long pyCount(const std::string &s, const std::string &sub) {
  if (sub.empty())
    return static_cast<long>(codepointCount(s)) + 1;
  long n = 0;
  for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size()))
    ++n;
  return n;
}

long pyFind(const std::string &s, const std::string &sub, bool reverse) {
  size_t hit = reverse ? s.rfind(sub) : s.find(sub);
  if (hit == std::string::npos)
    return -1;
  return static_cast<long>(codepointCount(s.substr(0, hit)));
}

} // namespace qlc::chat::jinja
