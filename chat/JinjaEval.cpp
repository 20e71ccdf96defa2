//===- JinjaEval.cpp - evaluation of expressions and statements -----------===//
//
// Operators follow Python: int arithmetic is exact (overflow is an error, where Python
// would grow the integer), / is true division, // and % floor, + concatenates strings
// and lists, `in` tests substrings, items and keys. Statements follow Jinja2's
// scoping: a for loop's body and a macro's body get scopes of their own; if does not.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaUnicode.h"

#include <cmath>

namespace qlc::chat::jinja {

std::string pyPercentFormat(const std::string &fmt, const Value &args); // JinjaFormat.cpp

namespace {

[[noreturn]] void throwUndefined(const Value &v, SourcePos pos) {
  throw Error(v.undefinedHint().empty() ? "value is undefined" : v.undefinedHint(), pos);
}

[[noreturn]] void unsupported(const std::string &op, const Value &a, const Value &b, SourcePos pos) {
  throw Error("unsupported operand type(s) for " + op + ": '" + a.typeName() + "' and '" +
                  b.typeName() + "'",
              pos);
}

/// a op b on int64, or an error where Python would have grown the integer.
template <typename Op>
int64_t checkedInt(Op op, int64_t a, int64_t b, SourcePos pos) {
  int64_t r;
  if (op(a, b, &r))
    throw Error("integer overflow", pos);
  return r;
}

bool addOv(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
bool subOv(int64_t a, int64_t b, int64_t *r) { return __builtin_sub_overflow(a, b, r); }
bool mulOv(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }

Value repeat(const Value &seq, int64_t times, Interpreter &in, SourcePos pos) {
  if (times < 0)
    times = 0;
  if (seq.isString()) {
    if (times > 0 && seq.str().size() > 0)
      in.checkSize(seq.str().size() * static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)), pos);
    std::string out;
    for (int64_t i = 0; i < times; ++i)
      out += seq.str();
    return Value(std::move(out));
  }
  if (times > 0)
    in.checkListSize(seq.items().size() * static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)),
                     pos);
  List out;
  for (int64_t i = 0; i < times; ++i)
    out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.isTuple());
}

double floorMod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0)))
    m += b;
  return m;
}

Value arith(const std::string &op, const Value &a, const Value &b, Interpreter &in, SourcePos pos) {
  if (op == "~") {
    std::string s = toStr(a) + toStr(b);
    in.checkSize(s.size(), pos);
    return Value(std::move(s));
  }
  if (a.isUndefined())
    throwUndefined(a, pos);
  if (b.isUndefined())
    throwUndefined(b, pos);
  bool ints = a.isInt() && b.isInt(), nums = a.isNumber() && b.isNumber();
  int64_t x = a.asInt(), y = b.asInt();
  if (op == "+") {
    if (ints)
      return Value(checkedInt(addOv, x, y, pos));
    if (nums)
      return Value(a.asDouble() + b.asDouble());
    if (a.isString() && b.isString()) {
      in.checkSize(a.str().size() + b.str().size(), pos);
      if (a.isMarkup() || b.isMarkup()) // Markup escapes the plain side
        return Value::markup((a.isMarkup() ? a.str() : htmlEscape(a.str())) +
                             (b.isMarkup() ? b.str() : htmlEscape(b.str())));
      return Value(a.str() + b.str());
    }
    if (a.isSequence() && b.isSequence() && a.isTuple() == b.isTuple()) {
      in.checkListSize(a.items().size() + b.items().size(), pos);
      List out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(out), a.isTuple());
    }
    if (a.isString() || a.isList())
      throw Error("can only concatenate " + a.typeName() + " (not \"" + b.typeName() + "\") to " +
                      a.typeName(),
                  pos);
    unsupported(op, a, b, pos);
  }
  if (op == "-") {
    if (ints)
      return Value(checkedInt(subOv, x, y, pos));
    if (nums)
      return Value(a.asDouble() - b.asDouble());
    unsupported(op, a, b, pos);
  }
  if (op == "*") {
    if (ints)
      return Value(checkedInt(mulOv, x, y, pos));
    if (nums)
      return Value(a.asDouble() * b.asDouble());
    if ((a.isString() || a.isSequence()) && b.isInt())
      return repeat(a, y, in, pos);
    if (a.isInt() && (b.isString() || b.isSequence()))
      return repeat(b, x, in, pos);
    unsupported(op, a, b, pos);
  }
  if (op == "%" && a.isString())
    return Value(pyPercentFormat(a.str(), b));
  if (!nums)
    unsupported(op, a, b, pos);
  if (op == "/") {
    if (b.asDouble() == 0)
      throw Error("division by zero", pos);
    return Value(a.asDouble() / b.asDouble());
  }
  if (op == "//" || op == "%") {
    if (b.asDouble() == 0)
      throw Error(ints ? "integer division or modulo by zero" : "float modulo", pos);
    if (ints) {
      if (x == INT64_MIN && y == -1)
        throw Error("integer overflow", pos);
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return op == "//" ? Value(q) : Value(m);
    }
    double fa = a.asDouble(), fb = b.asDouble();
    return op == "//" ? Value(std::floor(fa / fb)) : Value(floorMod(fa, fb));
  }
  if (op == "**") {
    if (ints && y >= 0) {
      int64_t result = 1, base = x;
      for (int64_t e = y; e > 0; e >>= 1) {
        if (e & 1)
          result = checkedInt(mulOv, result, base, pos);
        if (e > 1)
          base = checkedInt(mulOv, base, base, pos);
      }
      return Value(result);
    }
    if (a.asDouble() == 0 && b.asDouble() < 0)
      throw Error("0.0 cannot be raised to a negative power", pos);
    return Value(std::pow(a.asDouble(), b.asDouble()));
  }
  unsupported(op, a, b, pos);
}

