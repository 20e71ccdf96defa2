#include "tokenizer/Utf8.h"

namespace qlc::tok::utf8 {

Scan scan(const unsigned char *p, size_t n, size_t *len) {
  unsigned char c = p[0];
  if (c < 0x80) {
    *len = 1;
    return Scan::Valid;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    *len = 1;
    return Scan::Invalid;
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= n) {
      *len = k;
      return Scan::Incomplete;
    }
    unsigned char b = p[k];
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *len = k;
      return Scan::Invalid;
    }
  }
  *len = need;
  return Scan::Valid;
}

bool isValid(std::string_view s) {
  auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (scan(p + i, n - i, &len) != Scan::Valid)
      return false;
    i += len;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    size_t len;
    Scan r = scan(p + i, n - i, &len);
    if (r == Scan::Valid)
      out.append(s.data() + i, len);
    else
      out.append(kReplacement);
    i += len;
  }
  return out;
}

void append(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

uint32_t next(std::string_view s, size_t &i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len = charLength(c);
  if (len == 1 || i + len > s.size()) {
    ++i;
    return c;
  }
  uint32_t cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

std::string Assembler::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  auto *p = reinterpret_cast<const unsigned char *>(pending_.data());
  size_t n = pending_.size(), i = 0;
  while (i < n) {
    size_t len;
    Scan r = scan(p + i, n - i, &len);
    if (r == Scan::Incomplete)
      break;
    if (r == Scan::Valid)
      out.append(pending_, i, len);
    else
      out.append(kReplacement);
    i += len;
  }
  pending_.erase(0, i);
  return out;
}

std::string Assembler::flush() {
  std::string out = pending_.empty() ? std::string() : sanitize(pending_);
  pending_.clear();
  return out;
}

} // namespace qlc::tok::utf8
