// qlc's tokenizer: reads a Hugging Face tokenizer.json and encodes/decodes like the
// `tokenizers` library does for BPE models — byte-level BPE (GPT-2, Llama-3, Qwen2,
// SmolLM2) and SentencePiece-style BPE with byte fallback (Llama-2, Mistral).
//
// Invalid UTF-8 in the text to encode is not an error: every maximal invalid subpart
// becomes U+FFFD first (what Python's bytes.decode("utf-8", errors="replace") gives), so
// encode(bytes) equals HF's encode(bytes.decode("utf-8", "replace")). decode() returns
// valid UTF-8 the same way (Rust's String::from_utf8_lossy).
//
// Thread safety: a loaded Tokenizer is immutable; encode/decode may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qlc::tok {

struct TokenizerImpl;
class StreamDecoder;

class Tokenizer {
public:
  /// Parses tokenizer.json text. On failure returns nullptr and sets *error (if given) to
  /// a one-line message naming the field at fault.
  static std::unique_ptr<Tokenizer> fromJson(std::string_view json, std::string *error);
  static std::unique_ptr<Tokenizer> fromFile(const std::string &path, std::string *error);
  ~Tokenizer();

  /// Token ids of `text`; with addSpecialTokens the post-processor's template (e.g. BOS)
  /// is applied, as HF's encode(text, add_special_tokens=...) does.
  std::vector<int32_t> encode(std::string_view text, bool addSpecialTokens = true) const;

  /// Text of `ids` (ids the tokenizer does not know are skipped, as in HF).
  std::string decode(const std::vector<int32_t> &ids, bool skipSpecialTokens = false) const;

  /// The id of a token string (added tokens included), or -1.
  int32_t tokenToId(std::string_view token) const;
  /// The token string of an id, or "" if there is none.
  std::string idToToken(int32_t id) const;
  bool isSpecial(int32_t id) const;

  /// One more than the largest id (model vocabulary and added tokens).
  int32_t vocabSize() const;
  /// The BOS/EOS ids the post-processor template names (BOS before the text, EOS after
  /// it); EOS falls back to a special "</s>" token. -1 where the file does not say.
  int32_t bosId() const;
  int32_t eosId() const;

private:
  friend class StreamDecoder;
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

/// Decodes a stream of ids one at a time (generation), returning only complete UTF-8
/// characters: bytes of a character split across tokens are held until it is complete.
/// The concatenated pieces equal Tokenizer::decode of all ids whenever that decodes to
/// valid UTF-8; invalid bytes become one U+FFFD per maximal invalid subpart.
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer &tokenizer, bool skipSpecialTokens = false);
  /// The text this id completes (often "", e.g. after half of an emoji).
  std::string push(int32_t id);
  /// Ends the stream: returns what is still held (an unfinished character as U+FFFD).
  std::string flush();

private:
  const Tokenizer *tok_;
  bool skipSpecial_;
  std::vector<int32_t> window_; // ids since the last token that decoded to something
  std::string windowText_;      // decoded bytes of window_ (before the newest id)
  std::string pending_;         // bytes of an unfinished character
};

} // namespace qlc::tok
