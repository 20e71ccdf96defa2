//===- JinjaAst.h - the syntax tree of a Jinja template ---------*- C++ -*-===//
//
// Expressions evaluate to a Value; statements write to the interpreter's output and
// report break/continue. Nodes are immutable once parsed, so one parsed template can
// render many times, from several threads.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_JINJAAST_H
#define QLC_CHAT_JINJAAST_H

#include "chat/JinjaValue.h"

#include <memory>
#include <string>
#include <vector>

namespace qlc::chat::jinja {

class Interpreter;

struct Expr {
  SourcePos pos;
  virtual ~Expr() = default;
  virtual Value eval(Interpreter &in) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Literal : Expr {
  Value value;
  Value eval(Interpreter &in) const override;
};

struct NameExpr : Expr {
  std::string name;
  Value eval(Interpreter &in) const override;
};

/// [a, b] or (a, b).
struct ListExpr : Expr {
  std::vector<ExprPtr> items;
  bool tuple = false;
  Value eval(Interpreter &in) const override;
};

struct DictExpr : Expr {
  std::vector<std::pair<ExprPtr, ExprPtr>> entries;
  Value eval(Interpreter &in) const override;
};

/// obj.name
struct AttrExpr : Expr {
  ExprPtr object;
  std::string name;
  Value eval(Interpreter &in) const override;
};

/// obj[index]
struct ItemExpr : Expr {
  ExprPtr object, index;
  Value eval(Interpreter &in) const override;
};

/// obj[start:stop:step]; absent parts are null.
struct SliceExpr : Expr {
  ExprPtr object, start, stop, step;
  Value eval(Interpreter &in) const override;
};

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct CallExpr : Expr {
  ExprPtr callee;
  Arguments args;
  Value eval(Interpreter &in) const override;
};

/// One `| name(args)` application.
struct FilterCall {
  std::string name;
  Arguments args;
  SourcePos pos;
};

struct FilterExpr : Expr {
  ExprPtr subject;
  FilterCall filter;
  Value eval(Interpreter &in) const override;
};

/// subject is [not] name(args)
struct TestExpr : Expr {
  ExprPtr subject;
  std::string name;
  Arguments args;
  bool negated = false;
  Value eval(Interpreter &in) const override;
};

/// -x, +x, not x
struct UnaryExpr : Expr {
  std::string op;
  ExprPtr operand;
  Value eval(Interpreter &in) const override;
};

/// + - * / // % ** ~
struct BinaryExpr : Expr {
  std::string op;
  ExprPtr lhs, rhs;
  Value eval(Interpreter &in) const override;
};

/// and / or, short-circuiting and returning an operand, as Python.
struct LogicalExpr : Expr {
  bool isAnd = false;
  ExprPtr lhs, rhs;
  Value eval(Interpreter &in) const override;
};

/// a < b <= c ..., with ops == != < > <= >= in notin.
struct CompareExpr : Expr {
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest;
  Value eval(Interpreter &in) const override;
};

/// then if test else otherwise (otherwise may be null: Undefined).
struct CondExpr : Expr {
  ExprPtr test, then, otherwise;
  Value eval(Interpreter &in) const override;
};

enum class Flow { Normal, Break, Continue };

struct Stmt {
  SourcePos pos;
  virtual ~Stmt() = default;
  virtual Flow exec(Interpreter &in) const = 0;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct TextStmt : Stmt {
  std::string text;
  Flow exec(Interpreter &in) const override;
};

struct PrintStmt : Stmt {
  ExprPtr expr;
  Flow exec(Interpreter &in) const override;
};

struct IfStmt : Stmt {
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body otherwise;
  Flow exec(Interpreter &in) const override;
};

/// Where an assignment goes: names (several for unpacking) or ns.attr.
struct AssignTarget {
  std::vector<std::string> names;
  bool unpack = false;
  std::string attr; // set: names[0] is the namespace
  SourcePos pos;
};

struct ForStmt : Stmt {
  AssignTarget target;
  ExprPtr iterable, filter;
  Body body, otherwise;
  Flow exec(Interpreter &in) const override;
};

/// {% set target = value %}, or {% set target %}body{% endset %} with filters.
struct SetStmt : Stmt {
  AssignTarget target;
  ExprPtr value;
  bool block = false;
  Body body;
  std::vector<FilterCall> filters;
  Flow exec(Interpreter &in) const override;
};

struct MacroStmt : Stmt {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults; // one per param, null when none
  std::shared_ptr<Body> body;
  Flow exec(Interpreter &in) const override;
};

struct LoopControlStmt : Stmt {
  bool isBreak = false;
  Flow exec(Interpreter &in) const override;
};

struct WithStmt : Stmt {
  std::vector<std::pair<std::string, ExprPtr>> assigns;
  Body body;
  Flow exec(Interpreter &in) const override;
};

/// {% filter f %}body{% endfilter %}
struct FilterBlockStmt : Stmt {
  std::vector<FilterCall> filters;
  Body body;
  Flow exec(Interpreter &in) const override;
};

/// {% generation %}body{% endgeneration %} (transformers' assistant-mask tag): the body,
/// in a scope of its own.
struct ScopeStmt : Stmt {
  Body body;
  Flow exec(Interpreter &in) const override;
};

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJAAST_H
