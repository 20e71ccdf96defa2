//===- TokenizerTest.cpp - tokenizer.json BPE, UTF-8 streaming, bad files --===//
//
// Hand-made vocabularies check the BPE rules (merge ranks, leftmost ties, byte fallback,
// unknown tokens), added tokens and templates; the UTF-8 helpers and the streaming decoder
// are checked on characters split across tokens; malformed tokenizer.json files must give
// a message, never a crash. Agreement with Hugging Face tokenizers on real vocabularies is
// checked by test/e2e/test_tokenizer.py.
//
#include "tokenizer/ByteLevel.h"
#include "tokenizer/Tokenizer.h"
#include "tokenizer/Utf8.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using qlc::tok::StreamDecoder;
using qlc::tok::Tokenizer;
using Json = nlohmann::json;
namespace utf8 = qlc::tok::utf8;
namespace bytelevel = qlc::tok::bytelevel;

namespace {

std::unique_ptr<Tokenizer> load(const Json &j) {
  std::string err;
  auto t = Tokenizer::fromJson(j.dump(), &err);
  EXPECT_TRUE(t) << err;
  return t;
}

std::string loadError(const std::string &text) {
  std::string err;
  auto t = Tokenizer::fromJson(text, &err);
  EXPECT_FALSE(t) << "loaded: " << text.substr(0, 200);
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  return err;
}

using Ids = std::vector<int32_t>;

/// A plain BPE over the given vocabulary (ids in order) and merges, no pre-tokenizer.
Json plainBpe(const std::vector<std::string> &vocab, const std::vector<std::string> &merges) {
  Json v = Json::object();
  for (size_t i = 0; i < vocab.size(); ++i)
    v[vocab[i]] = i;
  return Json{{"model", {{"type", "BPE"}, {"vocab", v}, {"merges", merges}}}};
}

/// A GPT-2 style byte-level BPE: the 256 byte characters (ids 0..255), then one token per
/// merge of two raw byte strings, in rank order.
Json byteLevelBpe(const std::vector<std::pair<std::string, std::string>> &merges) {
  Json vocab = Json::object(), m = Json::array();
  int id = 0;
  for (int b = 0; b < 256; ++b)
    vocab[bytelevel::encode(std::string(1, char(b)))] = id++;
  for (auto &[a, b] : merges) {
    std::string ea = bytelevel::encode(a), eb = bytelevel::encode(b);
    if (!vocab.contains(ea + eb))
      vocab[ea + eb] = id++;
    m.push_back(Json::array({ea, eb}));
  }
  return Json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"decoder", {{"type", "ByteLevel"}}}};
}

/// A SentencePiece-style BPE like Llama-2's: <unk> <s> </s>, 256 byte tokens, then pieces.
Json spmBpe(const std::vector<std::string> &pieces, const std::vector<std::string> &merges) {
  std::vector<std::string> vocab = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab.push_back(name);
  }
  vocab.insert(vocab.end(), pieces.begin(), pieces.end());
  Json j = plainBpe(vocab, merges);
  j["model"]["unk_token"] = "<unk>";
  j["model"]["byte_fallback"] = true;
  j["model"]["fuse_unk"] = true;
  j["normalizer"] = Json::parse(R"({"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]})");
  j["decoder"] = Json::parse(R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})");
  j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}})");
  j["added_tokens"] = Json::parse(R"([
      {"id": 0, "content": "<unk>", "special": true, "normalized": false},
      {"id": 1, "content": "<s>", "special": true, "normalized": false},
      {"id": 2, "content": "</s>", "special": true, "normalized": false}])");
  return j;
}

std::string streamAll(const Tokenizer &t, const Ids &ids, std::vector<std::string> *pieces = nullptr) {
  StreamDecoder d(t);
  std::string out;
  for (int32_t id : ids) {
    std::string p = d.push(id);
    EXPECT_TRUE(utf8::isValid(p));
    if (pieces)
      pieces->push_back(p);
    out += p;
  }
  return out + d.flush();
}

} // namespace

// ----------------------------------------------------------------------------- UTF-8

