//===- JinjaLexer.h - Jinja2 tokenizer --------------------------*- C++ -*-===//
//
// Splits a template into text and tag tokens with Jinja2's whitespace rules:
// `{%-`/`-%}` strip all whitespace on that side, `+` keeps it, trim_blocks drops the
// first newline after a block or comment tag, lstrip_blocks drops spaces and tabs
// before a block or comment tag that starts a line, and one trailing newline of the
// template is dropped (keep_trailing_newline=False).
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_JINJALEXER_H
#define QLC_CHAT_JINJALEXER_H

#include "chat/JinjaValue.h"

#include <string>
#include <vector>

namespace qlc::chat::jinja {

enum class TokKind { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  TokKind kind;
  std::string text; // data, name, decoded string literal, operator
  SourcePos pos;
  int64_t intValue = 0;
  double floatValue = 0;
};

struct LexOptions {
  bool trimBlocks = true;
  bool lstripBlocks = true;
  bool keepTrailingNewline = false;
};

/// Throws Error on malformed input (unterminated tag, string or comment).
std::vector<Token> tokenize(const std::string &source, const LexOptions &opts);

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJALEXER_H
