//===- JinjaValue.cpp - values, str/repr, equality, json.dumps ------------===//
#include "chat/JinjaValue.h"
#include "chat/JinjaUnicode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qlc::chat::jinja {

Value Object::getAttr(const std::string &name) const {
  return Value::undefined("'" + typeName() + " object' has no attribute '" + name + "'");
}

std::string Object::repr() const { return "<" + typeName() + ">"; }

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::markup(std::string s) {
  Value v(std::move(s));
  v.sub_ = 1;
  return v;
}

std::string htmlEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&#34;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

Value Value::list(List items, bool tuple) {
  return sequence(std::move(items), tuple ? Seq::Tuple : Seq::List);
}

Value Value::sequence(List items, Seq seq) {
  Value v;
  v.kind_ = Kind::List;
  v.sub_ = static_cast<uint8_t>(seq);
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::dict(Dict entries) {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::make_shared<const Dict>(std::move(entries));
  return v;
}

Value Value::callable(std::string name, std::function<Value(Interpreter &, CallArgs &)> fn) {
  Value v;
  v.kind_ = Kind::Callable;
  v.callable_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::object(std::shared_ptr<Object> obj) {
  Value v;
  v.kind_ = Kind::Object;
  v.object_ = std::move(obj);
  return v;
}

const Value *Value::find(const std::string &key) const {
  if (kind_ != Kind::Dict)
    return nullptr;
  for (const auto &[k, v] : *dict_)
    if (k == key)
      return &v;
  return nullptr;
}

bool Value::truthy() const {
  switch (kind_) {
  case Kind::Undefined:
  case Kind::None:
    return false;
  case Kind::Bool:
  case Kind::Int:
    return i_ != 0;
  case Kind::Float:
    return f_ != 0.0;
  case Kind::String:
    return !s_.empty();
  case Kind::List:
    return seq() == Seq::Iterator || !list_->empty();
  case Kind::Dict:
    return !dict_->empty();
  case Kind::Callable:
  case Kind::Object:
    return true;
  }
  return false;
}

std::string Value::typeName() const {
  switch (kind_) {
  case Kind::Undefined:
    return "Undefined";
  case Kind::None:
    return "NoneType";
  case Kind::Bool:
    return "bool";
  case Kind::Int:
    return "int";
  case Kind::Float:
    return "float";
  case Kind::String:
    return "str";
  case Kind::List:
    switch (seq()) {
    case Seq::List:
      return "list";
    case Seq::Tuple:
      return "tuple";
    case Seq::Iterator:
      return "generator";
    case Seq::ItemsView:
      return "dict_items";
    case Seq::KeysView:
      return "dict_keys";
    case Seq::ValuesView:
      return "dict_values";
    }
    return "list";
  case Kind::Dict:
    return "dict";
  case Kind::Callable:
    return "function";
  case Kind::Object:
    return object_->typeName();
  }
  return "object";
}

bool Value::sameAs(const Value &o) const {
  if (kind_ != o.kind_)
    return false;
  switch (kind_) {
  case Kind::Undefined:
  case Kind::None:
    return true;
  case Kind::Bool:
    return i_ == o.i_;
  case Kind::Int: // CPython caches small ints
    return i_ == o.i_ && i_ >= -5 && i_ <= 256;
  case Kind::Float:
    return false;
  case Kind::String:
    return s_ == o.s_ && s_.size() <= 1;
  case Kind::List:
    return list_ == o.list_;
  case Kind::Dict:
    return dict_ == o.dict_;
  case Kind::Callable:
    return callable_ == o.callable_;
  case Kind::Object:
    return object_ == o.object_;
  }
  return false;
}

std::string floatRepr(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  if (d == 0)
    return std::signbit(d) ? "-0.0" : "0.0";
  // The shortest %e form that reads back as d, as Python's repr.
  char buf[64];
  for (int prec = 0; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  std::string s(buf);
  bool neg = s[0] == '-';
  if (neg)
    s.erase(0, 1);
  size_t ePos = s.find('e');
  int exp = std::atoi(s.c_str() + ePos + 1);
  std::string digits;
  for (size_t i = 0; i < ePos; ++i)
    if (s[i] != '.')
      digits += s[i];
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
      out = digits + std::string(static_cast<size_t>(exp + 1) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp + 1)) + "." +
            digits.substr(static_cast<size_t>(exp + 1));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {

/// Python's str.isprintable() for the code points text usually holds: controls,
/// format characters and separators other than the space are escaped by repr.
bool isPrintable(char32_t c) {
  return !(c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
           (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF ||
           (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xD800 && c < 0xE000));
}

std::string reprString(const std::string &s) {
  bool hasSingle = s.find('\'') != std::string::npos;
  bool hasDouble = s.find('"') != std::string::npos;
  char q = hasSingle && !hasDouble ? '"' : '\'';
  std::string out(1, q);
  for (char32_t c : decodeUtf8(s)) {
    if (c == static_cast<char32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0xDC80 && c <= 0xDCFF) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\udc%02x", static_cast<unsigned>(c & 0xFF));
      out += buf;
    } else if (!isPrintable(c)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, c < 0x100 ? "\\x%02x" : "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      appendUtf8(out, c);
    }
  }
  out += q;
  return out;
}

} // namespace

std::string toRepr(const Value &v) {
  switch (v.kind()) {
  case Value::Kind::String:
    return reprString(v.str());
  case Value::Kind::List: {
    if (v.seq() == Value::Seq::Iterator)
      return "<generator object>";
    std::string out = v.isTuple() ? "(" : "[";
    const List &items = v.items();
    for (size_t i = 0; i < items.size(); ++i)
      out += (i ? ", " : "") + toRepr(items[i]);
    if (v.isTuple() && items.size() == 1)
      out += ",";
    out += v.isTuple() ? ")" : "]";
    return v.isSequence() ? out : v.typeName() + "(" + out + ")";
  }
  case Value::Kind::Dict: {
    std::string out = "{";
    bool first = true;
    for (const auto &[k, val] : v.entries()) {
      out += (first ? "" : ", ") + reprString(k) + ": " + toRepr(val);
      first = false;
    }
    return out + "}";
  }
  default:
    return toStr(v);
  }
}

std::string toStr(const Value &v) {
  switch (v.kind()) {
  case Value::Kind::Undefined:
    return "";
  case Value::Kind::None:
    return "None";
  case Value::Kind::Bool:
    return v.asBool() ? "True" : "False";
  case Value::Kind::Int:
    return std::to_string(v.asInt());
  case Value::Kind::Float:
    return floatRepr(v.asDouble());
  case Value::Kind::String:
    return v.str();
  case Value::Kind::List:
  case Value::Kind::Dict:
    return toRepr(v);
  case Value::Kind::Callable:
    return "<function " + v.callableRef().name + ">";
  case Value::Kind::Object:
    return v.objectRef().repr();
  }
  return "";
}

bool equals(const Value &a, const Value &b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.isInt() && b.isInt())
      return a.asInt() == b.asInt();
    return a.asDouble() == b.asDouble();
  }
  if (a.kind() != b.kind())
    return false;
  switch (a.kind()) {
  case Value::Kind::Undefined:
  case Value::Kind::None:
    return true;
  case Value::Kind::String:
    return a.str() == b.str();
  case Value::Kind::List: {
    if (!a.isSequence() || !b.isSequence())
      return a.sameAs(b);
    if (a.isTuple() != b.isTuple() || a.items().size() != b.items().size())
      return false;
    for (size_t i = 0; i < a.items().size(); ++i)
      if (!equals(a.items()[i], b.items()[i]))
        return false;
    return true;
  }
  case Value::Kind::Dict: {
    if (a.entries().size() != b.entries().size())
      return false;
    for (const auto &[k, v] : a.entries()) {
      const Value *o = b.find(k);
      if (!o || !equals(v, *o))
        return false;
    }
    return true;
  }
  default:
    return a.sameAs(b);
  }
}

bool lessThan(const Value &a, const Value &b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.isInt() && b.isInt())
      return a.asInt() < b.asInt();
    return a.asDouble() < b.asDouble();
  }
  if (a.isString() && b.isString())
    return decodeUtf8(a.str()) < decodeUtf8(b.str());
  if (a.isSequence() && b.isSequence() && a.isTuple() == b.isTuple()) {
    const List &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i]))
        return lessThan(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw Error("'<' not supported between instances of '" + a.typeName() + "' and '" +
              b.typeName() + "'");
}

