//===- JinjaInterpreter.cpp - scopes, lookups, calls, limits --------------===//
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaUnicode.h"

#include <algorithm>

namespace qlc::chat::jinja {

namespace {

/// Attaches `pos` to errors raised without one (by builtins).
template <typename F>
auto withPos(SourcePos pos, F &&f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error &e) {
    if (e.pos.line == 0)
      throw Error(e.what(), pos);
    throw;
  }
}

std::string objectLabel(const Value &v) { return "'" + v.typeName() + " object'"; }

} // namespace

Interpreter::Interpreter(const Dict &context, const RenderLimits &limits,
                         std::optional<std::time_t> now)
    : scope_(std::make_shared<Scope>()), out_(&root_), limits_(limits), now_(now) {
  Dict globals;
  addGlobals(globals);
  for (auto &[k, v] : globals)
    scope_->vars[k] = v;
  for (const auto &[k, v] : context)
    scope_->vars[k] = v;
}

Interpreter::~Interpreter() {
  for (Scope *s = scope_.get(); s; s = s->parent.get())
    s->vars.clear(); // see ScopeGuard's destructor
}

std::string Interpreter::render(const Body &body) {
  char probe;
  stackBase_ = reinterpret_cast<uintptr_t>(&probe);
  execBody(body);
  return std::move(root_);
}

