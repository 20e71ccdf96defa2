//===- JinjaParser.h - Jinja2 tokens to a syntax tree -----------*- C++ -*-===//
#ifndef QLC_CHAT_JINJAPARSER_H
#define QLC_CHAT_JINJAPARSER_H

#include "chat/JinjaAst.h"
#include "chat/JinjaLexer.h"

namespace qlc::chat::jinja {

/// Parses a token stream (from tokenize) into the template's top-level body.
/// Throws Error with the offending token's position on a syntax error.
Body parseTemplate(const std::vector<Token> &tokens);

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJAPARSER_H
