// Decoders turn token strings back into text (ByteLevel, ByteFallback, Fuse, Replace,
// Strip, Metaspace, Sequence), as tokenizers' decode_chain does.
#pragma once

#include "tokenizer/JsonUtil.h"

#include <memory>
#include <string>
#include <vector>

namespace qlc::tok {

class Decoder {
public:
  virtual ~Decoder() = default;
  /// Rewrites the list of token strings. The strings may hold bytes that are not valid
  /// UTF-8 (the caller replaces those at the end). `raw`: ByteFallback passes byte tokens
  /// through as bytes instead of replacing an invalid run by one U+FFFD per byte, so that
  /// a streaming decoder can finish a character with the next token.
  virtual void decodeChain(std::vector<std::string> &tokens, bool raw) const = 0;
};

/// Builds the decoder a tokenizer.json "decoder" object describes; throws LoadError.
std::unique_ptr<Decoder> parseDecoder(const Json &j, const std::string &where);

} // namespace qlc::tok