TEST(Utf8Test, SanitizeReplacesMaximalSubparts) {
  // Same results as Python's bytes.decode("utf-8", errors="replace").
  EXPECT_EQ(utf8::sanitize("abc"), "abc");
  EXPECT_EQ(utf8::sanitize("a\xFF" "b"), "a\uFFFD" "b");
  EXPECT_EQ(utf8::sanitize("\xE2\x82"), "\uFFFD");               // truncated 3-byte: one
  EXPECT_EQ(utf8::sanitize("\xF0\x9F\x98" "x"), "\uFFFD" "x");   // truncated 4-byte: one
  EXPECT_EQ(utf8::sanitize("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD"); // surrogate: three
  EXPECT_EQ(utf8::sanitize("\xC0\xAF"), "\uFFFD\uFFFD");          // overlong: two
  EXPECT_EQ(utf8::sanitize("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(utf8::sanitize("\xE2\x82\xAC"), "€");
  EXPECT_TRUE(utf8::isValid("héllo 🙂"));
  EXPECT_FALSE(utf8::isValid("h\xC3"));
}

TEST(Utf8Test, AssemblerHoldsSplitCharacters) {
  utf8::Assembler a;
  const std::string smile = "🙂"; // F0 9F 99 82
  EXPECT_EQ(a.push("x" + smile.substr(0, 1)), "x");
  EXPECT_TRUE(a.holding());
  EXPECT_EQ(a.push(smile.substr(1, 2)), "");
  EXPECT_EQ(a.push(smile.substr(3) + "y"), smile + "y");
  EXPECT_FALSE(a.holding());
  EXPECT_EQ(a.push("\xE2\x82"), "");
  EXPECT_EQ(a.push("z"), "\uFFFD" "z"); // the character never finished
  EXPECT_EQ(a.push("\xF0\x9F"), "");
  EXPECT_EQ(a.flush(), "\uFFFD");
  EXPECT_EQ(a.push("\xFF"), "\uFFFD");
}

// ----------------------------------------------------------------------------- BPE model

TEST(BpeTest, MergesApplyByRank) {
  // "b c" outranks "a b": abc -> a + bc, even though "ab" and "abc" exist.
  auto t = load(plainBpe({"a", "b", "c", "ab", "bc", "abc"}, {"b c", "a b", "ab c"}));
  EXPECT_EQ(t->encode("abc"), (Ids{0, 4}));
  auto u = load(plainBpe({"a", "b", "c", "ab", "bc", "abc"}, {"a b", "ab c", "b c"}));
  EXPECT_EQ(u->encode("abc"), (Ids{5}));
  EXPECT_EQ(u->encode("cab"), (Ids{2, 3}));
}

TEST(BpeTest, EqualRanksMergeLeftmostFirst) {
  auto t = load(plainBpe({"a", "aa"}, {"a a"}));
  EXPECT_EQ(t->encode("aaa"), (Ids{1, 0}));
  EXPECT_EQ(t->encode("aaaa"), (Ids{1, 1}));
}

TEST(BpeTest, MergesAsArraysAndIgnoreMerges) {
  Json j = plainBpe({"a", "b", "c", "ab", "abc"}, {});
  j["model"]["merges"] = Json::parse(R"([["a", "b"]])");
  auto t = load(j);
  EXPECT_EQ(t->encode("abc"), (Ids{3, 2})); // no "ab c" merge
  j["model"]["ignore_merges"] = true;       // a word in the vocabulary is one token
  auto u = load(j);
  EXPECT_EQ(u->encode("abc"), (Ids{4}));
}

TEST(BpeTest, UnknownCharactersFuseIntoOneUnk) {
  Json j = plainBpe({"<unk>", "a"}, {});
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(load(j)->encode("axyza"), (Ids{1, 0, 0, 0, 1}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(load(j)->encode("axyza"), (Ids{1, 0, 1}));
  j["model"].erase("unk_token"); // no unk token: unknown characters vanish
  EXPECT_EQ(load(j)->encode("axyza"), (Ids{1, 1}));
}

TEST(BpeTest, ByteFallbackSpellsUnknownCharactersInBytes) {
  auto t = load(spmBpe({"▁", "h", "i", "▁h", "▁hi"}, {"▁ h", "▁h i"}));
  // "é" (C3 A9) is not a piece: two byte tokens, ids 3 + byte.
  EXPECT_EQ(t->encode("hi é", false), (Ids{263, 259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t->encode("hi é"), (Ids{1, 263, 259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t->decode({1, 263, 259, 3 + 0xC3, 3 + 0xA9}), "<s> hi é"); // Strip sees "<" first
  EXPECT_EQ(t->decode({1, 263, 259, 3 + 0xC3, 3 + 0xA9}, true), "hi é");
  // An invalid run of byte tokens: one U+FFFD per byte, as tokenizers' ByteFallback does.
  EXPECT_EQ(t->decode({263, 3 + 0xC3, 3 + 0x41}, true), "hi\uFFFD\uFFFD");
  EXPECT_EQ(t->bosId(), 1);
  EXPECT_EQ(t->eosId(), 2);
}

// ----------------------------------------------------------------------------- byte level

TEST(ByteLevelTest, Gpt2RegexAndByteCharacters) {
  auto t = load(byteLevelBpe({{" ", "w"}, {" w", "o"}, {"h", "i"}}));
  // "hi wo" -> "hi", " wo" (the GPT-2 regex keeps the space with the word).
  Ids ids = t->encode("hi wo");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(t->idToToken(ids[0]), "hi");
  EXPECT_EQ(t->idToToken(ids[1]), "Ġwo");
  EXPECT_EQ(t->decode(ids), "hi wo");
  EXPECT_EQ(t->idToToken(int32_t('\n')), "Ċ");
  EXPECT_EQ(t->tokenToId("Ġwo"), ids[1]);
  EXPECT_EQ(t->tokenToId("nope"), -1);
  EXPECT_EQ(t->vocabSize(), 259);
  EXPECT_EQ(t->bosId(), -1);
}

TEST(ByteLevelTest, InvalidInputEncodesAsReplacementCharacter) {
  auto t = load(byteLevelBpe({}));
  EXPECT_EQ(t->encode("a\xFF" "b"), t->encode("a\uFFFD" "b"));
  EXPECT_EQ(t->encode("\xE2\x82 x"), t->encode("\uFFFD x"));
  EXPECT_EQ(t->decode(t->encode("a\xFF" "b")), "a\uFFFD" "b");
  // Ids that decode to invalid UTF-8 give U+FFFD, never invalid text.
  EXPECT_EQ(t->decode({0xF0, 0x9F, int32_t('a')}), "\uFFFD" "a");
}

TEST(ByteLevelTest, SplitAndDigitsPreTokenizers) {
  Json j = byteLevelBpe({{"1", "2"}, {"12", "3"}});
  j["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]})");
  auto t = load(j);
  EXPECT_EQ(t->encode("a123"), (Ids{'a', '1', '2', '3'}));
  j["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = false;
  EXPECT_EQ(load(j)->encode("a123"), (Ids{'a', 257}));
  // Llama-3's regex: numbers in groups of at most three digits.
  j["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}|[^\\p{N}]+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
  EXPECT_EQ(load(j)->encode("1231"), (Ids{257, '1'}));
}

// ----------------------------------------------------------------------------- added tokens

TEST(AddedTokensTest, SpecialTokensAreSplitOutBeforeTheModel) {
  Json j = byteLevelBpe({{"<", "s"}});
  j["added_tokens"] = Json::parse(R"([
      {"id": 300, "content": "<|im_start|>", "special": true, "normalized": false},
      {"id": 301, "content": "<mask>", "special": true, "normalized": false, "lstrip": true, "rstrip": true},
      {"id": 302, "content": "cat", "special": false, "normalized": true, "single_word": true}])");
  auto t = load(j);
  EXPECT_EQ(t->encode("<|im_start|>x"), (Ids{300, 'x'}));
  EXPECT_EQ(t->encode("a <mask> b"), (Ids{'a', 301, 'b'})); // spaces around it are eaten
  EXPECT_EQ(t->encode("a cat"), (Ids{'a', ' ', 302}));
  EXPECT_EQ(t->encode("cat"), (Ids{302}));
  EXPECT_EQ(t->encode("cats"), (Ids{'c', 'a', 't', 's'})); // single_word: not inside a word
  EXPECT_EQ(t->vocabSize(), 303);
  EXPECT_TRUE(t->isSpecial(300));
  EXPECT_FALSE(t->isSpecial(302));
  EXPECT_EQ(t->decode({300, 'x', 302}), "<|im_start|>xcat");
  EXPECT_EQ(t->decode({300, 'x', 302}, true), "xcat");
  EXPECT_EQ(t->tokenToId("<mask>"), 301);
}

TEST(AddedTokensTest, TemplateAddsBosOnlyWhenAsked) {
  auto t = load(spmBpe({"▁", "a"}, {}));
  EXPECT_EQ(t->encode("a", true), (Ids{1, 259, 260}));
  EXPECT_EQ(t->encode("a", false), (Ids{259, 260}));
  EXPECT_EQ(t->encode("", true), (Ids{1}));
  EXPECT_EQ(t->encode("", false), (Ids{}));
  // The normalizer runs per segment between special tokens (a "▁" before each).
  EXPECT_EQ(t->encode("a</s>a", false), (Ids{259, 260, 2, 259, 260}));
}

// ----------------------------------------------------------------------------- streaming

TEST(StreamDecoderTest, ByteLevelEmojiSplitAcrossTokens) {
  const std::string smile = "🙂"; // F0 9F 99 82
  auto t = load(byteLevelBpe({{smile.substr(0, 1), smile.substr(1, 1)}, {smile.substr(2, 1), smile.substr(3, 1)}}));
  Ids ids = t->encode("a" + smile + smile + "b");
  ASSERT_EQ(ids.size(), 6u); // a, F09F, 9982, F09F, 9982, b
  std::vector<std::string> pieces;
  EXPECT_EQ(streamAll(*t, ids, &pieces), "a" + smile + smile + "b");
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", "", smile, "", smile, "b"}));
  // A stream that ends inside a character: the rest comes out of flush() as U+FFFD.
  StreamDecoder d(*t);
  EXPECT_EQ(d.push(ids[0]), "a");
  EXPECT_EQ(d.push(ids[1]), "");
  EXPECT_EQ(d.flush(), "\uFFFD");
}

TEST(StreamDecoderTest, ByteFallbackAndLeadingSpaceStrip) {
  auto t = load(spmBpe({"▁", "h", "i", "▁h", "▁hi"}, {"▁ h", "▁h i"}));
  std::string text = "hi 🙂 hi";
  Ids ids = t->encode(text);
  std::vector<std::string> pieces;
  EXPECT_EQ(streamAll(*t, ids, &pieces), "<s> " + text);
  EXPECT_EQ(t->decode(ids), "<s> " + text);
  StreamDecoder d(*t, /*skipSpecialTokens=*/true);
  std::string out;
  for (int32_t id : ids)
    out += d.push(id);
  EXPECT_EQ(out + d.flush(), text); // the Strip decoder drops only the very first space
}

TEST(StreamDecoderTest, MatchesDecodeOnTheDemoTokenizer) {
  std::string err;
  auto t = Tokenizer::fromFile(QLC_SOURCE_DIR "/models/stories260k/tokenizer.json", &err);
  ASSERT_TRUE(t) << err;
  std::ifstream in(QLC_SOURCE_DIR "/test/e2e/data/multilingual.txt", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  Ids ids = t->encode(ss.str(), false);
  EXPECT_EQ(t->decode(ids), ss.str());
  EXPECT_EQ(streamAll(*t, ids), ss.str());
}

// ----------------------------------------------------------------------------- bad files

TEST(MalformedTest, ClearMessagesNeverCrashes) {
  EXPECT_EQ(loadError(""), "not valid JSON");
  EXPECT_EQ(loadError("{\"model\": "), "not valid JSON");
  EXPECT_NE(loadError("[1, 2]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(loadError("{}").find("missing field 'model'"), std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "Nope"}})").find("unknown model type 'Nope'"), std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "WordPiece", "vocab": {}}})").find("unsupported model type"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "BPE", "merges": []}})").find("missing field 'vocab'"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})").find("missing field 'merges'"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}})")
                .find("model.merges[0]: token 'q' is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]}})")
                .find("merged token 'aa' is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})").find("no valid id"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})").find("model.merges[0]"),
            std::string::npos);
  const char *split = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"}})";
  EXPECT_NE(loadError(split).find("pre_tokenizer.pattern: invalid regex"), std::string::npos);
  const char *norm = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Precompiled"}]}})";
  EXPECT_NE(loadError(norm).find("normalizer.normalizers[0]: unsupported normalizer type 'Precompiled'"),
            std::string::npos);
  const char *dec = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "decoder": {"type": "Strip", "content": 5}})";
  EXPECT_NE(loadError(dec).find("decoder.content"), std::string::npos);
  const char *added = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "added_tokens": [{"content": "x"}]})";
  EXPECT_NE(loadError(added).find("added_tokens[0].id"), std::string::npos);
  std::string err;
  EXPECT_FALSE(Tokenizer::fromFile("/nonexistent/tokenizer.json", &err));
  EXPECT_NE(err.find("cannot open"), std::string::npos);
}
