//===- JinjaMethods.cpp - str, dict and list methods ----------------------===//
//
// The Python methods that transformers' ImmutableSandboxedEnvironment lets templates
// call. Methods that would modify a list or dict (append, pop, update, ...) are
// unsafe there: they read as undefined, and calling them is an error.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaUnicode.h"

#include <set>

namespace qlc::chat::jinja {

std::string pyStrFormat(const std::string &fmt, const CallArgs &args); // JinjaFormat.cpp

namespace {

using Method = Value (*)(Interpreter &, const Value &self, CallArgs &);

const std::string *optString(const ArgBinder &b, size_t i) {
  const Value *v = b.get(i);
  if (!v || v->isNone())
    return nullptr;
  if (!v->isString())
    throw Error(b.fn() + "() argument must be str or None, not " + v->typeName());
  return &v->str();
}

Value strStrip(const Value &self, CallArgs &args, const char *fn, bool l, bool r) {
  ArgBinder b(fn, args, {"chars"});
  return Value(pyStrip(self.str(), optString(b, 0), l, r));
}

/// Arguments of startswith/endswith: a string or a tuple of strings.
bool affixMatch(const Value &self, CallArgs &args, const char *fn, bool prefix) {
  ArgBinder b(fn, args, {"prefix", "start", "end"});
  if (!b.has(0))
    throw Error(std::string(fn) + "() takes at least 1 argument (0 given)");
  std::string s = self.str();
  if (b.has(1) || b.has(2)) {
    Value sliced = sliceValue(self, b.has(1) ? std::optional<int64_t>(argInt(b, 1, 0)) : std::nullopt,
                              b.has(2) ? std::optional<int64_t>(argInt(b, 2, 0)) : std::nullopt,
                              std::nullopt);
    s = sliced.str();
  }
  const Value &arg = *b.get(0);
  List options = arg.isTuple() ? arg.items() : List{arg};
  for (const Value &o : options) {
    if (!o.isString())
      throw Error(std::string(fn) + " first arg must be str or a tuple of str, not " + o.typeName());
    const std::string &a = o.str();
    if (a.size() <= s.size() &&
        s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0)
      return true;
  }
  return false;
}

Value stringList(const std::vector<std::string> &parts) {
  List out;
  for (const auto &p : parts)
    out.emplace_back(p);
  return Value::list(std::move(out));
}

Value strSplit(Interpreter &in, const Value &self, CallArgs &args, bool reverse) {
  ArgBinder b(reverse ? "rsplit" : "split", args, {"sep", "maxsplit"});
  const std::string *sep = optString(b, 0);
  if (sep && sep->empty())
    throw Error("empty separator");
  long maxsplit = static_cast<long>(argInt(b, 1, -1));
  std::vector<std::string> parts =
      reverse ? pyRSplit(self.str(), sep, maxsplit) : pySplit(self.str(), sep, maxsplit);
  in.checkListSize(parts.size(), args.pos);
  return stringList(parts);
}

template <bool (*Pred)(char32_t)>
Value strAll(const Value &self) {
  std::u32string u = decodeUtf8(self.str());
  if (u.empty())
    return Value(false);
  for (char32_t c : u)
    if (!Pred(c))
      return Value(false);
  return Value(true);
}

bool isAlnumCp(char32_t c) { return isAlphaCp(c) || isDigitCp(c); }

Value strMethod(const std::string &name, Interpreter &in, const Value &self, CallArgs &args) {
  const std::string &s = self.str();
  if (name == "strip")
    return strStrip(self, args, "strip", true, true);
  if (name == "lstrip")
    return strStrip(self, args, "lstrip", true, false);
  if (name == "rstrip")
    return strStrip(self, args, "rstrip", false, true);
  if (name == "startswith")
    return Value(affixMatch(self, args, "startswith", true));
  if (name == "endswith")
    return Value(affixMatch(self, args, "endswith", false));
  if (name == "split")
    return strSplit(in, self, args, false);
  if (name == "rsplit")
    return strSplit(in, self, args, true);
  if (name == "splitlines") {
    ArgBinder b(name, args, {"keepends"});
    return stringList(pySplitLines(s));
  }
  if (name == "replace") {
    ArgBinder b(name, args, {"old", "new", "count"});
    if (!b.has(0) || !b.has(1))
      throw Error("replace() takes at least 2 arguments");
    std::string from = argString(b, 0, ""), to = argString(b, 1, "");
    long count = static_cast<long>(argInt(b, 2, -1));
    if (to.size() > from.size())
      in.checkSize(s.size() + (to.size() - from.size()) * static_cast<size_t>(pyCount(s, from)),
                   args.pos);
    return Value(pyReplace(s, from, to, count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ArgBinder b(name, args, {"sub"});
    std::string sub = argString(b, 0, "");
    if (name == "count")
      return Value(static_cast<int64_t>(pyCount(s, sub)));
    long at = pyFind(s, sub, name[0] == 'r');
    if (at < 0 && (name == "index" || name == "rindex"))
      throw Error("substring not found");
    return Value(static_cast<int64_t>(at));
  }
  if (name == "join") {
    ArgBinder b(name, args, {"iterable"});
    if (!b.has(0))
      throw Error("join() takes exactly one argument (0 given)");
    const Value &it = *b.get(0);
    List items = it.isList() ? it.items() : List{};
    if (!it.isList() && !it.isString() && !it.isDict())
      throw Error("can only join an iterable");
    if (it.isString())
      for (char32_t c : decodeUtf8(it.str())) {
        std::string ch;
        appendUtf8(ch, c);
        items.emplace_back(ch);
      }
    if (it.isDict())
      for (const auto &e : it.entries())
        items.emplace_back(e.first);
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].isString())
        throw Error("sequence item " + std::to_string(i) + ": expected str instance, " +
                    items[i].typeName() + " found");
      if (i)
        out += s;
      out += items[i].str();
    }
    return Value(std::move(out));
  }
  if (name == "format")
    return Value(pyStrFormat(s, args));
  ArgBinder none(name, args, {});
  if (name == "upper")
    return Value(pyUpper(s));
  if (name == "lower")
    return Value(pyLower(s));
  if (name == "title")
    return Value(pyTitle(s));
  if (name == "capitalize")
    return Value(pyCapitalize(s));
  if (name == "isdigit")
    return strAll<isDigitCp>(self);
  if (name == "isalpha")
    return strAll<isAlphaCp>(self);
  if (name == "isalnum")
    return strAll<isAlnumCp>(self);
  if (name == "isspace")
    return strAll<isPySpace>(self);
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (char32_t c : decodeUtf8(s)) {
      if (!isCased(c))
        continue;
      cased = true;
      if ((name == "islower") != (toLowerCp(c) == c && toUpperCp(c) != c))
        return Value(false);
    }
    return Value(cased);
  }
  throw Error("unknown str method '" + name + "'");
}

