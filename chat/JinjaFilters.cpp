//===- JinjaFilters.cpp - Jinja2's builtin filters ------------------------===//
//
// Each filter mirrors jinja2.filters (3.1), with transformers' tojson (json.dumps
// with ensure_ascii=False and no HTML escaping). Filters that return generators in
// Jinja2 (map, select, reverse, ...) return lists here; templates join or iterate them.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaUnicode.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace qlc::chat::jinja {

std::string pyPercentFormat(const std::string &fmt, const Value &args); // JinjaFormat.cpp

namespace {

Value fDefault(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("default", args, {"default_value", "boolean"});
  if (v.isUndefined() || (argBool(b, 1, false) && !v.truthy()))
    return b.getOr(0, Value(""));
  return v;
}

Value fLength(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("length", args, {});
  switch (v.kind()) {
  case Value::Kind::Undefined:
    return Value(0);
  case Value::Kind::String:
    return Value(static_cast<int64_t>(codepointCount(v.str())));
  case Value::Kind::List:
    if (v.seq() == Value::Seq::Iterator)
      break;
    return Value(static_cast<int64_t>(v.items().size()));
  case Value::Kind::Dict:
    return Value(static_cast<int64_t>(v.entries().size()));
  default:
    break;
  }
  throw Error("object of type '" + v.typeName() + "' has no len()");
}

Value fFirst(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("first", args, {});
  List items = in.iterate(v, args.pos);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value fLast(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("last", args, {});
  if (v.isList() && v.seq() == Value::Seq::Iterator)
    throw Error("'generator' object is not reversible");
  List items = in.iterate(v, args.pos);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value fList(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("list", args, {});
  return Value::list(in.iterate(v, args.pos));
}

Value fString(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("string", args, {});
  return Value(toStr(v));
}

Value fTrim(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("trim", args, {"chars"});
  const Value *chars = b.get(0);
  std::string set = chars && chars->isString() ? chars->str() : "";
  return Value(pyStrip(toStr(v), chars && chars->isString() ? &set : nullptr, true, true));
}

template <std::string (*F)(const std::string &)>
Value fCase(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("case", args, {});
  return Value(F(toStr(v)));
}

/// Jinja's title filter: each word (after - whitespace ( { [ <) upper-cased at its first
/// character and lower-cased after it.
Value fTitle(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("title", args, {});
  std::u32string u = decodeUtf8(toStr(v));
  auto isSep = [](char32_t c) {
    return isPySpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
  };
  std::string out;
  size_t i = 0;
  while (i < u.size()) {
    size_t j = i + 1;
    while (j < u.size() && isSep(u[j]) == isSep(u[i]))
      ++j;
    out += pyUpper(encodeUtf8(u.substr(i, 1))) + pyLower(encodeUtf8(u.substr(i + 1, j - i - 1)));
    i = j;
  }
  return Value(std::move(out));
}

Value fReplace(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("replace", args, {"old", "new", "count"});
  const Value *count = b.get(2);
  long n = count && !count->isNone() ? static_cast<long>(argInt(b, 2, -1)) : -1;
  std::string s = toStr(v), from = toStr(b.getOr(0, Value(""))), to = toStr(b.getOr(1, Value("")));
  if (to.size() > from.size())
    in.checkSize(s.size() + (to.size() - from.size()) * static_cast<size_t>(pyCount(s, from)),
                 args.pos);
  return Value(pyReplace(s, from, to, n));
}

Value fJoin(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("join", args, {"d", "attribute"});
  std::string sep = toStr(b.getOr(0, Value(""))), out;
  List items = in.iterate(v, args.pos);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i)
      out += sep;
    out += toStr(b.has(1) ? getAttrPath(in, items[i], toStr(*b.get(1)), args.pos) : items[i]);
    in.checkSize(out.size(), args.pos);
  }
  return Value(std::move(out));
}

Value fTojson(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensureAscii = argBool(b, 0, false);
  if (const Value *ind = b.get(1)) {
    if (ind->isString())
      o.indentStr = ind->str();
    else if (ind->isInt())
      o.indent = static_cast<int>(std::clamp<int64_t>(ind->asInt(), 0, 64));
    else if (!ind->isNone())
      throw Error("tojson(): indent must be an int or a str");
    if (ind->isString() && ind->str().empty())
      o.indent = 0;
  }
  if (const Value *sep = b.get(2); sep && !sep->isNone()) {
    if (!sep->isList() || sep->items().size() != 2 || !sep->items()[0].isString() ||
        !sep->items()[1].isString())
      throw Error("tojson(): separators must be a pair of strings");
    o.itemSep = sep->items()[0].str();
    o.keySep = sep->items()[1].str();
  }
  o.sortKeys = argBool(b, 3, false);
  return Value(toJson(v, o));
}

Value fItems(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("items", args, {});
  if (v.isUndefined())
    return Value::sequence({}, Value::Seq::Iterator);
  if (!v.isDict())
    throw Error("Can only get item pairs from a mapping.");
  List out;
  for (const auto &[k, val] : v.entries())
    out.push_back(Value::list({Value(k), val}, true));
  return Value::sequence(std::move(out), Value::Seq::Iterator);
}

/// Python's int(str): optional sign, digits with single underscores, surrounding spaces.
std::optional<int64_t> parseInt(const std::string &text, int base) {
  std::string s = pyStrip(text, nullptr, true, true), digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_' && s[i + 1] != '_')
      continue;
    digits += s[i];
  }
  if (digits.empty() || base < 2 || base > 36)
    return std::nullopt;
  errno = 0;
  char *end = nullptr;
  long long r = std::strtoll(digits.c_str(), &end, base);
  if (errno || *end || std::isspace(static_cast<unsigned char>(digits[0])))
    return std::nullopt;
  return static_cast<int64_t>(r);
}

