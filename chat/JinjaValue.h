//===- JinjaValue.h - the value type of the Jinja interpreter ---*- C++ -*-===//
//
// Values follow Python's semantics as Jinja2 sees them: None, bool, int, float, str
// (UTF-8, indexed by code point), list and tuple, dict (insertion-ordered, string
// keys), callables and objects (namespace, loop). Jinja2's Undefined is a value too:
// it prints as '', iterates as empty and fails on arithmetic or attribute access.
// Lists and dicts are immutable once built, as in transformers' sandbox, so they are
// shared by pointer.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_JINJAVALUE_H
#define QLC_CHAT_JINJAVALUE_H

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace qlc::chat::jinja {

/// A position in the template source (1-based; 0 when unknown).
struct SourcePos {
  int line = 0;
  int column = 0;
};

/// A template error: a syntax error or a failure while rendering. Never escapes the
/// public API (see ChatTemplate.h).
class Error : public std::runtime_error {
public:
  Error(const std::string &msg, SourcePos pos = {}) : std::runtime_error(msg), pos(pos) {}
  SourcePos pos;
};

class Value;
class Interpreter;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;

/// Arguments of a call: positional then keyword.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  SourcePos pos;
};

/// A function value: builtins, bound methods, macros.
struct Callable {
  std::string name;
  std::function<Value(Interpreter &, CallArgs &)> fn;
};

/// An object with attributes (namespace(), the loop variable).
class Object {
public:
  virtual ~Object() = default;
  virtual std::string typeName() const = 0;
  /// Returns Undefined when there is no such attribute.
  virtual Value getAttr(const std::string &name) const;
  /// Returns false when the object takes no assignment.
  virtual bool setAttr(const std::string &name, const Value &v) { return false; }
  virtual std::string repr() const;
};

class Value {
public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Callable, Object };

  /// Undefined; `hint` says why, for the error a later use raises.
  Value() = default;
  static Value undefined(std::string hint);
  static Value none();
  Value(bool b) : kind_(Kind::Bool), i_(b) {}
  Value(int v) : kind_(Kind::Int), i_(v) {}
  Value(int64_t v) : kind_(Kind::Int), i_(v) {}
  Value(double v) : kind_(Kind::Float), f_(v) {}
  Value(std::string s) : kind_(Kind::String), s_(std::move(s)) {}
  Value(const char *s) : kind_(Kind::String), s_(s) {}
  /// A string marked safe (markupsafe.Markup, from `|safe` or `|escape`): adding a
  /// plain string to it HTML-escapes that string, as Jinja2 does with autoescape off.
  static Value markup(std::string s);
  /// What a List value is in Python: a list or tuple, or one of the lazy iterables
  /// Jinja2's filters and dict methods return (a generator, dict_items, ...), which
  /// iterate like a list but have no index, no JSON form and (generators) no len.
  enum class Seq : uint8_t { List, Tuple, Iterator, ItemsView, KeysView, ValuesView };
  static Value list(List items, bool tuple = false);
  static Value sequence(List items, Seq seq);
  static Value dict(Dict entries);
  static Value callable(std::string name, std::function<Value(Interpreter &, CallArgs &)> fn);
  static Value object(std::shared_ptr<Object> obj);

  Kind kind() const { return kind_; }
  bool isUndefined() const { return kind_ == Kind::Undefined; }
  bool isNone() const { return kind_ == Kind::None; }
  bool isBool() const { return kind_ == Kind::Bool; }
  /// Int or Bool (bool is an int in Python).
  bool isInt() const { return kind_ == Kind::Int || kind_ == Kind::Bool; }
  bool isNumber() const { return isInt() || kind_ == Kind::Float; }
  bool isString() const { return kind_ == Kind::String; }
  bool isList() const { return kind_ == Kind::List; }
  bool isTuple() const { return kind_ == Kind::List && sub_ == uint8_t(Seq::Tuple); }
  /// A list or tuple (indexable), not an iterator or a dict view.
  bool isSequence() const { return kind_ == Kind::List && sub_ <= uint8_t(Seq::Tuple); }
  Seq seq() const { return static_cast<Seq>(sub_); }
  bool isMarkup() const { return kind_ == Kind::String && sub_; }
  bool isDict() const { return kind_ == Kind::Dict; }
  bool isCallable() const { return kind_ == Kind::Callable; }
  bool isObject() const { return kind_ == Kind::Object; }

  bool asBool() const { return i_ != 0; }
  int64_t asInt() const { return i_; }
  double asDouble() const { return kind_ == Kind::Float ? f_ : static_cast<double>(i_); }
  const std::string &str() const { return s_; }
  const List &items() const { return *list_; }
  const Dict &entries() const { return *dict_; }
  const Callable &callableRef() const { return *callable_; }
  Object &objectRef() const { return *object_; }
  const std::shared_ptr<Object> &objectPtr() const { return object_; }
  /// Why it is undefined ("'x' is undefined").
  const std::string &undefinedHint() const { return s_; }

  /// Dict lookup; nullptr when absent or not a dict.
  const Value *find(const std::string &key) const;
  /// Python truthiness.
  bool truthy() const;
  /// Python's type name: 'str', 'int', 'list', 'dict', 'NoneType', ...
  std::string typeName() const;
  /// Whether both refer to the same object (Python `is`).
  bool sameAs(const Value &o) const;

private:
  Kind kind_ = Kind::Undefined;
  uint8_t sub_ = 0; // Seq for List; 1 for Markup strings
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<const Dict> dict_;
  std::shared_ptr<const Callable> callable_;
  std::shared_ptr<Object> object_;
};

/// markupsafe.escape of a plain string: & < > " ' as HTML entities.
std::string htmlEscape(const std::string &s);
/// Python str(v): what {{ v }} prints.
std::string toStr(const Value &v);
/// Python repr(v).
std::string toRepr(const Value &v);
/// Python repr of a float ('1.0', '0.1', '1e+20').
std::string floatRepr(double d);
/// Python ==.
bool equals(const Value &a, const Value &b);
/// Python <; throws Error for unorderable types.
bool lessThan(const Value &a, const Value &b);

/// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson
/// filter calls it. `indent` < 0 means None; `indentStr` wins when not empty.
struct JsonOptions {
  bool ensureAscii = false;
  int indent = -1;
  std::string indentStr;
  std::optional<std::string> itemSep, keySep; // unset: Python's defaults for the indent
  bool sortKeys = false;
};
std::string toJson(const Value &v, const JsonOptions &opts);

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJAVALUE_H