Value dictMethod(const std::string &name, Interpreter &, const Value &self, CallArgs &args) {
  if (name == "get") {
    ArgBinder b(name, args, {"key", "default"});
    if (!b.has(0))
      throw Error("get expected at least 1 argument, got 0");
    const Value &k = *b.get(0);
    const Value *v = k.isString() ? self.find(k.str()) : nullptr;
    return v ? *v : b.getOr(1, Value::none());
  }
  ArgBinder none(name, args, {});
  List out;
  for (const auto &[k, v] : self.entries()) {
    if (name == "keys")
      out.emplace_back(k);
    else if (name == "values")
      out.push_back(v);
    else
      out.push_back(Value::list({Value(k), v}, true));
  }
  return Value::sequence(std::move(out), name == "keys"     ? Value::Seq::KeysView
                                         : name == "values" ? Value::Seq::ValuesView
                                                            : Value::Seq::ItemsView);
}

Value listMethod(const std::string &name, Interpreter &, const Value &self, CallArgs &args) {
  ArgBinder b(name, args, {"value"});
  if (!b.has(0))
    throw Error(name + "() takes exactly one argument (0 given)");
  int64_t count = 0, index = 0;
  for (const Value &v : self.items()) {
    if (equals(v, *b.get(0))) {
      if (name == "index")
        return Value(index);
      ++count;
    }
    ++index;
  }
  if (name == "index")
    throw Error(toRepr(*b.get(0)) + " is not in list");
  return Value(count);
}

Value bind(const Value &self, const std::string &name,
           Value (*fn)(const std::string &, Interpreter &, const Value &, CallArgs &)) {
  return Value::callable(name, [self, name, fn](Interpreter &in, CallArgs &args) {
    return fn(name, in, self, args);
  });
}

Value unsafe(const Value &self, const std::string &name) {
  return Value::undefined("access to attribute '" + name + "' of '" + self.typeName() +
                          "' object is unsafe.");
}

} // namespace

std::optional<Value> findMethod(const Value &obj, const std::string &name) {
  static const std::set<std::string> strMethods = {
      "strip",  "lstrip",  "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines",
      "replace", "find",   "rfind",  "index",      "rindex",   "count", "join",   "format",
      "upper",  "lower",   "title",  "capitalize", "isdigit",  "isalpha", "isalnum", "isspace",
      "islower", "isupper"};
  static const std::set<std::string> dictMethods = {"get", "keys", "values", "items"};
  static const std::set<std::string> dictUnsafe = {"pop", "popitem", "update", "clear", "setdefault"};
  static const std::set<std::string> listMethods = {"index", "count"};
  static const std::set<std::string> listUnsafe = {"append", "extend", "insert", "pop", "remove",
                                                   "reverse", "sort", "clear"};
  if (obj.isString() && strMethods.count(name))
    return bind(obj, name, strMethod);
  if (obj.isDict()) {
    if (dictMethods.count(name))
      return bind(obj, name, dictMethod);
    if (dictUnsafe.count(name))
      return unsafe(obj, name);
  }
  if (obj.isSequence()) {
    if (listMethods.count(name))
      return bind(obj, name, listMethod);
    if (listUnsafe.count(name) && !obj.isTuple())
      return unsafe(obj, name);
  }
  return std::nullopt;
}

} // namespace qlc::chat::jinja