std::optional<double> parseFloat(const std::string &text) {
  std::string s = pyStrip(text, nullptr, true, true);
  if (s.empty())
    return std::nullopt;
  std::string lower = pyLower(s);
  if (lower.find("0x") != std::string::npos)
    return std::nullopt;
  std::string clean;
  for (char c : s)
    if (c != '_')
      clean += c;
  errno = 0;
  char *end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (*end)
    return std::nullopt;
  return d;
}

Value fInt(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("int", args, {"default", "base"});
  Value def = b.getOr(0, Value(0));
  if (v.isInt())
    return Value(v.asInt());
  if (v.kind() == Value::Kind::Float) {
    double d = v.asDouble();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18)
      return def;
    return Value(static_cast<int64_t>(d));
  }
  if (v.isString()) {
    if (auto i = parseInt(v.str(), static_cast<int>(argInt(b, 1, 10))))
      return Value(*i);
    if (auto d = parseFloat(v.str()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18)
      return Value(static_cast<int64_t>(*d));
  }
  return def;
}

Value fFloat(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("float", args, {"default"});
  if (v.isNumber())
    return Value(v.asDouble());
  if (v.isString())
    if (auto d = parseFloat(v.str()))
      return Value(*d);
  return b.getOr(0, Value(0.0));
}

Value fAbs(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("abs", args, {});
  if (v.isInt()) {
    if (v.asInt() == INT64_MIN)
      throw Error("integer overflow");
    return Value(v.asInt() < 0 ? -v.asInt() : v.asInt());
  }
  if (v.isNumber())
    return Value(std::fabs(v.asDouble()));
  throw Error("bad operand type for abs(): '" + v.typeName() + "'");
}

Value fRound(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("round", args, {"precision", "method"});
  int64_t prec = argInt(b, 0, 0);
  std::string method = argString(b, 1, "common");
  if (!v.isNumber())
    throw Error("round(): expected a number, got " + v.typeName());
  if (method == "common" && v.isInt() && prec >= 0)
    return Value(v.asInt());
  double x = v.asDouble(), scale = std::pow(10.0, static_cast<double>(prec));
  if (method == "floor")
    return Value(std::floor(x * scale) / scale);
  if (method == "ceil")
    return Value(std::ceil(x * scale) / scale);
  if (method != "common")
    throw Error("method must be 'common', 'ceil' or 'floor'");
  if (!std::isfinite(x) || prec > 300 || prec < -300)
    return Value(x);
  if (prec < 0)
    return Value(std::nearbyint(x / std::pow(10.0, static_cast<double>(-prec))) *
                 std::pow(10.0, static_cast<double>(-prec)));
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(prec), x);
  return Value(std::strtod(buf, nullptr));
}

Value fReverse(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("reverse", args, {});
  if (v.isString()) {
    std::u32string u = decodeUtf8(v.str());
    std::reverse(u.begin(), u.end());
    return Value(encodeUtf8(u));
  }
  List items = in.iterate(v, args.pos);
  std::reverse(items.begin(), items.end());
  return Value::sequence(std::move(items), v.seq() == Value::Seq::Iterator ? Value::Seq::List
                                                                         : Value::Seq::Iterator);
}

/// The key the sort, unique, min and max filters compare by.
Value sortKey(Interpreter &in, const Value &item, const Value *attribute, bool caseSensitive,
              SourcePos pos) {
  Value k = attribute && !attribute->isNone() ? getAttrPath(in, item, toStr(*attribute), pos) : item;
  if (!caseSensitive && k.isString())
    return Value(pyLower(k.str()));
  return k;
}

