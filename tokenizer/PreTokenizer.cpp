#include "tokenizer/PreTokenizer.h"

#include "tokenizer/ByteLevel.h"
#include "tokenizer/Utf8.h"

#include <algorithm>

namespace qlc::tok {
namespace {

class RegexMatcher : public Matcher {
public:
  explicit RegexMatcher(std::unique_ptr<Regex> re) : re_(std::move(re)) {}
  std::vector<Span> find(std::string_view text) const override { return re_->findAll(text); }

private:
  std::unique_ptr<Regex> re_;
};

class CharMatcher : public Matcher {
public:
  explicit CharMatcher(bool (*pred)(uint32_t)) : pred_(pred) {}
  std::vector<Span> find(std::string_view text) const override {
    std::vector<Span> out;
    for (size_t i = 0; i < text.size();) {
      size_t start = i;
      if (pred_(utf8::next(text, i)))
        out.emplace_back(start, i);
    }
    return out;
  }

private:
  bool (*pred_)(uint32_t);
};

} // namespace

std::unique_ptr<Matcher> Matcher::regex(std::string_view pattern, bool literal, const std::string &where) {
  std::string err;
  auto re = Regex::compile(pattern, literal, &err);
  if (!re)
    fail(where, err);
  return std::make_unique<RegexMatcher>(std::move(re));
}

std::unique_ptr<Matcher> Matcher::chars(bool (*pred)(uint32_t)) {
  return std::make_unique<CharMatcher>(pred);
}

std::vector<Span> splitSpans(std::string_view text, const std::vector<Span> &matches,
                             SplitBehavior behavior, bool invert) {
  // The whole text as alternating (span, is_match) parts, as Pattern::find_matches gives it.
  std::vector<std::pair<Span, bool>> parts;
  if (text.empty())
    return {};
  size_t prev = 0;
  for (const Span &m : matches) {
    if (m.first != prev)
      parts.push_back({{prev, m.first}, invert});
    parts.push_back({m, !invert});
    prev = m.second;
  }
  if (prev != text.size())
    parts.push_back({{prev, text.size()}, invert});

  std::vector<Span> out;
  bool previous = false;
  switch (behavior) {
  case SplitBehavior::Isolated:
    for (auto &p : parts)
      out.push_back(p.first);
    break;
  case SplitBehavior::Removed:
    for (auto &p : parts)
      if (!p.second)
        out.push_back(p.first);
    break;
  case SplitBehavior::Contiguous:
    for (auto &p : parts) {
      if (p.second == previous && !out.empty())
        out.back().second = p.first.second;
      else
        out.push_back(p.first);
      previous = p.second;
    }
    break;
  case SplitBehavior::MergedWithPrevious:
    for (auto &p : parts) {
      if (p.second && !previous && !out.empty())
        out.back().second = p.first.second;
      else
        out.push_back(p.first);
      previous = p.second;
    }
    break;
  case SplitBehavior::MergedWithNext:
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (it->second && !previous && !out.empty())
        out.back().first = it->first.first;
      else
        out.push_back(it->first);
      previous = it->second;
    }
    std::reverse(out.begin(), out.end());
    break;
  }
  return out;
}

