#include "tokenizer/Decoder.h"

#include "tokenizer/ByteLevel.h"
#include "tokenizer/PreTokenizer.h"
#include "tokenizer/Utf8.h"

namespace qlc::tok {
namespace {

using Tokens = std::vector<std::string>;

class SequenceDec : public Decoder {
public:
  explicit SequenceDec(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decodeChain(Tokens &tokens, bool raw) const override {
    for (auto &d : steps_)
      d->decodeChain(tokens, raw);
  }

private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

class ByteLevelDec : public Decoder {
public:
  void decodeChain(Tokens &tokens, bool) const override {
    std::string bytes;
    for (const std::string &t : tokens)
      if (!bytelevel::decode(t, bytes))
        bytes += t; // a character that stands for no byte: the token as it is
    tokens.assign(1, std::move(bytes));
  }
};

class ByteFallbackDec : public Decoder {
public:
  void decodeChain(Tokens &tokens, bool raw) const override {
    Tokens out;
    out.reserve(tokens.size());
    std::string run;
    auto flushRun = [&]() {
      if (run.empty())
        return;
      if (raw || utf8::isValid(run))
        out.push_back(run);
      else
        for (size_t i = 0; i < run.size(); ++i)
          out.emplace_back(utf8::kReplacement);
      run.clear();
    };
    for (std::string &t : tokens) {
      int b = byteOf(t);
      if (b >= 0) {
        run.push_back(char(b));
        continue;
      }
      flushRun();
      out.push_back(std::move(t));
    }
    flushRun();
    tokens = std::move(out);
  }

private:
  static int hex(char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  }
  /// The byte of a "<0xXX>" token, or -1.
  static int byteOf(const std::string &t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>')
      return -1;
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDec : public Decoder {
public:
  void decodeChain(Tokens &tokens, bool) const override {
    std::string all;
    for (const std::string &t : tokens)
      all += t;
    tokens.assign(1, std::move(all));
  }
};

class ReplaceDec : public Decoder {
public:
  ReplaceDec(std::unique_ptr<Matcher> m, std::string content) : m_(std::move(m)), content_(std::move(content)) {}
  void decodeChain(Tokens &tokens, bool) const override {
    for (std::string &t : tokens) {
      // Regexes need valid UTF-8: replace within the valid runs, keep stray bytes as they are.
      std::string out;
      auto *p = reinterpret_cast<const unsigned char *>(t.data());
      size_t i = 0, runStart = 0;
      while (i < t.size()) {
        size_t len;
        if (utf8::scan(p + i, t.size() - i, &len) == utf8::Scan::Valid) {
          i += len;
          continue;
        }
        replaceIn(std::string_view(t).substr(runStart, i - runStart), out);
        out.append(t, i, len);
        i += len;
        runStart = i;
      }
      replaceIn(std::string_view(t).substr(runStart), out);
      t = std::move(out);
    }
  }

private:
  void replaceIn(std::string_view text, std::string &out) const {
    size_t prev = 0;
    for (const Span &m : m_->find(text)) {
      out.append(text.substr(prev, m.first - prev));
      out += content_;
      prev = m.second;
    }
    out.append(text.substr(prev));
  }

  std::unique_ptr<Matcher> m_;
  std::string content_;
};

class StripDec : public Decoder {
public:
  StripDec(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decodeChain(Tokens &tokens, bool) const override {
    for (std::string &t : tokens) {
      size_t begin = 0;
      for (size_t n = 0; n < start_ && t.compare(begin, content_.size(), content_) == 0; ++n)
        begin += content_.size();
      size_t end = t.size();
      for (size_t n = 0; n < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++n)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
  }

private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDec : public Decoder {
public:
  MetaspaceDec(std::string rep, bool dropFirst) : rep_(std::move(rep)), dropFirst_(dropFirst) {}
  void decodeChain(Tokens &tokens, bool) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string &t = tokens[i];
      std::string out;
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, rep_.size(), rep_) == 0) {
          if (!(i == 0 && dropFirst_))
            out.push_back(' ');
          p += rep_.size();
        } else {
          out.push_back(t[p++]);
        }
      }
      t = std::move(out);
    }
  }

private:
  std::string rep_;
  bool dropFirst_;
};

class BpeSuffixDec : public Decoder {
public:
  explicit BpeSuffixDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void decodeChain(Tokens &tokens, bool) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string &t = tokens[i];
      std::string with = i + 1 == tokens.size() ? "" : " ", out;
      for (size_t p = 0; p < t.size();) {
        if (!suffix_.empty() && t.compare(p, suffix_.size(), suffix_) == 0) {
          out += with;
          p += suffix_.size();
        } else {
          out.push_back(t[p++]);
        }
      }
      t = std::move(out);
    }
  }

private:
  std::string suffix_;
};

} // namespace

std::unique_ptr<Decoder> parseDecoder(const Json &j, const std::string &where) {
  std::string type = typeOf(j, where);
  if (type == "Sequence") {
    const Json &list = need(j, "decoders", where);
    if (!list.is_array())
      fail(where + ".decoders", "expected an array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      steps.push_back(parseDecoder(list[i], where + ".decoders[" + std::to_string(i) + "]"));
    return std::make_unique<SequenceDec>(std::move(steps));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelDec>();
  if (type == "ByteFallback")
    return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse")
    return std::make_unique<FuseDec>();
  if (type == "Replace") {
    bool isRegex = false;
    std::string pattern = patternOf(j, where, &isRegex);
    return std::make_unique<ReplaceDec>(Matcher::regex(pattern, !isRegex, where + ".pattern"),
                                        needString(j, "content", where));
  }
  if (type == "Strip") {
    int64_t start = optInt(j, "start", where, 0), stop = optInt(j, "stop", where, 0);
    if (start < 0 || stop < 0)
      fail(where, "start and stop must not be negative");
    return std::make_unique<StripDec>(oneChar(j, "content", where), size_t(start), size_t(stop));
  }
  if (type == "Metaspace") {
    std::string scheme = optString(j, "prepend_scheme", where, "always");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail(where + ".prepend_scheme", "unknown prepend scheme '" + scheme + "'");
    bool drop = scheme != "never" && optBool(j, "add_prefix_space", where, true);
    return std::make_unique<MetaspaceDec>(oneChar(j, "replacement", where), drop);
  }
  if (type == "BPEDecoder")
    return std::make_unique<BpeSuffixDec>(optString(j, "suffix", where, "</w>"));
  fail(where, "unsupported decoder type '" + type + "'");
}

} // namespace qlc::tok