Value fSort(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("sort", args, {"reverse", "case_sensitive", "attribute"});
  bool rev = argBool(b, 0, false), cs = argBool(b, 1, false);
  List items = in.iterate(v, args.pos);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value &it : items)
    keyed.emplace_back(sortKey(in, it, b.get(2), cs, args.pos), it);
  std::stable_sort(keyed.begin(), keyed.end(), [rev](const auto &x, const auto &y) {
    return rev ? lessThan(y.first, x.first) : lessThan(x.first, y.first);
  });
  List out;
  for (auto &kv : keyed)
    out.push_back(kv.second);
  return Value::list(std::move(out));
}

Value fDictsort(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!v.isDict())
    throw Error("dictsort(): expected a mapping, got " + v.typeName());
  bool cs = argBool(b, 0, false), rev = argBool(b, 2, false);
  std::string by = argString(b, 1, "key");
  if (by != "key" && by != "value")
    throw Error("You can only sort by either 'key' or 'value'");
  List pairs;
  for (const auto &[k, val] : v.entries())
    pairs.push_back(Value::list({Value(k), val}, true));
  size_t idx = by == "key" ? 0 : 1;
  auto key = [&](const Value &p) {
    const Value &k = p.items()[idx];
    return !cs && k.isString() ? Value(pyLower(k.str())) : k;
  };
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value &x, const Value &y) {
    return rev ? lessThan(key(y), key(x)) : lessThan(key(x), key(y));
  });
  return Value::list(std::move(pairs));
}

Value fUnique(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("unique", args, {"case_sensitive", "attribute"});
  bool cs = argBool(b, 0, false);
  List out, seen;
  for (const Value &it : in.iterate(v, args.pos)) {
    Value k = sortKey(in, it, b.get(1), cs, args.pos);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value &s) { return equals(s, k); })) {
      seen.push_back(k);
      out.push_back(it);
    }
  }
  return Value::sequence(std::move(out), Value::Seq::Iterator);
}

template <bool Max>
Value fMinMax(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b(Max ? "max" : "min", args, {"case_sensitive", "attribute"});
  bool cs = argBool(b, 0, false);
  List items = in.iterate(v, args.pos);
  if (items.empty())
    return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value bestKey = sortKey(in, items[0], b.get(1), cs, args.pos);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sortKey(in, items[i], b.get(1), cs, args.pos);
    if (Max ? lessThan(bestKey, k) : lessThan(k, bestKey)) {
      best = i;
      bestKey = k;
    }
  }
  return items[best];
}

Value fSum(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("sum", args, {"attribute", "start"});
  Value total = b.getOr(1, Value(0));
  for (const Value &it : in.iterate(v, args.pos)) {
    Value x = b.has(0) ? getAttrPath(in, it, toStr(*b.get(0)), args.pos) : it;
    if (!x.isNumber() || !total.isNumber())
      throw Error("unsupported operand type(s) for +: '" + total.typeName() + "' and '" +
                  x.typeName() + "'");
    int64_t r;
    if (x.isInt() && total.isInt() && !__builtin_add_overflow(total.asInt(), x.asInt(), &r))
      total = Value(r);
    else if (x.isInt() && total.isInt())
      throw Error("integer overflow");
    else
      total = Value(total.asDouble() + x.asDouble());
  }
  return total;
}

Value fMap(Interpreter &in, const Value &v, CallArgs &args) {
  List out;
  List items = v.truthy() ? in.iterate(v, args.pos) : List{};
  if (args.positional.empty()) {
    std::string attribute;
    Value def;
    bool hasDefault = false;
    for (const auto &[k, val] : args.keyword) {
      if (k == "attribute")
        attribute = toStr(val);
      else if (k == "default") {
        def = val;
        hasDefault = true;
      } else
        throw Error("map(): unexpected keyword argument '" + k + "'");
    }
    if (attribute.empty())
      throw Error("map(): a filter name or attribute= is required");
    for (const Value &it : items) {
      Value x = getAttrPath(in, it, attribute, args.pos);
      out.push_back(x.isUndefined() && hasDefault ? def : x);
    }
    return Value::sequence(std::move(out), Value::Seq::Iterator);
  }
  if (!args.positional[0].isString())
    throw Error("map(): the filter name must be a string");
  std::string name = args.positional[0].str();
  for (const Value &it : items) {
    CallArgs sub;
    sub.positional.assign(args.positional.begin() + 1, args.positional.end());
    sub.keyword = args.keyword;
    out.push_back(in.applyFilter(name, it, sub, args.pos));
  }
  return Value::sequence(std::move(out), Value::Seq::Iterator);
}

