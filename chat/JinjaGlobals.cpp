//===- JinjaGlobals.cpp - range, namespace, dict, raise_exception, ... ----===//
//
// The globals a chat template sees under transformers: Jinja2's range (capped as the
// sandbox caps it), namespace and dict, plus transformers' raise_exception and
// strftime_now.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaInterpreter.h"

#include <ctime>

namespace qlc::chat::jinja {

namespace {

constexpr int64_t kMaxRange = 100000; // jinja2.sandbox.MAX_RANGE

/// namespace(): an object whose attributes `{% set ns.x = ... %}` may assign.
class NamespaceObject : public Object {
public:
  explicit NamespaceObject(Dict attrs) : attrs_(std::move(attrs)) {}
  std::string typeName() const override { return "Namespace"; }
  Value getAttr(const std::string &name) const override {
    for (const auto &[k, v] : attrs_)
      if (k == name)
        return v;
    return Object::getAttr(name);
  }
  bool setAttr(const std::string &name, const Value &v) override {
    for (auto &[k, old] : attrs_)
      if (k == name) {
        old = v;
        return true;
      }
    attrs_.emplace_back(name, v);
    return true;
  }
  std::string repr() const override { return "<Namespace " + toRepr(Value::dict(attrs_)) + ">"; }

private:
  Dict attrs_;
};

/// dict(mapping_or_pairs?, **kwargs) as Python builds it.
Dict buildDict(const char *fn, CallArgs &args) {
  if (args.positional.size() > 1)
    throw Error(std::string(fn) + " expected at most 1 argument, got " +
                std::to_string(args.positional.size()));
  Dict out;
  auto put = [&](const std::string &k, const Value &v) {
    for (auto &[ok, ov] : out)
      if (ok == k) {
        ov = v;
        return;
      }
    out.emplace_back(k, v);
  };
  if (!args.positional.empty()) {
    const Value &src = args.positional[0];
    if (src.isDict()) {
      for (const auto &[k, v] : src.entries())
        put(k, v);
    } else if (src.isList()) {
      for (const Value &pair : src.items()) {
        if (!pair.isList() || pair.items().size() != 2 || !pair.items()[0].isString())
          throw Error(std::string(fn) + ": expected (str, value) pairs");
        put(pair.items()[0].str(), pair.items()[1]);
      }
    } else {
      throw Error("'" + src.typeName() + "' object is not iterable");
    }
  }
  for (const auto &[k, v] : args.keyword)
    put(k, v);
  return out;
}

Value gRange(Interpreter &, CallArgs &args) {
  if (!args.keyword.empty())
    throw Error("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3)
    throw Error("range expected 1 to 3 arguments, got " + std::to_string(args.positional.size()));
  for (const Value &v : args.positional)
    if (!v.isInt())
      throw Error("'" + v.typeName() + "' object cannot be interpreted as an integer");
  int64_t start = 0, stop, step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].asInt();
  } else {
    start = args.positional[0].asInt();
    stop = args.positional[1].asInt();
    if (args.positional.size() == 3)
      step = args.positional[2].asInt();
  }
  if (step == 0)
    throw Error("range() arg 3 must not be zero");
  // Overflow-safe length, as long double.
  long double span = step > 0 ? static_cast<long double>(stop) - start
                              : static_cast<long double>(start) - stop;
  long double len = span <= 0 ? 0 : (span + (step > 0 ? step : -step) - 1) / (step > 0 ? step : -step);
  if (len > kMaxRange)
    throw Error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  List out;
  for (int64_t i = 0, v = start; i < static_cast<int64_t>(len); ++i, v += step)
    out.emplace_back(v);
  return Value::list(std::move(out));
}

Value gNamespace(Interpreter &, CallArgs &args) {
  return Value::object(std::make_shared<NamespaceObject>(buildDict("namespace", args)));
}

Value gDict(Interpreter &, CallArgs &args) { return Value::dict(buildDict("dict", args)); }

Value gRaiseException(Interpreter &, CallArgs &args) {
  ArgBinder b("raise_exception", args, {"message"});
  throw Error(b.has(0) ? toStr(*b.get(0)) : "raise_exception() called");
}

Value gStrftimeNow(Interpreter &in, CallArgs &args) {
  ArgBinder b("strftime_now", args, {"format"});
  std::string fmt = argString(b, 0, "");
  std::time_t t = in.now() ? *in.now() : std::time(nullptr);
  std::tm tm{};
  if (in.now())
    gmtime_r(&t, &tm);
  else
    localtime_r(&t, &tm);
  if (fmt.empty())
    return Value("");
  std::string buf(fmt.size() * 8 + 64, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
  if (n == 0)
    throw Error("strftime_now(): format produced no output or is too long");
  buf.resize(n);
  return Value(std::move(buf));
}

} // namespace

void addGlobals(Dict &globals) {
  globals.emplace_back("range", Value::callable("range", gRange));
  globals.emplace_back("namespace", Value::callable("namespace", gNamespace));
  globals.emplace_back("dict", Value::callable("dict", gDict));
  globals.emplace_back("raise_exception", Value::callable("raise_exception", gRaiseException));
  globals.emplace_back("strftime_now", Value::callable("strftime_now", gStrftimeNow));
}

} // namespace qlc::chat::jinja
