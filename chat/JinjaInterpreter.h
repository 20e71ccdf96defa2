//===- JinjaInterpreter.h - renders a parsed Jinja template -----*- C++ -*-===//
//
// One Interpreter renders one template once: it holds the scopes, the output and
// the counters that bound the work (steps, output size, call depth), so that no
// template, however written, can hang or exhaust memory.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_CHAT_JINJAINTERPRETER_H
#define QLC_CHAT_JINJAINTERPRETER_H

#include "chat/JinjaAst.h"

#include <cstdint>
#include <ctime>
#include <initializer_list>
#include <optional>
#include <string>
#include <unordered_map>

namespace qlc::chat::jinja {

struct RenderLimits {
  /// Bytes of output, and of any one string the template builds.
  size_t maxOutputBytes = size_t(16) << 20;
  /// Items of any one list the template builds.
  size_t maxListItems = size_t(1) << 20;
  /// Statements executed and loop iterations, together.
  int64_t maxSteps = 10'000'000;
  int maxCallDepth = 100;
  /// Machine stack the renderer may use below its entry (macro recursion).
  size_t maxStackBytes = size_t(1) << 20;
};

struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
};

class Interpreter {
public:
  Interpreter(const Dict &context, const RenderLimits &limits, std::optional<std::time_t> now);
  ~Interpreter();
  Interpreter(const Interpreter &) = delete;
  Interpreter &operator=(const Interpreter &) = delete;

  std::string render(const Body &body);

  // Scopes.
  Value lookup(const std::string &name, SourcePos pos) const;
  void assign(const std::string &name, Value v) { scope_->vars[name] = std::move(v); }
  void assignTarget(const AssignTarget &target, const Value &v);
  /// Makes a child of `parent` (or of the current scope) current until destroyed.
  class ScopeGuard {
  public:
    ScopeGuard(Interpreter &in, std::shared_ptr<Scope> parent = nullptr);
    ~ScopeGuard();
    ScopeGuard(const ScopeGuard &) = delete;
    ScopeGuard &operator=(const ScopeGuard &) = delete;

  private:
    Interpreter &in_;
    std::shared_ptr<Scope> saved_;
  };
  const std::shared_ptr<Scope> &scope() const { return scope_; }

  // Output.
  void write(const std::string &s);
  Flow execBody(const Body &body);
  /// Renders `body` into a string instead of the output.
  std::string capture(const Body &body);

  // Operations with Jinja2's semantics; `pos` locates errors.
  Value getAttr(const Value &obj, const std::string &name, SourcePos pos);
  Value getItem(const Value &obj, const Value &key, SourcePos pos);
  Value call(const Value &callee, CallArgs &args, SourcePos pos);
  Value applyFilter(const std::string &name, const Value &subject, CallArgs &args, SourcePos pos);
  bool applyTest(const std::string &name, const Value &subject, CallArgs &args, SourcePos pos);
  /// The items a for loop sees: list items, dict keys, string characters.
  List iterate(const Value &v, SourcePos pos);
  CallArgs evalArgs(const Arguments &args, SourcePos pos);
  /// Counts one unit of work; throws when over the budget.
  void step(SourcePos pos);
  /// Throws when a string of `bytes` would exceed the output limit.
  void checkSize(size_t bytes, SourcePos pos) const;
  /// Throws when a list of `items` would exceed the list limit.
  void checkListSize(size_t items, SourcePos pos) const;
  /// Throws when rendering has used more machine stack than allowed.
  void checkStack(SourcePos pos) const;

  int &callDepth() { return callDepth_; }
  const RenderLimits &limits() const { return limits_; }
  std::optional<std::time_t> now() const { return now_; }

private:
  std::shared_ptr<Scope> scope_;
  std::string *out_;
  std::string root_;
  RenderLimits limits_;
  std::optional<std::time_t> now_;
  int64_t steps_ = 0;
  int callDepth_ = 0;
  uintptr_t stackBase_ = 0;
};

/// Binds a builtin's arguments to its parameter names, as Python would.
class ArgBinder {
public:
  ArgBinder(const std::string &fn, CallArgs &args, std::initializer_list<const char *> params);
  /// The argument for parameter `i`, or nullptr when not given.
  const Value *get(size_t i) const { return bound_[i]; }
  Value getOr(size_t i, Value def) const { return bound_[i] ? *bound_[i] : std::move(def); }
  bool has(size_t i) const { return bound_[i] != nullptr; }
  const std::string &fn() const { return fn_; }

private:
  std::string fn_;
  std::vector<const Value *> bound_;
};

/// Converts an argument, naming the function in the error.
int64_t argInt(const ArgBinder &b, size_t i, int64_t def);
bool argBool(const ArgBinder &b, size_t i, bool def);
std::string argString(const ArgBinder &b, size_t i, const std::string &def);

// Builtins (JinjaFilters.cpp, JinjaTests.cpp, JinjaMethods.cpp, JinjaGlobals.cpp).
using FilterFn = Value (*)(Interpreter &, const Value &, CallArgs &);
using TestFn = bool (*)(Interpreter &, const Value &, CallArgs &);
FilterFn findFilter(const std::string &name);
TestFn findTest(const std::string &name);
/// A bound method of a str, dict or list (nullopt when there is none).
std::optional<Value> findMethod(const Value &obj, const std::string &name);
/// range, namespace, dict, raise_exception, strftime_now.
void addGlobals(Dict &globals);

/// Python's slice semantics on list, tuple or str.
Value sliceValue(const Value &v, std::optional<int64_t> start, std::optional<int64_t> stop,
                 std::optional<int64_t> step);
/// Dotted attribute path ("a.b.0") as the map/sort/selectattr filters take it.
Value getAttrPath(Interpreter &in, const Value &v, const std::string &path, SourcePos pos);

} // namespace qlc::chat::jinja

#endif // QLC_CHAT_JINJAINTERPRETER_H