/// select, reject, selectattr, rejectattr.
template <bool Attr, bool Keep>
Value fSelect(Interpreter &in, const Value &v, CallArgs &args) {
  size_t first = Attr ? 1 : 0;
  if (Attr && args.positional.empty())
    throw Error("selectattr()/rejectattr() need an attribute name");
  std::string attribute = Attr ? toStr(args.positional[0]) : "";
  std::string test;
  if (args.positional.size() > first) {
    if (!args.positional[first].isString())
      throw Error("the test name must be a string");
    test = args.positional[first].str();
  }
  List out;
  for (const Value &it : v.truthy() ? in.iterate(v, args.pos) : List{}) {
    Value x = Attr ? getAttrPath(in, it, attribute, args.pos) : it;
    bool ok;
    if (test.empty()) {
      ok = x.truthy();
    } else {
      CallArgs sub;
      sub.positional.assign(args.positional.begin() + static_cast<long>(first) + 1,
                            args.positional.end());
      sub.keyword = args.keyword;
      ok = in.applyTest(test, x, sub, args.pos);
    }
    if (ok == Keep)
      out.push_back(it);
  }
  return Value::sequence(std::move(out), Value::Seq::Iterator);
}

Value fIndent(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("indent", args, {"width", "first", "blank"});
  std::string ind;
  if (const Value *w = b.get(0); w && w->isString())
    ind = w->str();
  else
    ind = std::string(static_cast<size_t>(std::clamp<int64_t>(argInt(b, 0, 4), 0, 1024)), ' ');
  bool first = argBool(b, 1, false), blank = argBool(b, 2, false);
  std::vector<std::string> lines = pySplitLines(toStr(v) + "\n");
  in.checkSize(toStr(v).size() + lines.size() * (ind.size() + 1), args.pos);
  std::string rv;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      rv += "\n";
      if (blank || !lines[i].empty())
        rv += ind;
    }
    rv += lines[i];
  }
  return Value(first ? ind + rv : rv);
}

Value fWordcount(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("wordcount", args, {});
  int64_t n = 0;
  bool in = false;
  for (char32_t c : decodeUtf8(toStr(v))) {
    bool w = isAlphaCp(c) || isDigitCp(c) || c == '_';
    if (w && !in)
      ++n;
    in = w;
  }
  return Value(n);
}

Value fEscape(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("escape", args, {});
  return v.isMarkup() ? v : Value::markup(htmlEscape(toStr(v)));
}

Value fSafe(Interpreter &, const Value &v, CallArgs &args) {
  ArgBinder b("safe", args, {});
  return v.isMarkup() ? v : Value::markup(toStr(v));
}

Value fFormat(Interpreter &, const Value &v, CallArgs &args) {
  if (!args.positional.empty() && !args.keyword.empty())
    throw Error("can't handle positional and keyword arguments at the same time");
  if (!args.keyword.empty())
    return Value(pyPercentFormat(toStr(v), Value::dict(Dict(args.keyword.begin(), args.keyword.end()))));
  return Value(pyPercentFormat(toStr(v), Value::list(args.positional, true)));
}

Value fAttr(Interpreter &in, const Value &v, CallArgs &args) {
  ArgBinder b("attr", args, {"name"});
  std::string name = argString(b, 0, "");
  if (v.isObject())
    return v.objectRef().getAttr(name);
  if (auto m = findMethod(v, name))
    return *m;
  return Value::undefined("'" + v.typeName() + " object' has no attribute '" + name + "'");
}

} // namespace

FilterFn findFilter(const std::string &name) {
  static const std::map<std::string, FilterFn> filters = {
      {"abs", fAbs},
      {"attr", fAttr},
      {"capitalize", fCase<pyCapitalize>},
      {"count", fLength},
      {"d", fDefault},
      {"default", fDefault},
      {"dictsort", fDictsort},
      {"e", fEscape},
      {"escape", fEscape},
      {"first", fFirst},
      {"float", fFloat},
      {"format", fFormat},
      {"indent", fIndent},
      {"int", fInt},
      {"items", fItems},
      {"join", fJoin},
      {"last", fLast},
      {"length", fLength},
      {"list", fList},
      {"lower", fCase<pyLower>},
      {"map", fMap},
      {"max", fMinMax<true>},
      {"min", fMinMax<false>},
      {"reject", fSelect<false, false>},
      {"rejectattr", fSelect<true, false>},
      {"replace", fReplace},
      {"reverse", fReverse},
      {"round", fRound},
      {"safe", fSafe},
      {"select", fSelect<false, true>},
      {"selectattr", fSelect<true, true>},
      {"sort", fSort},
      {"string", fString},
      {"sum", fSum},
      {"title", fTitle},
      {"tojson", fTojson},
      {"trim", fTrim},
      {"unique", fUnique},
      {"upper", fCase<pyUpper>},
      {"wordcount", fWordcount},
  };
  auto it = filters.find(name);
  return it == filters.end() ? nullptr : it->second;
}

} // namespace qlc::chat::jinja