bool contains(const Value &container, const Value &item, SourcePos pos) {
  switch (container.kind()) {
  case Value::Kind::Undefined:
    return false;
  case Value::Kind::String:
    if (!item.isString())
      throw Error("'in <string>' requires string as left operand, not " + item.typeName(), pos);
    return container.str().find(item.str()) != std::string::npos;
  case Value::Kind::List:
    for (const Value &v : container.items())
      if (equals(v, item))
        return true;
    return false;
  case Value::Kind::Dict:
    return item.isString() && container.find(item.str()) != nullptr;
  default:
    throw Error("argument of type '" + container.typeName() + "' is not iterable", pos);
  }
}

bool compare(const std::string &op, const Value &a, const Value &b, SourcePos pos) {
  if (op == "==")
    return equals(a, b);
  if (op == "!=")
    return !equals(a, b);
  if (op == "in")
    return contains(b, a, pos);
  if (op == "notin")
    return !contains(b, a, pos);
  if (a.isUndefined())
    throwUndefined(a, pos);
  if (b.isUndefined())
    throwUndefined(b, pos);
  try {
    if (op == "<")
      return lessThan(a, b);
    if (op == ">")
      return lessThan(b, a);
    if (op == "<=")
      return lessThan(a, b) || equals(a, b);
    return lessThan(b, a) || equals(a, b);
  } catch (const Error &e) {
    throw Error(std::string(e.what()).replace(1, 1, op), pos);
  }
}

std::optional<int64_t> sliceIndex(const ExprPtr &e, Interpreter &in) {
  if (!e)
    return std::nullopt;
  Value v = e->eval(in);
  if (v.isNone())
    return std::nullopt;
  if (!v.isInt())
    throw Error("slice indices must be integers or None", e->pos);
  return v.asInt();
}

/// The `loop` variable of a for loop.
class LoopObject : public Object {
public:
  LoopObject(std::shared_ptr<const List> items, size_t index) : items_(std::move(items)), i_(index) {}
  std::string typeName() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(i_ + 1) + "/" + std::to_string(items_->size()) + ">";
  }
  Value getAttr(const std::string &name) const override {
    int64_t n = static_cast<int64_t>(items_->size()), i = static_cast<int64_t>(i_);
    if (name == "index")
      return Value(i + 1);
    if (name == "index0")
      return Value(i);
    if (name == "revindex")
      return Value(n - i);
    if (name == "revindex0")
      return Value(n - i - 1);
    if (name == "first")
      return Value(i == 0);
    if (name == "last")
      return Value(i == n - 1);
    if (name == "length")
      return Value(n);
    if (name == "depth")
      return Value(1);
    if (name == "depth0")
      return Value(0);
    if (name == "previtem")
      return i > 0 ? (*items_)[i_ - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem")
      return i + 1 < n ? (*items_)[i_ + 1] : Value::undefined("there is no next item");
    if (name == "cycle") {
      size_t idx = i_;
      return Value::callable("cycle", [idx](Interpreter &, CallArgs &args) -> Value {
        if (args.positional.empty())
          throw Error("no items for cycling given");
        return args.positional[idx % args.positional.size()];
      });
    }
    return Object::getAttr(name);
  }

private:
  std::shared_ptr<const List> items_;
  size_t i_;
};

