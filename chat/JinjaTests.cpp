//===- JinjaTests.cpp - Jinja2's builtin tests (`x is name`) --------------===//
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaUnicode.h"

#include <map>

namespace qlc::chat::jinja {

namespace {

const Value &oneArg(CallArgs &args, const char *name) {
  if (args.positional.size() != 1 || !args.keyword.empty())
    throw Error(std::string("test '") + name + "' takes exactly one argument");
  return args.positional[0];
}

void noArgs(CallArgs &args, const char *name) {
  if (!args.positional.empty() || !args.keyword.empty())
    throw Error(std::string("test '") + name + "' takes no arguments");
}

#define QLC_NOARG_TEST(fnName, testName, expr)                                                   \
  bool fnName(Interpreter &, const Value &v, CallArgs &args) {                                   \
    noArgs(args, testName);                                                                      \
    return (expr);                                                                               \
  }

QLC_NOARG_TEST(tDefined, "defined", !v.isUndefined())
QLC_NOARG_TEST(tUndefined, "undefined", v.isUndefined())
QLC_NOARG_TEST(tNone, "none", v.isNone())
QLC_NOARG_TEST(tBoolean, "boolean", v.isBool())
QLC_NOARG_TEST(tTrue, "true", v.isBool() && v.asBool())
QLC_NOARG_TEST(tFalse, "false", v.isBool() && !v.asBool())
QLC_NOARG_TEST(tInteger, "integer", v.kind() == Value::Kind::Int)
QLC_NOARG_TEST(tFloat, "float", v.kind() == Value::Kind::Float)
QLC_NOARG_TEST(tNumber, "number", v.isNumber())
QLC_NOARG_TEST(tString, "string", v.isString())
QLC_NOARG_TEST(tMapping, "mapping", v.isDict())
QLC_NOARG_TEST(tIterable, "iterable", v.isUndefined() || v.isString() || v.isList() || v.isDict())
QLC_NOARG_TEST(tSequence, "sequence", v.isUndefined() || v.isString() || v.isSequence() || v.isDict())
QLC_NOARG_TEST(tCallable, "callable", v.isCallable())
QLC_NOARG_TEST(tEscaped, "escaped", false)

#undef QLC_NOARG_TEST

bool tLower(Interpreter &, const Value &v, CallArgs &args) {
  noArgs(args, "lower");
  bool cased = false;
  for (char32_t c : decodeUtf8(toStr(v))) {
    if (!isCased(c))
      continue;
    cased = true;
    if (toLowerCp(c) != c)
      return false;
  }
  return cased;
}

bool tUpper(Interpreter &, const Value &v, CallArgs &args) {
  noArgs(args, "upper");
  bool cased = false;
  for (char32_t c : decodeUtf8(toStr(v))) {
    if (!isCased(c))
      continue;
    cased = true;
    if (toUpperCp(c) != c)
      return false;
  }
  return cased;
}

int64_t intOperand(const Value &v, const char *test) {
  if (!v.isInt())
    throw Error(std::string("test '") + test + "' needs an integer, got " + v.typeName());
  return v.asInt();
}

bool tEven(Interpreter &, const Value &v, CallArgs &args) {
  noArgs(args, "even");
  return intOperand(v, "even") % 2 == 0;
}

bool tOdd(Interpreter &, const Value &v, CallArgs &args) {
  noArgs(args, "odd");
  return intOperand(v, "odd") % 2 != 0;
}

bool tDivisibleBy(Interpreter &, const Value &v, CallArgs &args) {
  int64_t d = intOperand(oneArg(args, "divisibleby"), "divisibleby");
  if (d == 0)
    throw Error("integer division or modulo by zero");
  return d == -1 || intOperand(v, "divisibleby") % d == 0;
}

bool tEq(Interpreter &, const Value &v, CallArgs &args) { return equals(v, oneArg(args, "eq")); }
bool tNe(Interpreter &, const Value &v, CallArgs &args) { return !equals(v, oneArg(args, "ne")); }
bool tLt(Interpreter &, const Value &v, CallArgs &args) { return lessThan(v, oneArg(args, "lt")); }
bool tGt(Interpreter &, const Value &v, CallArgs &args) { return lessThan(oneArg(args, "gt"), v); }
bool tLe(Interpreter &, const Value &v, CallArgs &args) {
  const Value &o = oneArg(args, "le");
  return lessThan(v, o) || equals(v, o);
}
bool tGe(Interpreter &, const Value &v, CallArgs &args) {
  const Value &o = oneArg(args, "ge");
  return lessThan(o, v) || equals(v, o);
}
bool tSameAs(Interpreter &, const Value &v, CallArgs &args) { return v.sameAs(oneArg(args, "sameas")); }

bool tIn(Interpreter &, const Value &v, CallArgs &args) {
  const Value &seq = oneArg(args, "in");
  if (seq.isString())
    return v.isString() && seq.str().find(v.str()) != std::string::npos;
  if (seq.isList()) {
    for (const Value &x : seq.items())
      if (equals(x, v))
        return true;
    return false;
  }
  if (seq.isDict())
    return v.isString() && seq.find(v.str());
  if (seq.isUndefined())
    return false;
  throw Error("argument of type '" + seq.typeName() + "' is not iterable");
}

bool tFilter(Interpreter &, const Value &v, CallArgs &args) {
  noArgs(args, "filter");
  return v.isString() && findFilter(v.str()) != nullptr;
}

bool tTest(Interpreter &, const Value &v, CallArgs &args) {
  noArgs(args, "test");
  return v.isString() && findTest(v.str()) != nullptr;
}

} // namespace

TestFn findTest(const std::string &name) {
  static const std::map<std::string, TestFn> tests = {
      {"!=", tNe},          {"<", tLt},          {"<=", tLe},           {"==", tEq},
      {">", tGt},           {">=", tGe},         {"boolean", tBoolean}, {"callable", tCallable},
      {"defined", tDefined}, {"divisibleby", tDivisibleBy}, {"eq", tEq}, {"equalto", tEq},
      {"escaped", tEscaped}, {"even", tEven},    {"false", tFalse},     {"filter", tFilter},
      {"float", tFloat},    {"ge", tGe},         {"greaterthan", tGt},  {"gt", tGt},
      {"in", tIn},          {"integer", tInteger}, {"iterable", tIterable}, {"le", tLe},
      {"lessthan", tLt},    {"lower", tLower},   {"lt", tLt},           {"mapping", tMapping},
      {"ne", tNe},          {"none", tNone},     {"number", tNumber},   {"odd", tOdd},
      {"sameas", tSameAs},  {"sequence", tSequence}, {"string", tString}, {"test", tTest},
      {"true", tTrue},      {"undefined", tUndefined}, {"upper", tUpper},
  };
  auto it = tests.find(name);
  return it == tests.end() ? nullptr : it->second;
}

} // namespace qlc::chat::jinja
