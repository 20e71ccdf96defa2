// Post-processors add the special tokens of a template around an encoded sequence
// (TemplateProcessing, RobertaProcessing, BertProcessing; ByteLevel changes no ids).
#pragma once

#include "tokenizer/JsonUtil.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qlc::tok {

class PostProcessor {
public:
  /// Builds it from tokenizer.json's "post_processor" object; throws LoadError.
  static PostProcessor fromJson(const Json &j, const std::string &where);

  /// The ids with the single-sequence template applied.
  std::vector<int32_t> apply(std::vector<int32_t> ids) const;
  /// The first special token the template puts before / after the text, or -1.
  int32_t bos() const;
  int32_t eos() const;

private:
  struct Item {
    bool isSequence = false;
    std::vector<int32_t> ids; // the special token's ids
  };
  using Template = std::vector<Item>;
  void parseInto(const Json &j, const std::string &where);

  std::vector<Template> steps_; // applied in order (Sequence of processors)
};

} // namespace qlc::tok