struct CallDepthGuard {
  Interpreter &in;
  explicit CallDepthGuard(Interpreter &in, SourcePos pos) : in(in) {
    if (++in.callDepth() > in.limits().maxCallDepth) {
      --in.callDepth();
      throw Error("maximum macro call depth (" + std::to_string(in.limits().maxCallDepth) +
                      ") exceeded",
                  pos);
    }
  }
  ~CallDepthGuard() { --in.callDepth(); }
};

} // namespace

// ---- expressions ----

Value Literal::eval(Interpreter &) const { return value; }

Value NameExpr::eval(Interpreter &in) const { return in.lookup(name, pos); }

Value ListExpr::eval(Interpreter &in) const {
  List out;
  for (const auto &e : items)
    out.push_back(e->eval(in));
  return Value::list(std::move(out), tuple);
}

Value DictExpr::eval(Interpreter &in) const {
  Dict out;
  for (const auto &[ke, ve] : entries) {
    Value k = ke->eval(in);
    if (!k.isString())
      throw Error("only string keys are supported in dict literals, got " + k.typeName(), ke->pos);
    Value v = ve->eval(in);
    bool replaced = false;
    for (auto &e : out)
      if (e.first == k.str()) {
        e.second = v;
        replaced = true;
      }
    if (!replaced)
      out.emplace_back(k.str(), std::move(v));
  }
  return Value::dict(std::move(out));
}

Value AttrExpr::eval(Interpreter &in) const { return in.getAttr(object->eval(in), name, pos); }

Value ItemExpr::eval(Interpreter &in) const {
  Value obj = object->eval(in);
  return in.getItem(obj, index->eval(in), pos);
}

Value SliceExpr::eval(Interpreter &in) const {
  Value obj = object->eval(in);
  if (obj.isUndefined())
    throwUndefined(obj, pos);
  auto b = sliceIndex(start, in), e = sliceIndex(stop, in), s = sliceIndex(step, in);
  if (!obj.isString() && !obj.isSequence()) // Jinja2's getitem: not subscriptable
    return Value::undefined("'" + obj.typeName() + " object' has no element slice");
  try {
    return sliceValue(obj, b, e, s);
  } catch (const Error &err) {
    throw Error(err.what(), pos);
  }
}

Value CallExpr::eval(Interpreter &in) const {
  Value fn = callee->eval(in);
  CallArgs a = in.evalArgs(args, pos);
  return in.call(fn, a, pos);
}

Value FilterExpr::eval(Interpreter &in) const {
  Value subj = subject->eval(in);
  CallArgs a = in.evalArgs(filter.args, filter.pos);
  return in.applyFilter(filter.name, subj, a, filter.pos);
}

Value TestExpr::eval(Interpreter &in) const {
  Value subj = subject->eval(in);
  CallArgs a = in.evalArgs(args, pos);
  return Value(in.applyTest(name, subj, a, pos) != negated);
}

Value UnaryExpr::eval(Interpreter &in) const {
  Value v = operand->eval(in);
  if (op == "not")
    return Value(!v.truthy());
  if (v.isUndefined())
    throwUndefined(v, pos);
  if (!v.isNumber())
    throw Error("bad operand type for unary " + op + ": '" + v.typeName() + "'", pos);
  if (op == "+")
    return v.isBool() ? Value(v.asInt()) : v;
  if (v.kind() == Value::Kind::Float)
    return Value(-v.asDouble());
  if (v.asInt() == INT64_MIN)
    throw Error("integer overflow", pos);
  return Value(-v.asInt());
}

Value BinaryExpr::eval(Interpreter &in) const {
  Value a = lhs->eval(in);
  Value b = rhs->eval(in);
  return arith(op, a, b, in, pos);
}

Value LogicalExpr::eval(Interpreter &in) const {
  Value a = lhs->eval(in);
  if (a.truthy() != isAnd)
    return a;
  return rhs->eval(in);
}

