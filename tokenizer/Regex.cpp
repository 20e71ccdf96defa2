#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/Regex.h"

#include "tokenizer/Utf8.h"

#include <pcre2.h>
#include <utf8proc.h>

namespace qlc::tok {

namespace {

/// Rewrites the classes whose Unicode meaning differs between Oniguruma (what tokenizers
/// runs its regexes with) and PCRE2: PCRE2's \s also holds U+180E MONGOLIAN VOWEL SEPARATOR
/// (in its \h list), Oniguruma's is exactly White_Space; Oniguruma's \w is Letter | Mark |
/// Decimal_Number | Connector_Punctuation where PCRE2 10.42 has letters, numbers and "_".
std::string onigCompatible(std::string_view p) {
  static constexpr const char *kSpace =
      "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
  static constexpr const char *kWord = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
  std::string out;
  bool inClass = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[++i];
      if (n == 's' || n == 'w')
        out += inClass ? std::string(n == 's' ? kSpace : kWord) : "[" + std::string(n == 's' ? kSpace : kWord) + "]";
      else if ((n == 'S' || n == 'W') && !inClass)
        out += "[^" + std::string(n == 'S' ? kSpace : kWord) + "]";
      else
        out += {c, n};
      continue;
    }
    out += c;
    if (c == '[' && !inClass) {
      inClass = true;
      if (i + 1 < p.size() && p[i + 1] == '^')
        out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']')
        out += p[++i]; // a leading ']' is a literal
    } else if (c == ']' && inClass) {
      inClass = false;
    }
  }
  return out;
}

} // namespace

std::unique_ptr<Regex> Regex::compile(std::string_view pattern, bool literal, std::string *error) {
  std::string_view original = pattern;
  std::string rewritten;
  if (!literal) {
    rewritten = onigCompatible(pattern);
    pattern = rewritten;
  }
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 options, &code, &offset, nullptr);
  if (!re) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(code, buf, sizeof(buf));
    if (error)
      *error = "invalid regex /" + std::string(original) + "/ at offset " + std::to_string(offset) +
               ": " + reinterpret_cast<const char *>(buf);
    return nullptr;
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // best effort: the interpreter is the fallback
  return std::unique_ptr<Regex>(new Regex(re));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code *>(code_)); }

std::vector<Span> Regex::findAll(std::string_view text) const {
  std::vector<Span> out;
  auto *re = static_cast<pcre2_code *>(code_);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, nullptr);
  if (!md)
    return out;
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t n = text.size(), pos = 0;
  bool havePrev = false;
  size_t prevEnd = 0;
  uint32_t noJit = 0;
  while (pos <= n) {
    int rc = pcre2_match(re, subject, n, pos, PCRE2_NO_UTF_CHECK | noJit, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !noJit) {
      noJit = PCRE2_NO_JIT; // the interpreter has no JIT stack limit; retry there
      continue;
    }
    if (rc < 0) // no match, or a match/depth limit on a pathological subject: stop here
      break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (s == e && havePrev && prevEnd == e) {
      if (e >= n)
        break;
      pos = e + utf8::charLength(static_cast<unsigned char>(text[e]));
      continue;
    }
    out.emplace_back(s, e);
    havePrev = true;
    prevEnd = e;
    pos = e;
  }
  pcre2_match_data_free(md);
  return out;
}

namespace uni {

bool isWhitespace(uint32_t cp) {
  if (cp <= 0x20)
    return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
  case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
  case 0x3000:
    return true;
  default:
    return cp >= 0x2000 && cp <= 0x200A;
  }
}

static utf8proc_category_t category(uint32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

bool isNumeric(uint32_t cp) {
  if (cp < 0x80)
    return cp >= '0' && cp <= '9';
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool isWordChar(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  if (cp == 0x200C || cp == 0x200D)
    return true;
  switch (category(cp)) {
  case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
    return true;
  default:
    return false;
  }
}

bool isPunctuation(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
           (cp >= 0x7B && cp <= 0x7E);
  switch (category(cp)) {
  case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
  case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
  case UTF8PROC_CATEGORY_PO:
    return true;
  default:
    return false;
  }
}

} // namespace uni
} // namespace qlc::tok
