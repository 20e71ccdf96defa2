//===- JinjaLexer.cpp - Jinja2 tokenizer ----------------------------------===//
//
// Mirrors jinja2.lexer.Lexer.tokeniter for the default delimiters.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaLexer.h"
#include "chat/JinjaUnicode.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace qlc::chat::jinja {

namespace {

bool isWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || isDigit(c); }

/// Python's str.rstrip() on the data before a `-` tag.
std::string rstripAll(const std::string &s) { return pyStrip(s, nullptr, false, true); }

class Lexer {
public:
  Lexer(std::string src, const LexOptions &opts) : src_(std::move(src)), opts_(opts) {
    lineStarts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n')
        lineStarts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t n = src_.size();
    while (pos_ < n) {
      size_t t = findTagStart(pos_);
      if (t == std::string::npos) {
        emitData(src_.substr(pos_), pos_);
        break;
      }
      char kind = src_[t + 1];
      char sign = t + 2 < n && (src_[t + 2] == '-' || src_[t + 2] == '+') ? src_[t + 2] : 0;
      size_t rawEnd = 0;
      bool raw = kind == '%' && matchRawBegin(t + 2 + (sign ? 1 : 0), rawEnd);
      std::string text = stripBefore(src_.substr(pos_, t - pos_), sign, kind != '{');
      emitData(text, pos_);
      size_t inner = t + 2 + (sign ? 1 : 0);
      if (raw)
        lexRaw(t, rawEnd);
      else if (kind == '#')
        lexComment(t, inner);
      else
        lexTag(t, inner, kind == '%');
    }
    tokens_.push_back(Token{TokKind::Eof, "", posOf(n)});
    return std::move(tokens_);
  }

private:
  SourcePos posOf(size_t off) const {
    size_t lo = 0, hi = lineStarts_.size();
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (lineStarts_[mid] <= off)
        lo = mid;
      else
        hi = mid;
    }
    return {static_cast<int>(lo + 1), static_cast<int>(off - lineStarts_[lo] + 1)};
  }

  [[noreturn]] void fail(const std::string &msg, size_t off) const { throw Error(msg, posOf(off)); }

  size_t findTagStart(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    return std::string::npos;
  }

  /// The -, + and lstrip_blocks rules for the text before a tag.
  std::string stripBefore(std::string text, char sign, bool blockOrComment) {
    if (sign == '-')
      return rstripAll(text);
    if (sign != '+' && opts_.lstripBlocks && blockOrComment) {
      size_t lpos = text.rfind('\n');
      lpos = lpos == std::string::npos ? 0 : lpos + 1;
      if (lpos > 0 || lineStarting_) {
        bool allWs = lpos < text.size();
        for (size_t i = lpos; i < text.size() && allWs; ++i)
          allWs = isWs(text[i]);
        if (allWs)
          text.resize(lpos);
      }
    }
    return text;
  }

  void emitData(const std::string &text, size_t off) {
    if (!text.empty())
      tokens_.push_back(Token{TokKind::Data, text, posOf(off)});
  }

  size_t skipWs(size_t i) const {
    while (i < src_.size() && isWs(src_[i]))
      ++i;
    return i;
  }

  bool startsWith(size_t i, const char *s) const { return src_.compare(i, std::strlen(s), s) == 0; }

  /// Matches `\s*raw\s*(-%}\s*|%})` at i; `end` is where the raw body starts.
  bool matchRawBegin(size_t i, size_t &end) const {
    i = skipWs(i);
    if (!startsWith(i, "raw"))
      return false;
    i = skipWs(i + 3);
    if (startsWith(i, "-%}")) {
      end = skipWs(i + 3);
      return true;
    }
    if (startsWith(i, "%}")) {
      end = i + 2;
      return true;
    }
    return false;
  }

  /// Matches the end of a block or comment tag at i (`+%}`, `-%}\s*`, `%}\n?`).
  bool matchEnd(size_t i, char close, size_t &end) const {
    char closing[3] = {close, '}', 0};
    if (src_[i] == '+' && startsWith(i + 1, closing)) {
      end = i + 3;
      return true;
    }
    if (src_[i] == '-' && startsWith(i + 1, closing)) {
      end = skipWs(i + 3);
      return true;
    }
    if (startsWith(i, closing)) {
      end = i + 2;
      if (close != '}' && opts_.trimBlocks && end < src_.size() && src_[end] == '\n')
        ++end;
      return true;
    }
    return false;
  }

  void finishTag(size_t end) {
    lineStarting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  void lexRaw(size_t tagStart, size_t bodyStart) {
    for (size_t i = src_.find("{%", bodyStart); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t j = i + 2;
      char sign = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j] : 0;
      if (sign)
        ++j;
      j = skipWs(j);
      if (!startsWith(j, "endraw"))
        continue;
      j = skipWs(j + 6);
      size_t end;
      if (!matchEnd(j, '%', end))
        continue;
      lineStarting_ = false;
      emitData(stripBefore(src_.substr(bodyStart, i - bodyStart), sign, true), bodyStart);
      finishTag(end);
      return;
    }
    fail("missing end of raw directive", tagStart);
  }

  void lexComment(size_t tagStart, size_t i) {
    for (; i < src_.size(); ++i) {
      size_t end;
      if ((src_[i] == '#' || src_[i] == '-' || src_[i] == '+') && matchEnd(i, '#', end)) {
        finishTag(end);
        return;
      }
    }
    fail("missing end of comment tag", tagStart);
  }

  void lexTag(size_t tagStart, size_t i, bool block) {
    tokens_.push_back(Token{block ? TokKind::BlockBegin : TokKind::VarBegin, "", posOf(tagStart)});
    std::string balance;
    size_t n = src_.size();
    while (true) {
      if (i >= n)
        fail(block ? "unexpected end of template, expected end of block tag"
                   : "unexpected end of template, expected end of print statement",
             tagStart);
      size_t end;
      if (balance.empty() && (block ? matchEnd(i, '%', end) : matchVarEnd(i, end))) {
        tokens_.push_back(Token{block ? TokKind::BlockEnd : TokKind::VarEnd, "", posOf(i)});
        finishTag(end);
        return;
      }
      char c = src_[i];
      if (isWs(c)) {
        ++i;
      } else if (isDigit(c)) {
        i = lexNumber(i);
      } else if (isNameStart(c)) {
        size_t j = i;
        while (j < n && isNameChar(src_[j]))
          ++j;
        tokens_.push_back(Token{TokKind::Name, src_.substr(i, j - i), posOf(i)});
        i = j;
      } else if (c == '\'' || c == '"') {
        i = lexString(i);
      } else {
        i = lexOperator(i, balance);
      }
    }
  }

  bool matchVarEnd(size_t i, size_t &end) const {
    if (startsWith(i, "-}}")) {
      end = skipWs(i + 3);
      return true;
    }
    if (startsWith(i, "}}")) {
      end = i + 2;
      return true;
    }
    return false;
  }

  size_t lexDigits(size_t i) const {
    while (i < src_.size() && (isDigit(src_[i]) || (src_[i] == '_' && i + 1 < src_.size() &&
                                                    isDigit(src_[i + 1]))))
      ++i;
    return i;
  }

  size_t lexNumber(size_t i) {
    size_t n = src_.size(), j = lexDigits(i);
    bool isFloat = false;
    bool afterDot = i > 0 && src_[i - 1] == '.';
    if (!afterDot && j + 1 < n && src_[j] == '.' && isDigit(src_[j + 1])) {
      j = lexDigits(j + 1);
      isFloat = true;
    }
    if (!afterDot && j < n && (src_[j] == 'e' || src_[j] == 'E')) {
      size_t k = j + 1;
      if (k < n && (src_[k] == '+' || src_[k] == '-'))
        ++k;
      if (k < n && isDigit(src_[k])) {
        j = lexDigits(k);
        isFloat = true;
      }
    }
    std::string text;
    for (size_t k = i; k < j; ++k)
      if (src_[k] != '_')
        text += src_[k];
    Token tok{isFloat ? TokKind::Float : TokKind::Int, text, posOf(i)};
    errno = 0;
    if (isFloat) {
      tok.floatValue = std::strtod(text.c_str(), nullptr);
    } else {
      tok.intValue = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE)
        fail("integer literal " + text + " is out of range", i);
    }
    tokens_.push_back(tok);
    return j;
  }

  static int hexVal(char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }

  /// A string literal with Python's escapes (unicode-escape).
  size_t lexString(size_t start) {
    char q = src_[start];
    std::string out;
    size_t i = start + 1, n = src_.size();
    while (true) {
      if (i >= n)
        fail("unterminated string literal", start);
      char c = src_[i];
      if (c == q)
        break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= n)
        fail("unterminated string literal", start);
      char e = src_[i + 1];
      i += 2;
      switch (e) {
      case '\n':
        break;
      case '\\':
      case '\'':
      case '"':
        out += e;
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        char32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          int h = i + k < n ? hexVal(src_[i + k]) : -1;
          if (h < 0)
            fail(std::string("truncated \\") + e + " escape in string literal", i - 2);
          cp = cp * 16 + static_cast<char32_t>(h);
        }
        if (cp > 0x10FFFF)
          fail("illegal Unicode character in string literal", i - 2);
        appendUtf8(out, cp);
        i += static_cast<size_t>(digits);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          char32_t cp = static_cast<char32_t>(e - '0');
          for (int k = 0; k < 2 && i < n && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
            cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
          appendUtf8(out, cp);
        } else if (e == 'N') {
          fail("\\N{...} escapes are not supported", i - 2);
        } else {
          out += '\\';
          out += e;
        }
      }
    }
    tokens_.push_back(Token{TokKind::String, out, posOf(start)});
    return i + 1;
  }

  size_t lexOperator(size_t i, std::string &balance) {
    static const char *ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%",
                                "~",  "[",  "]",  "(",  ")",  "{",  "}", "=", ">", "<", ".",
                                ":",  "|",  ",",  ";"};
    for (const char *op : ops) {
      if (!startsWith(i, op))
        continue;
      char c = op[0];
      if (op[1] == 0 && (c == '(' || c == '[' || c == '{')) {
        balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (op[1] == 0 && (c == ')' || c == ']' || c == '}')) {
        if (balance.empty())
          fail(std::string("unexpected '") + c + "'", i);
        if (balance.back() != c)
          fail(std::string("unexpected '") + c + "', expected '" + balance.back() + "'", i);
        balance.pop_back();
      }
      tokens_.push_back(Token{TokKind::Op, op, posOf(i)});
      return i + std::strlen(op);
    }
    fail(std::string("unexpected char '") + src_[i] + "'", i);
  }

  std::string src_;
  LexOptions opts_;
  std::vector<size_t> lineStarts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool lineStarting_ = true;
};

/// Newlines to "\n" and, unless kept, one trailing newline dropped (Jinja2 does both).
std::string normalizeSource(const std::string &s, bool keepTrailingNewline) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n')
        ++i;
    } else {
      out += s[i];
    }
  }
  if (!keepTrailingNewline && !out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

} // namespace

std::vector<Token> tokenize(const std::string &source, const LexOptions &opts) {
  return Lexer(normalizeSource(source, opts.keepTrailingNewline), opts).run();
}

} // namespace qlc::chat::jinja