Value CompareExpr::eval(Interpreter &in) const {
  Value left = first->eval(in);
  for (const auto &[op, e] : rest) {
    Value right = e->eval(in);
    if (!compare(op, left, right, pos))
      return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value CondExpr::eval(Interpreter &in) const {
  if (test->eval(in).truthy())
    return then->eval(in);
  if (otherwise)
    return otherwise->eval(in);
  return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
}

// ---- statements ----

Flow TextStmt::exec(Interpreter &in) const {
  in.write(text);
  return Flow::Normal;
}

Flow PrintStmt::exec(Interpreter &in) const {
  Value v = expr->eval(in);
  in.write(toStr(v));
  return Flow::Normal;
}

Flow IfStmt::exec(Interpreter &in) const {
  for (const auto &[test, body] : branches)
    if (test->eval(in).truthy())
      return in.execBody(body);
  return in.execBody(otherwise);
}

Flow ForStmt::exec(Interpreter &in) const {
  List all = in.iterate(iterable->eval(in), iterable->pos);
  auto items = std::make_shared<List>();
  if (filter) {
    for (Value &v : all) {
      in.step(pos);
      Interpreter::ScopeGuard g(in);
      in.assignTarget(target, v);
      if (filter->eval(in).truthy())
        items->push_back(std::move(v));
    }
  } else {
    *items = std::move(all);
  }
  if (items->empty())
    return in.execBody(otherwise);
  std::shared_ptr<const List> shared = items;
  for (size_t i = 0; i < shared->size(); ++i) {
    in.step(pos);
    Interpreter::ScopeGuard g(in);
    in.assign("loop", Value::object(std::make_shared<LoopObject>(shared, i)));
    in.assignTarget(target, (*shared)[i]);
    if (in.execBody(body) == Flow::Break)
      break;
  }
  return Flow::Normal;
}

Flow SetStmt::exec(Interpreter &in) const {
  if (!block) {
    in.assignTarget(target, value->eval(in));
    return Flow::Normal;
  }
  Value v(in.capture(body));
  for (const FilterCall &f : filters) {
    CallArgs a = in.evalArgs(f.args, f.pos);
    v = in.applyFilter(f.name, v, a, f.pos);
  }
  in.assignTarget(target, v);
  return Flow::Normal;
}

Flow MacroStmt::exec(Interpreter &in) const {
  std::shared_ptr<Scope> defScope = in.scope();
  const MacroStmt *self = this;
  in.assign(name, Value::callable(name, [defScope, self](Interpreter &in, CallArgs &args) -> Value {
    CallDepthGuard depth(in, args.pos);
    Interpreter::ScopeGuard g(in, defScope);
    List varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < self->params.size())
        in.assign(self->params[i], args.positional[i]);
      else
        varargs.push_back(args.positional[i]);
    }
    Dict kwargs;
    std::vector<bool> given(self->params.size(), false);
    for (size_t i = 0; i < args.positional.size() && i < given.size(); ++i)
      given[i] = true;
    for (const auto &[k, v] : args.keyword) {
      size_t i = 0;
      while (i < self->params.size() && self->params[i] != k)
        ++i;
      if (i == self->params.size()) {
        kwargs.emplace_back(k, v);
        continue;
      }
      if (given[i])
        throw Error("macro '" + self->name + "' got multiple values for argument '" + k + "'");
      given[i] = true;
      in.assign(k, v);
    }
    for (size_t i = 0; i < self->params.size(); ++i) {
      if (given[i])
        continue;
      if (self->defaults[i])
        in.assign(self->params[i], self->defaults[i]->eval(in));
      else
        in.assign(self->params[i],
                  Value::undefined("parameter '" + self->params[i] + "' was not provided"));
    }
    in.assign("varargs", Value::list(std::move(varargs), /*tuple=*/true));
    in.assign("kwargs", Value::dict(std::move(kwargs)));
    return Value(in.capture(*self->body));
  }));
  return Flow::Normal;
}

Flow LoopControlStmt::exec(Interpreter &) const { return isBreak ? Flow::Break : Flow::Continue; }

Flow WithStmt::exec(Interpreter &in) const {
  std::vector<Value> values;
  for (const auto &a : assigns)
    values.push_back(a.second->eval(in));
  Interpreter::ScopeGuard g(in);
  for (size_t i = 0; i < assigns.size(); ++i)
    in.assign(assigns[i].first, values[i]);
  return in.execBody(body);
}

Flow FilterBlockStmt::exec(Interpreter &in) const {
  Value v(in.capture(body));
  for (const FilterCall &f : filters) {
    CallArgs a = in.evalArgs(f.args, f.pos);
    v = in.applyFilter(f.name, v, a, f.pos);
  }
  in.write(toStr(v));
  return Flow::Normal;
}

Flow ScopeStmt::exec(Interpreter &in) const {
  Interpreter::ScopeGuard g(in); // transformers renders the body as a call block's caller()
  in.write(in.capture(body));
  return Flow::Normal;
}

} // namespace qlc::chat::jinja
