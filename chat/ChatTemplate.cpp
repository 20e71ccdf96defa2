//===- ChatTemplate.cpp - apply a model's chat template -------------------===//
#include "chat/ChatTemplate.h"
#include "chat/Jinja.h"
#include "chat/JinjaParser.h"

#include <new>

namespace qlc::chat {

namespace jinja {

Template::Template(const std::string &source, const LexOptions &opts)
    : body_(parseTemplate(tokenize(source, opts))) {}

std::string Template::render(const Dict &context, const RenderLimits &limits,
                             std::optional<std::time_t> now) const {
  Interpreter in(context, limits, now);
  return in.render(body_);
}

std::string formatError(const Error &e) {
  if (e.pos.line <= 0)
    return e.what();
  return "line " + std::to_string(e.pos.line) + ", column " + std::to_string(e.pos.column) + ": " +
         e.what();
}

} // namespace jinja

namespace {

using jinja::Value;

constexpr int kMaxJsonDepth = 256;

Value fromJson(const nlohmann::ordered_json &j, int depth) {
  if (depth > kMaxJsonDepth)
    throw jinja::Error("input JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  switch (j.type()) {
  case nlohmann::ordered_json::value_t::null:
    return Value::none();
  case nlohmann::ordered_json::value_t::boolean:
    return Value(j.get<bool>());
  case nlohmann::ordered_json::value_t::number_integer:
    return Value(j.get<int64_t>());
  case nlohmann::ordered_json::value_t::number_unsigned: {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX))
      return Value(static_cast<double>(u));
    return Value(static_cast<int64_t>(u));
  }
  case nlohmann::ordered_json::value_t::number_float:
    return Value(j.get<double>());
  case nlohmann::ordered_json::value_t::string:
    return Value(j.get<std::string>());
  case nlohmann::ordered_json::value_t::array: {
    jinja::List items;
    for (const auto &e : j)
      items.push_back(fromJson(e, depth + 1));
    return Value::list(std::move(items));
  }
  case nlohmann::ordered_json::value_t::object: {
    jinja::Dict entries;
    for (const auto &[k, v] : j.items())
      entries.emplace_back(k, fromJson(v, depth + 1));
    return Value::dict(std::move(entries));
  }
  default:
    throw jinja::Error("unsupported JSON value (binary) in the input");
  }
}

/// Runs `f`, turning every exception into *error.
template <typename F>
auto guarded(std::string *error, F &&f) -> std::optional<decltype(f())> {
  std::string msg;
  try {
    return f();
  } catch (const jinja::Error &e) {
    msg = jinja::formatError(e);
  } catch (const std::bad_alloc &) {
    msg = "out of memory while rendering the chat template";
  } catch (const std::exception &e) {
    msg = e.what();
  } catch (...) {
    msg = "unknown error in the chat template";
  }
  if (error) { // one line, whatever the template's own message holds
    error->clear();
    for (char c : msg)
      *error += c == '\n' ? std::string("\\n") : c == '\r' ? std::string("\\r") : std::string(1, c);
  }
  return std::nullopt;
}

} // namespace

ChatTemplate::ChatTemplate() = default;
ChatTemplate::~ChatTemplate() = default;

std::unique_ptr<ChatTemplate> ChatTemplate::parse(const std::string &source, std::string *error) {
  auto parsed = guarded(error, [&] { return std::make_unique<jinja::Template>(source); });
  if (!parsed)
    return nullptr;
  std::unique_ptr<ChatTemplate> t(new ChatTemplate());
  t->tmpl_ = std::move(*parsed);
  return t;
}

std::optional<std::string> ChatTemplate::render(const ChatTemplateInputs &inputs,
                                                std::string *error) const {
  return guarded(error, [&] {
    if (!inputs.extra.is_null() && !inputs.extra.is_object())
      throw jinja::Error("the extra template variables must be a JSON object");
    jinja::Dict ctx;
    ctx.emplace_back("messages", fromJson(inputs.messages, 0));
    ctx.emplace_back("tools", Value::none());
    ctx.emplace_back("documents", Value::none());
    ctx.emplace_back("add_generation_prompt", Value(inputs.addGenerationPrompt));
    if (inputs.extra.is_object())
      for (const auto &[k, v] : inputs.extra.items())
        ctx.emplace_back(k, fromJson(v, 0));
    jinja::RenderLimits limits;
    limits.maxSteps = inputs.maxSteps;
    limits.maxOutputBytes = inputs.maxOutputBytes;
    return tmpl_->render(ctx, limits, inputs.now);
  });
}

std::optional<std::string> applyChatTemplate(const std::string &tmpl,
                                             const nlohmann::ordered_json &messages,
                                             bool addGenerationPrompt,
                                             const nlohmann::ordered_json &extra,
                                             std::string *error) {
  auto t = ChatTemplate::parse(tmpl, error);
  if (!t)
    return std::nullopt;
  ChatTemplateInputs in;
  in.messages = messages;
  in.addGenerationPrompt = addGenerationPrompt;
  in.extra = extra;
  return t->render(in, error);
}

} // namespace qlc::chat
