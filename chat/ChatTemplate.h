//===- ChatTemplate.h - apply a model's chat template ------------*- C++ -*-===//
//
// Renders a Hugging Face `chat_template` (Jinja2) the way transformers'
// apply_chat_template does: trim_blocks and lstrip_blocks on, the variables
// `messages`, `add_generation_prompt`, `tools` and `documents` (None unless given),
// plus whatever `extra` holds (bos_token, eos_token, tools, date_string, ...), and
// the globals raise_exception and strftime_now. Never throws and never aborts: a
// syntax or rendering error comes back as a one-line message with its position.
//
// JSON objects keep their key order (nlohmann::ordered_json), as Python's dicts do,
// so that `tojson` prints tools exactly as transformers would. A nlohmann::json
// converts implicitly, with its keys sorted.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_CHATTEMPLATE_H
#define QLC_CHAT_CHATTEMPLATE_H

#include <nlohmann/json.hpp>

#include <ctime>
#include <memory>
#include <optional>
#include <string>

namespace qlc::chat {

namespace jinja {
class Template;
}

struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool addGenerationPrompt = false;
  /// More template variables: bos_token, eos_token, tools, ... (a JSON object).
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  /// strftime_now's clock, read as UTC; unset: the local time now.
  std::optional<std::time_t> now;
  /// Bounds on the work of one rendering: statements and loop iterations executed,
  /// and the size of the output (and of any string built on the way).
  int64_t maxSteps = 10'000'000;
  size_t maxOutputBytes = size_t(16) << 20;
};

class ChatTemplate {
public:
  /// Parses `source`; returns nullptr and sets *error on a syntax error.
  static std::unique_ptr<ChatTemplate> parse(const std::string &source, std::string *error);
  ~ChatTemplate();

  /// Renders; returns nullopt and sets *error when the template fails (including
  /// raise_exception from the template itself).
  std::optional<std::string> render(const ChatTemplateInputs &inputs, std::string *error) const;

private:
  ChatTemplate();
  std::unique_ptr<jinja::Template> tmpl_;
};

/// Parses and renders in one call.
std::optional<std::string> applyChatTemplate(const std::string &tmpl,
                                             const nlohmann::ordered_json &messages,
                                             bool addGenerationPrompt,
                                             const nlohmann::ordered_json &extra,
                                             std::string *error);

} // namespace qlc::chat

#endif // QLC_CHAT_CHATTEMPLATE_H
