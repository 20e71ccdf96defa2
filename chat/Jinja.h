//===- Jinja.h - a Jinja2 template engine for chat templates ----*- C++ -*-===//
//
// A parsed template, rendered against a context of Values. Parse once, render many
// times (from several threads: rendering does not modify the template). Errors are
// thrown as jinja::Error with a source position; ChatTemplate.h wraps this API into
// one that never throws.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_JINJA_H
#define QLC_CHAT_JINJA_H

#include "chat/JinjaAst.h"
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaLexer.h"

#include <ctime>
#include <optional>
#include <string>

namespace qlc::chat::jinja {

class Template {
public:
  /// Parses `source`; throws Error on a syntax error.
  explicit Template(const std::string &source, const LexOptions &opts = {});
  /// Renders with `context` as the template's variables (over the globals); `now`
  /// fixes strftime_now's clock (UTC) when given. Throws Error.
  std::string render(const Dict &context, const RenderLimits &limits = {},
                     std::optional<std::time_t> now = std::nullopt) const;

private:
  Body body_;
};

/// "line L, column C: message", or the message alone when the position is unknown.
std::string formatError(const Error &e);

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJA_H