Value Interpreter::lookup(const std::string &name, SourcePos pos) const {
  for (const Scope *s = scope_.get(); s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end())
      return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assignTarget(const AssignTarget &t, const Value &v) {
  if (!t.attr.empty()) {
    Value ns = lookup(t.names[0], t.pos);
    if (!ns.isObject() || !ns.objectRef().setAttr(t.attr, v))
      throw Error("cannot assign attribute on non-namespace object", t.pos);
    return;
  }
  if (!t.unpack) {
    assign(t.names[0], v);
    return;
  }
  List items;
  if (v.isList())
    items = v.items();
  else if (v.isString() || v.isDict())
    items = iterate(v, t.pos);
  else
    throw Error("cannot unpack non-iterable " + v.typeName() + " object", t.pos);
  if (items.size() != t.names.size())
    throw Error(std::string(items.size() > t.names.size() ? "too many" : "not enough") +
                    " values to unpack (expected " + std::to_string(t.names.size()) + ", got " +
                    std::to_string(items.size()) + ")",
                t.pos);
  for (size_t i = 0; i < items.size(); ++i)
    assign(t.names[i], items[i]);
}

Interpreter::ScopeGuard::ScopeGuard(Interpreter &in, std::shared_ptr<Scope> parent)
    : in_(in), saved_(in.scope_) {
  auto s = std::make_shared<Scope>();
  s->parent = parent ? std::move(parent) : in.scope_;
  in.scope_ = std::move(s);
}

Interpreter::ScopeGuard::~ScopeGuard() {
  // A macro defined in this scope holds the scope, which holds the macro: clearing
  // the variables breaks that cycle.
  in_.scope_->vars.clear();
  in_.scope_ = std::move(saved_);
}

void Interpreter::checkSize(size_t bytes, SourcePos pos) const {
  if (bytes > limits_.maxOutputBytes)
    throw Error("template output exceeds " + std::to_string(limits_.maxOutputBytes) + " bytes",
                pos);
}

void Interpreter::checkListSize(size_t items, SourcePos pos) const {
  if (items > limits_.maxListItems)
    throw Error("list exceeds " + std::to_string(limits_.maxListItems) + " items", pos);
}

void Interpreter::checkStack(SourcePos pos) const {
  char probe;
  uintptr_t here = reinterpret_cast<uintptr_t>(&probe);
  uintptr_t used = here < stackBase_ ? stackBase_ - here : here - stackBase_;
  if (stackBase_ && used > limits_.maxStackBytes)
    throw Error("template recursion too deep", pos);
}

void Interpreter::write(const std::string &s) {
  checkSize(out_->size() + s.size(), {});
  out_->append(s);
}

Flow Interpreter::execBody(const Body &body) {
  for (const auto &stmt : body) {
    step(stmt->pos);
    Flow f = stmt->exec(*this);
    if (f != Flow::Normal)
      return f;
  }
  return Flow::Normal;
}

std::string Interpreter::capture(const Body &body) {
  std::string buf;
  std::string *saved = out_;
  out_ = &buf;
  try {
    execBody(body);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

void Interpreter::step(SourcePos pos) {
  if (++steps_ > limits_.maxSteps)
    throw Error("template exceeds the evaluation limit of " + std::to_string(limits_.maxSteps) +
                    " steps",
                pos);
}

Value Interpreter::getAttr(const Value &obj, const std::string &name, SourcePos pos) {
  switch (obj.kind()) {
  case Value::Kind::Undefined:
    throw Error(obj.undefinedHint().empty() ? "value is undefined" : obj.undefinedHint(), pos);
  case Value::Kind::Dict: {
    if (auto m = findMethod(obj, name))
      return *m;
    if (const Value *v = obj.find(name))
      return *v;
    break;
  }
  case Value::Kind::Object:
    return obj.objectRef().getAttr(name);
  default:
    if (auto m = findMethod(obj, name))
      return *m;
  }
  return Value::undefined(objectLabel(obj) + " has no attribute '" + name + "'");
}

Value Interpreter::getItem(const Value &obj, const Value &key, SourcePos pos) {
  if (obj.isUndefined())
    throw Error(obj.undefinedHint().empty() ? "value is undefined" : obj.undefinedHint(), pos);
  if (obj.isDict() && key.isString()) {
    if (const Value *v = obj.find(key.str()))
      return *v;
    return getAttr(obj, key.str(), pos);
  }
  if ((obj.isSequence() || obj.isString()) && key.isInt()) {
    int64_t i = key.asInt();
    if (obj.isSequence()) {
      int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return obj.items()[static_cast<size_t>(i)];
    } else {
      std::u32string u = decodeUtf8(obj.str());
      int64_t n = static_cast<int64_t>(u.size());
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return Value(encodeUtf8(u.substr(static_cast<size_t>(i), 1)));
    }
    return Value::undefined(objectLabel(obj) + " has no element " + std::to_string(key.asInt()));
  }
  if (key.isString())
    return getAttr(obj, key.str(), pos);
  return Value::undefined(objectLabel(obj) + " has no element " + toRepr(key));
}

Value Interpreter::call(const Value &callee, CallArgs &args, SourcePos pos) {
  if (callee.isUndefined())
    throw Error(callee.undefinedHint().empty() ? "value is undefined" : callee.undefinedHint(),
                pos);
  if (!callee.isCallable())
    throw Error("'" + callee.typeName() + "' object is not callable", pos);
  args.pos = pos;
  checkStack(pos);
  return withPos(pos, [&] { return callee.callableRef().fn(*this, args); });
}

Value Interpreter::applyFilter(const std::string &name, const Value &subject, CallArgs &args,
                               SourcePos pos) {
  FilterFn f = findFilter(name);
  if (!f)
    throw Error("no filter named '" + name + "'", pos);
  args.pos = pos;
  return withPos(pos, [&] { return f(*this, subject, args); });
}

bool Interpreter::applyTest(const std::string &name, const Value &subject, CallArgs &args,
                            SourcePos pos) {
  TestFn t = findTest(name);
  if (!t)
    throw Error("no test named '" + name + "'", pos);
  args.pos = pos;
  return withPos(pos, [&] { return t(*this, subject, args); });
}

List Interpreter::iterate(const Value &v, SourcePos pos) {
  switch (v.kind()) {
  case Value::Kind::Undefined:
    return {};
  case Value::Kind::List:
    return v.items();
  case Value::Kind::Dict: {
    List keys;
    for (const auto &e : v.entries())
      keys.emplace_back(e.first);
    return keys;
  }
  case Value::Kind::String: {
    std::u32string u = decodeUtf8(v.str());
    checkListSize(u.size(), pos);
    List chars;
    for (char32_t c : u) {
      std::string s;
      appendUtf8(s, c);
      chars.emplace_back(std::move(s));
    }
    return chars;
  }
  default:
    throw Error("'" + v.typeName() + "' object is not iterable", pos);
  }
}

CallArgs Interpreter::evalArgs(const Arguments &args, SourcePos pos) {
  CallArgs out;
  out.pos = pos;
  for (const auto &a : args.positional)
    out.positional.push_back(a->eval(*this));
  for (const auto &[k, a] : args.keyword)
    out.keyword.emplace_back(k, a->eval(*this));
  return out;
}

ArgBinder::ArgBinder(const std::string &fn, CallArgs &args,
                     std::initializer_list<const char *> params)
    : fn_(fn), bound_(params.size(), nullptr) {
  if (args.positional.size() > params.size())
    throw Error(fn + "() takes at most " + std::to_string(params.size()) + " argument" +
                (params.size() == 1 ? "" : "s") + " (" + std::to_string(args.positional.size()) +
                " given)");
  for (size_t i = 0; i < args.positional.size(); ++i)
    bound_[i] = &args.positional[i];
  for (const auto &[k, v] : args.keyword) {
    size_t i = 0;
    for (const char *p : params) {
      if (k == p)
        break;
      ++i;
    }
    if (i == params.size())
      throw Error(fn + "() got an unexpected keyword argument '" + k + "'");
    if (bound_[i])
      throw Error(fn + "() got multiple values for argument '" + k + "'");
    bound_[i] = &v;
  }
}

int64_t argInt(const ArgBinder &b, size_t i, int64_t def) {
  const Value *v = b.get(i);
  if (!v)
    return def;
  if (!v->isInt())
    throw Error(b.fn() + "(): expected an integer argument, got " + v->typeName());
  return v->asInt();
}

bool argBool(const ArgBinder &b, size_t i, bool def) {
  const Value *v = b.get(i);
  return v ? v->truthy() : def;
}

std::string argString(const ArgBinder &b, size_t i, const std::string &def) {
  const Value *v = b.get(i);
  if (!v)
    return def;
  if (!v->isString())
    throw Error(b.fn() + "(): expected a string argument, got " + v->typeName());
  return v->str();
}

Value sliceValue(const Value &v, std::optional<int64_t> start, std::optional<int64_t> stop,
                 std::optional<int64_t> step) {
  int64_t st = step.value_or(1);
  if (st == 0)
    throw Error("slice step cannot be zero");
  std::u32string u;
  int64_t n;
  if (v.isString()) {
    u = decodeUtf8(v.str());
    n = static_cast<int64_t>(u.size());
  } else if (v.isSequence()) {
    n = static_cast<int64_t>(v.items().size());
  } else {
    throw Error("'" + v.typeName() + "' object is not subscriptable");
  }
  auto clamp = [&](std::optional<int64_t> x, int64_t def) {
    if (!x)
      return def;
    int64_t i = *x;
    if (i < 0)
      i = std::max<int64_t>(i + n, st < 0 ? -1 : 0);
    else if (i >= n)
      i = st < 0 ? n - 1 : n;
    return i;
  };
  int64_t b = clamp(start, st < 0 ? n - 1 : 0), e = clamp(stop, st < 0 ? -1 : n);
  std::vector<int64_t> idx;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st)
    idx.push_back(i);
  if (v.isString()) {
    std::u32string r;
    for (int64_t i : idx)
      r.push_back(u[static_cast<size_t>(i)]);
    return Value(encodeUtf8(r));
  }
  List r;
  for (int64_t i : idx)
    r.push_back(v.items()[static_cast<size_t>(i)]);
  return Value::list(std::move(r), v.isTuple());
}

Value getAttrPath(Interpreter &in, const Value &v, const std::string &path, SourcePos pos) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && part.size() <= 18 &&
                   std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? in.getItem(cur, Value(static_cast<int64_t>(std::stoll(part))), pos)
                  : in.getItem(cur, Value(part), pos);
    if (dot == std::string::npos)
      return cur;
    start = dot + 1;
  }
}

} // namespace qlc::chat::jinja
