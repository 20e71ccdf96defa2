#include "tokenizer/Normalizer.h"

#include "tokenizer/ByteLevel.h"
#include "tokenizer/PreTokenizer.h"
#include "tokenizer/Regex.h"
#include "tokenizer/Utf8.h"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

namespace qlc::tok {
namespace {

class SequenceNorm : public Normalizer {
public:
  explicit SequenceNorm(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string &s) const override {
    for (auto &n : steps_)
      n->normalize(s);
  }

private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class PrependNorm : public Normalizer {
public:
  explicit PrependNorm(std::string p) : p_(std::move(p)) {}
  void normalize(std::string &s) const override {
    if (!s.empty())
      s.insert(0, p_);
  }

private:
  std::string p_;
};

class ReplaceNorm : public Normalizer {
public:
  ReplaceNorm(std::unique_ptr<Matcher> m, std::string content) : m_(std::move(m)), content_(std::move(content)) {}
  void normalize(std::string &s) const override {
    std::vector<Span> matches = m_->find(s);
    if (matches.empty())
      return;
    std::string out;
    size_t prev = 0;
    for (const Span &m : matches) {
      out.append(s, prev, m.first - prev);
      out.append(content_);
      prev = m.second;
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }

private:
  std::unique_ptr<Matcher> m_;
  std::string content_;
};

class StripNorm : public Normalizer {
public:
  StripNorm(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string &s) const override {
    size_t begin = 0, end = s.size();
    if (left_) {
      size_t i = 0;
      while (i < s.size()) {
        size_t at = i;
        if (!uni::isWhitespace(utf8::next(s, i))) {
          i = at;
          break;
        }
      }
      begin = i;
    }
    if (right_) {
      end = begin;
      for (size_t i = begin; i < s.size();)
        if (!uni::isWhitespace(utf8::next(s, i)))
          end = i;
    }
    s = s.substr(begin, end - begin);
  }

private:
  bool left_, right_;
};

/// Unicode normalization forms and lower-casing through utf8proc.
class Utf8procNorm : public Normalizer {
public:
  enum Kind { NFC, NFD, NFKC, NFKD, Lowercase };
  explicit Utf8procNorm(Kind k) : k_(k) {}
  void normalize(std::string &s) const override {
    if (k_ == Lowercase) {
      std::string out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        uint32_t cp = utf8::next(s, i);
        if (cp == 0x130) { // the one unconditional multi-character lower-case mapping
          out += "i\xCC\x87";
          continue;
        }
        utf8::append(out, uint32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
      }
      s = std::move(out);
      return;
    }
    bool ascii = true;
    for (unsigned char c : s)
      ascii &= c < 0x80;
    if (ascii)
      return; // ASCII is invariant under every normalization form
    int opts = UTF8PROC_STABLE | (k_ == NFC || k_ == NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
               (k_ == NFKC || k_ == NFKD ? UTF8PROC_COMPAT : 0);
    utf8proc_uint8_t *out = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(s.data()),
                                      utf8proc_ssize_t(s.size()), &out, utf8proc_option_t(opts));
    if (n >= 0)
      s.assign(reinterpret_cast<const char *>(out), size_t(n));
    std::free(out);
  }

private:
  Kind k_;
};

class ByteLevelNorm : public Normalizer {
public:
  void normalize(std::string &s) const override { s = bytelevel::encode(s); }
};

} // namespace

std::unique_ptr<Normalizer> parseNormalizer(const Json &j, const std::string &where) {
  std::string type = typeOf(j, where);
  if (type == "Sequence") {
    const Json &list = need(j, "normalizers", where);
    if (!list.is_array())
      fail(where + ".normalizers", "expected an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      steps.push_back(parseNormalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]"));
    return std::make_unique<SequenceNorm>(std::move(steps));
  }
  if (type == "Prepend")
    return std::make_unique<PrependNorm>(needString(j, "prepend", where));
  if (type == "Replace") {
    bool isRegex = false;
    std::string pattern = patternOf(j, where, &isRegex);
    return std::make_unique<ReplaceNorm>(Matcher::regex(pattern, !isRegex, where + ".pattern"),
                                         needString(j, "content", where));
  }
  if (type == "Strip")
    return std::make_unique<StripNorm>(optBool(j, "strip_left", where, true),
                                       optBool(j, "strip_right", where, true));
  if (type == "NFC")
    return std::make_unique<Utf8procNorm>(Utf8procNorm::NFC);
  if (type == "NFD")
    return std::make_unique<Utf8procNorm>(Utf8procNorm::NFD);
  if (type == "NFKC")
    return std::make_unique<Utf8procNorm>(Utf8procNorm::NFKC);
  if (type == "NFKD")
    return std::make_unique<Utf8procNorm>(Utf8procNorm::NFKD);
  if (type == "Lowercase")
    return std::make_unique<Utf8procNorm>(Utf8procNorm::Lowercase);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelNorm>();
  fail(where, "unsupported normalizer type '" + type + "'");
}

} // namespace qlc::tok