namespace {

void jsonString(std::string &out, const std::string &s, bool ensureAscii) {
  out += '"';
  for (char32_t c : decodeUtf8(s)) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default: {
      char buf[16];
      if (c < 0x20 || (ensureAscii && c >= 0x7F)) {
        if (c >= 0x10000) {
          char32_t v = c - 0x10000;
          std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                        static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
        } else {
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        }
        out += buf;
      } else {
        appendUtf8(out, c);
      }
    }
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonOptions &opts;
  std::string indentUnit;
  bool pretty;
  std::string itemSep, keySep;
  std::string out;
  int depth = 0;

  explicit JsonWriter(const JsonOptions &o) : opts(o) {
    pretty = !o.indentStr.empty() || o.indent >= 0;
    indentUnit = !o.indentStr.empty() ? o.indentStr
                                      : std::string(static_cast<size_t>(std::max(0, o.indent)), ' ');
    itemSep = o.itemSep ? *o.itemSep : pretty ? "," : ", ";
    keySep = o.keySep ? *o.keySep : ": ";
  }

  void newline(int level) {
    out += '\n';
    for (int i = 0; i < level; ++i)
      out += indentUnit;
  }

  void write(const Value &v) {
    if (++depth > 512)
      throw Error("tojson: value nested too deeply");
    switch (v.kind()) {
    case Value::Kind::None:
      out += "null";
      break;
    case Value::Kind::Bool:
      out += v.asBool() ? "true" : "false";
      break;
    case Value::Kind::Int:
      out += std::to_string(v.asInt());
      break;
    case Value::Kind::Float: {
      double d = v.asDouble();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                                                 : floatRepr(d);
      break;
    }
    case Value::Kind::String:
      jsonString(out, v.str(), opts.ensureAscii);
      break;
    case Value::Kind::List: {
      if (!v.isSequence())
        throw Error("Object of type " + v.typeName() + " is not JSON serializable");
      const List &items = v.items();
      if (items.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i)
          out += itemSep;
        if (pretty)
          newline(depth);
        write(items[i]);
      }
      if (pretty)
        newline(depth - 1);
      out += ']';
      break;
    }
    case Value::Kind::Dict: {
      std::vector<const std::pair<std::string, Value> *> entries;
      for (const auto &e : v.entries())
        entries.push_back(&e);
      if (opts.sortKeys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](auto *a, auto *b) { return decodeUtf8(a->first) < decodeUtf8(b->first); });
      if (entries.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i)
          out += itemSep;
        if (pretty)
          newline(depth);
        jsonString(out, entries[i]->first, opts.ensureAscii);
        out += keySep;
        write(entries[i]->second);
      }
      if (pretty)
        newline(depth - 1);
      out += '}';
      break;
    }
    default:
      throw Error("Object of type " + v.typeName() + " is not JSON serializable");
    }
    --depth;
  }
};

} // namespace

std::string toJson(const Value &v, const JsonOptions &opts) {
  JsonWriter w(opts);
  w.write(v);
  return std::move(w.out);
}

} // namespace qlc::chat::jinja