namespace {

SplitBehavior parseBehavior(const Json &j, const std::string &where) {
  std::string b = optString(j, "behavior", where, "Isolated");
  if (b == "Removed")
    return SplitBehavior::Removed;
  if (b == "Isolated")
    return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious")
    return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext")
    return SplitBehavior::MergedWithNext;
  if (b == "Contiguous")
    return SplitBehavior::Contiguous;
  fail(where + ".behavior", "unknown split behavior '" + b + "'");
}

/// Splits every piece by one matcher with one behavior.
class MatchSplit : public PreTokenizer {
public:
  MatchSplit(std::unique_ptr<Matcher> m, SplitBehavior b, bool invert)
      : m_(std::move(m)), b_(b), invert_(invert) {}
  void apply(Pieces &pieces) const override {
    splitPieces(pieces, [&](const std::string &t) { return splitSpans(t, m_->find(t), b_, invert_); });
  }

private:
  std::unique_ptr<Matcher> m_;
  SplitBehavior b_;
  bool invert_;
};

class SequencePre : public PreTokenizer {
public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void apply(Pieces &pieces) const override {
    for (auto &s : steps_)
      s->apply(pieces);
  }

private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// GPT-2's pre-tokenization regex, as tokenizers' ByteLevel uses it.
constexpr const char *kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPre : public PreTokenizer {
public:
  ByteLevelPre(bool addPrefixSpace, bool useRegex, const std::string &where)
      : addPrefixSpace_(addPrefixSpace) {
    if (useRegex)
      re_ = Matcher::regex(kGpt2Pattern, false, where);
  }
  void apply(Pieces &pieces) const override {
    if (addPrefixSpace_)
      for (Piece &p : pieces)
        if (p.id < 0 && p.text[0] != ' ')
          p.text.insert(0, 1, ' ');
    if (re_)
      splitPieces(pieces, [&](const std::string &t) {
        return splitSpans(t, re_->find(t), SplitBehavior::Isolated);
      });
    for (Piece &p : pieces)
      if (p.id < 0)
        p.text = bytelevel::encode(p.text);
  }

private:
  bool addPrefixSpace_;
  std::unique_ptr<Matcher> re_;
};

enum class Prepend { Always, First, Never };

class MetaspacePre : public PreTokenizer {
public:
  MetaspacePre(std::string replacement, Prepend scheme, bool split, const std::string &where)
      : rep_(std::move(replacement)), scheme_(scheme) {
    if (split)
      splitter_ = Matcher::regex(rep_, true, where);
  }
  void apply(Pieces &pieces) const override {
    for (Piece &p : pieces) {
      if (p.id >= 0)
        continue;
      std::string t;
      t.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ')
          t += rep_;
        else
          t.push_back(c);
      }
      bool startsWithRep = t.compare(0, rep_.size(), rep_) == 0;
      if (!startsWithRep && (scheme_ == Prepend::Always || (scheme_ == Prepend::First && p.atStart)))
        t.insert(0, rep_);
      p.text = std::move(t);
    }
    if (splitter_)
      splitPieces(pieces, [&](const std::string &t) {
        return splitSpans(t, splitter_->find(t), SplitBehavior::MergedWithNext);
      });
  }

private:
  std::string rep_;
  Prepend scheme_;
  std::unique_ptr<Matcher> splitter_;
};

std::unique_ptr<PreTokenizer> metaspace(const Json &j, const std::string &where) {
  std::string rep = oneChar(j, "replacement", where);
  std::string scheme = optString(j, "prepend_scheme", where, "always");
  Prepend p;
  if (scheme == "always")
    p = Prepend::Always;
  else if (scheme == "first")
    p = Prepend::First;
  else if (scheme == "never")
    p = Prepend::Never;
  else
    fail(where + ".prepend_scheme", "unknown prepend scheme '" + scheme + "'");
  if (!optBool(j, "add_prefix_space", where, true))
    p = Prepend::Never;
  return std::make_unique<MetaspacePre>(rep, p, optBool(j, "split", where, true), where);
}

} // namespace

std::unique_ptr<PreTokenizer> parsePreTokenizer(const Json &j, const std::string &where) {
  std::string type = typeOf(j, where);
  if (type == "Sequence") {
    const Json &list = need(j, "pretokenizers", where);
    if (!list.is_array())
      fail(where + ".pretokenizers", "expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      steps.push_back(parsePreTokenizer(list[i], where + ".pretokenizers[" + std::to_string(i) + "]"));
    return std::make_unique<SequencePre>(std::move(steps));
  }
  if (type == "Split") {
    bool isRegex = false;
    std::string pattern = patternOf(j, where, &isRegex);
    return std::make_unique<MatchSplit>(Matcher::regex(pattern, !isRegex, where + ".pattern"),
                                        parseBehavior(j, where), optBool(j, "invert", where, false));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPre>(optBool(j, "add_prefix_space", where, true),
                                          optBool(j, "use_regex", where, true), where);
  if (type == "Digits") {
    auto b = optBool(j, "individual_digits", where, false) ? SplitBehavior::Isolated
                                                            : SplitBehavior::Contiguous;
    return std::make_unique<MatchSplit>(Matcher::chars(uni::isNumeric), b, false);
  }
  if (type == "Metaspace")
    return metaspace(j, where);
  if (type == "Whitespace")
    return std::make_unique<MatchSplit>(Matcher::regex(R"(\w+|[^\w\s]+)", false, where),
                                        SplitBehavior::Removed, true);
  if (type == "WhitespaceSplit")
    return std::make_unique<MatchSplit>(Matcher::chars(uni::isWhitespace), SplitBehavior::Removed, false);
  if (type == "Punctuation")
    return std::make_unique<MatchSplit>(Matcher::chars(uni::isPunctuation), parseBehavior(j, where), false);
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(std::make_unique<MatchSplit>(Matcher::chars(uni::isWhitespace), SplitBehavior::Removed, false));
    steps.push_back(std::make_unique<MatchSplit>(Matcher::chars(uni::isPunctuation), SplitBehavior::Isolated, false));
    return std::make_unique<SequencePre>(std::move(steps));
  }
  fail(where, "unsupported pre-tokenizer type '" + type + "'");
}

} // namespace qlc::tok
