// Normalizers rewrite text before pre-tokenization (Prepend("▁"), Replace(" ", "▁"), NFC, ...).
#pragma once

#include "tokenizer/JsonUtil.h"

#include <memory>
#include <string>

namespace qlc::tok {

class Normalizer {
public:
  virtual ~Normalizer() = default;
  /// Rewrites s in place; s is valid UTF-8 and stays so.
  virtual void normalize(std::string &s) const = 0;
};

/// Builds the normalizer a tokenizer.json "normalizer" object describes; throws LoadError.
std::unique_ptr<Normalizer> parseNormalizer(const Json &j, const std::string &where);

} // namespace qlc::tok
