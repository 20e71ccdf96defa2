//===- JinjaParser.cpp - Jinja2 tokens to a syntax tree -------------------===//
//
// Follows jinja2.parser.Parser: the same precedence (condexpr < or < and < not <
// compare < + - < ~ < * / // % < ** < unary < filters/tests/calls < postfix) and the
// same statement forms, less template inheritance, includes, imports and call blocks.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaParser.h"

#include <set>

namespace qlc::chat::jinja {

namespace {

constexpr int kMaxNesting = 200;

template <typename T>
std::unique_ptr<T> makeNode(SourcePos pos) {
  auto n = std::make_unique<T>();
  n->pos = pos;
  return n;
}

class Parser {
public:
  explicit Parser(const std::vector<Token> &toks) : toks_(toks) {}

  Body parseAll() {
    std::string end;
    Body body = parseBody({}, end);
    if (cur().kind != TokKind::Eof)
      fail("unexpected token");
    return body;
  }

private:
  // ---- token helpers ----
  const Token &cur() const { return toks_[i_]; }
  const Token &peek(size_t k = 1) const {
    return toks_[i_ + k < toks_.size() ? i_ + k : toks_.size() - 1];
  }
  void advance() {
    if (i_ + 1 < toks_.size())
      ++i_;
  }
  [[noreturn]] void fail(const std::string &msg) const { throw Error(msg + describe(cur()), cur().pos); }
  [[noreturn]] void failAt(const std::string &msg, SourcePos pos) const { throw Error(msg, pos); }

  static std::string describe(const Token &t) {
    switch (t.kind) {
    case TokKind::Eof:
      return " (at end of template)";
    case TokKind::Name:
    case TokKind::Op:
      return " '" + t.text + "'";
    case TokKind::BlockEnd:
      return " (end of block tag)";
    case TokKind::VarEnd:
      return " (end of print statement)";
    default:
      return "";
    }
  }

  bool isOp(const char *op) const { return cur().kind == TokKind::Op && cur().text == op; }
  bool isName(const char *name) const { return cur().kind == TokKind::Name && cur().text == name; }
  bool skipOp(const char *op) {
    if (!isOp(op))
      return false;
    advance();
    return true;
  }
  bool skipName(const char *name) {
    if (!isName(name))
      return false;
    advance();
    return true;
  }
  void expectOp(const char *op) {
    if (!skipOp(op))
      fail(std::string("expected '") + op + "', got");
  }
  std::string expectName() {
    if (cur().kind != TokKind::Name)
      fail("expected a name, got");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expectBlockEnd() {
    if (cur().kind != TokKind::BlockEnd)
      fail("expected end of block tag, got");
    advance();
  }

  struct DepthGuard {
    Parser &p;
    explicit DepthGuard(Parser &p) : p(p) {
      if (++p.depth_ > kMaxNesting)
        p.fail("template nested too deeply near");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // ---- statements ----

  /// Parses until a block tag named in `ends` (left unconsumed after its name, whose
  /// text goes to `endName`) or the end of input (only when `ends` is empty).
  Body parseBody(const std::set<std::string> &ends, std::string &endName) {
    DepthGuard g(*this);
    Body body;
    while (true) {
      const Token &t = cur();
      if (t.kind == TokKind::Eof) {
        if (!ends.empty()) {
          std::string closing = *ends.rbegin(); // the end* tag sorts last
          fail("unexpected end of template, expected '" + closing + "'");
        }
        return body;
      }
      if (t.kind == TokKind::Data) {
        auto s = makeNode<TextStmt>(t.pos);
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.kind == TokKind::VarBegin) {
        advance();
        auto s = makeNode<PrintStmt>(t.pos);
        s->expr = parseTuple(true);
        if (cur().kind != TokKind::VarEnd)
          fail("expected end of print statement, got");
        advance();
        body.push_back(std::move(s));
      } else if (t.kind == TokKind::BlockBegin) {
        const Token &name = peek();
        if (name.kind == TokKind::Name && ends.count(name.text)) {
          advance();
          endName = name.text;
          advance();
          return body;
        }
        advance();
        body.push_back(parseStatement());
      } else {
        fail("unexpected token");
      }
    }
  }

  StmtPtr parseStatement() {
    if (cur().kind != TokKind::Name)
      fail("expected a tag name, got");
    std::string tag = cur().text;
    SourcePos pos = cur().pos;
    advance();
    if (tag == "if")
      return parseIf(pos);
    if (tag == "for")
      return parseFor(pos);
    if (tag == "set")
      return parseSet(pos);
    if (tag == "macro")
      return parseMacro(pos);
    if (tag == "with")
      return parseWith(pos);
    if (tag == "filter")
      return parseFilterBlock(pos);
    if (tag == "generation")
      return parseGeneration(pos);
    if (tag == "break" || tag == "continue") {
      if (loopDepth_ == 0)
        failAt("'" + tag + "' outside of a loop", pos);
      auto s = makeNode<LoopControlStmt>(pos);
      s->isBreak = tag == "break";
      expectBlockEnd();
      return s;
    }
    static const std::set<std::string> known = {"block", "extends", "include", "import", "from",
                                                "call", "do", "autoescape", "trans"};
    if (known.count(tag))
      failAt("the '" + tag + "' tag is not supported in chat templates", pos);
    failAt("encountered unknown tag '" + tag + "'", pos);
  }

  StmtPtr parseIf(SourcePos pos) {
    auto s = makeNode<IfStmt>(pos);
    while (true) {
      ExprPtr test = parseTuple(false);
      expectBlockEnd();
      std::string end;
      Body body = parseBody({"elif", "else", "endif"}, end);
      s->branches.emplace_back(std::move(test), std::move(body));
      if (end == "elif")
        continue;
      if (end == "else") {
        expectBlockEnd();
        s->otherwise = parseBody({"endif"}, end);
      }
      expectBlockEnd();
      return s;
    }
  }

  AssignTarget parseAssignTarget(bool allowAttr) {
    AssignTarget t;
    t.pos = cur().pos;
    bool paren = skipOp("(");
    t.names.push_back(expectName());
    if (allowAttr && !paren && isOp(".")) {
      advance();
      t.attr = expectName();
      return t;
    }
    while (skipOp(",")) {
      t.unpack = true;
      if (cur().kind != TokKind::Name)
        break;
      t.names.push_back(expectName());
    }
    if (paren) {
      t.unpack = true;
      expectOp(")");
    }
    return t;
  }

  StmtPtr parseFor(SourcePos pos) {
    auto s = makeNode<ForStmt>(pos);
    s->target = parseAssignTarget(false);
    if (!skipName("in"))
      fail("expected 'in', got");
    s->iterable = parseTuple(false);
    if (skipName("if"))
      s->filter = parseExpression(true);
    if (isName("recursive"))
      fail("recursive loops are not supported:");
    expectBlockEnd();
    std::string end;
    ++loopDepth_;
    s->body = parseBody({"else", "endfor"}, end);
    --loopDepth_;
    if (end == "else") {
      expectBlockEnd();
      s->otherwise = parseBody({"endfor"}, end);
    }
    expectBlockEnd();
    return s;
  }

  std::vector<FilterCall> parseFilterChain(bool leadingPipe) {
    std::vector<FilterCall> out;
    bool first = !leadingPipe;
    while (first || skipOp("|")) {
      first = false;
      out.push_back(parseFilterCall());
    }
    return out;
  }

  StmtPtr parseSet(SourcePos pos) {
    auto s = makeNode<SetStmt>(pos);
    s->target = parseAssignTarget(true);
    if (skipOp("=")) {
      s->value = parseTuple(true);
      expectBlockEnd();
      return s;
    }
    if (s->target.unpack || !s->target.attr.empty())
      fail("expected '=', got");
    s->block = true;
    s->filters = parseFilterChain(true);
    expectBlockEnd();
    std::string end;
    int saved = loopDepth_;
    loopDepth_ = 0;
    s->body = parseBody({"endset"}, end);
    loopDepth_ = saved;
    expectBlockEnd();
    return s;
  }

  StmtPtr parseMacro(SourcePos pos) {
    auto s = makeNode<MacroStmt>(pos);
    s->name = expectName();
    expectOp("(");
    while (!isOp(")")) {
      if (!s->params.empty())
        expectOp(",");
      if (isOp(")"))
        break;
      s->params.push_back(expectName());
      s->defaults.push_back(skipOp("=") ? parseExpression(true) : nullptr);
    }
    expectOp(")");
    expectBlockEnd();
    std::string end;
    int saved = loopDepth_;
    loopDepth_ = 0;
    s->body = std::make_shared<Body>(parseBody({"endmacro"}, end));
    loopDepth_ = saved;
    if (cur().kind == TokKind::Name && cur().text == s->name)
      advance();
    expectBlockEnd();
    return s;
  }

  StmtPtr parseWith(SourcePos pos) {
    auto s = makeNode<WithStmt>(pos);
    while (cur().kind != TokKind::BlockEnd) {
      if (!s->assigns.empty())
        expectOp(",");
      std::string name = expectName();
      expectOp("=");
      s->assigns.emplace_back(name, parseExpression(true));
    }
    expectBlockEnd();
    std::string end;
    s->body = parseBody({"endwith"}, end);
    expectBlockEnd();
    return s;
  }

  StmtPtr parseFilterBlock(SourcePos pos) {
    auto s = makeNode<FilterBlockStmt>(pos);
    s->filters = parseFilterChain(false);
    expectBlockEnd();
    std::string end;
    int saved = loopDepth_;
    loopDepth_ = 0;
    s->body = parseBody({"endfilter"}, end);
    loopDepth_ = saved;
    expectBlockEnd();
    return s;
  }

  StmtPtr parseGeneration(SourcePos pos) {
    auto s = makeNode<ScopeStmt>(pos);
    expectBlockEnd();
    std::string end;
    int saved = loopDepth_;
    loopDepth_ = 0;
    s->body = parseBody({"endgeneration"}, end);
    loopDepth_ = saved;
    expectBlockEnd();
    return s;
  }

  // ---- expressions ----

  bool atTupleEnd() const {
    const Token &t = cur();
    return t.kind == TokKind::VarEnd || t.kind == TokKind::BlockEnd || t.kind == TokKind::Eof ||
           (t.kind == TokKind::Op && t.text == ")") ||
           (t.kind == TokKind::Name && (t.text == "in" || t.text == "if" || t.text == "recursive"));
  }

  /// An expression or an implicit tuple `a, b`.
  ExprPtr parseTuple(bool withCondExpr) {
    SourcePos pos = cur().pos;
    ExprPtr first = parseExpression(withCondExpr);
    if (!isOp(","))
      return first;
    auto t = makeNode<ListExpr>(pos);
    t->tuple = true;
    t->items.push_back(std::move(first));
    while (skipOp(",")) {
      if (atTupleEnd())
        break;
      t->items.push_back(parseExpression(withCondExpr));
    }
    return t;
  }

  ExprPtr parseExpression(bool withCondExpr) {
    DepthGuard g(*this);
    return withCondExpr ? parseCondExpr() : parseOr();
  }

  ExprPtr parseCondExpr() {
    SourcePos pos = cur().pos;
    ExprPtr expr = parseOr();
    while (skipName("if")) {
      auto c = makeNode<CondExpr>(pos);
      c->then = std::move(expr);
      c->test = parseOr();
      if (skipName("else"))
        c->otherwise = parseCondExpr();
      expr = std::move(c);
      pos = cur().pos;
    }
    return expr;
  }

  ExprPtr parseOr() {
    ExprPtr lhs = parseAnd();
    while (isName("or")) {
      auto n = makeNode<LogicalExpr>(cur().pos);
      advance();
      n->lhs = std::move(lhs);
      n->rhs = parseAnd();
      lhs = std::move(n);
    }
    return lhs;
  }

  ExprPtr parseAnd() {
    ExprPtr lhs = parseNot();
    while (isName("and")) {
      auto n = makeNode<LogicalExpr>(cur().pos);
      advance();
      n->isAnd = true;
      n->lhs = std::move(lhs);
      n->rhs = parseNot();
      lhs = std::move(n);
    }
    return lhs;
  }

  ExprPtr parseNot() {
    if (isName("not")) {
      DepthGuard g(*this);
      auto n = makeNode<UnaryExpr>(cur().pos);
      advance();
      n->op = "not";
      n->operand = parseNot();
      return n;
    }
    return parseCompare();
  }

  ExprPtr parseCompare() {
    SourcePos pos = cur().pos;
    ExprPtr first = parseMath1();
    std::unique_ptr<CompareExpr> cmp;
    while (true) {
      std::string op;
      if (cur().kind == TokKind::Op && (cur().text == "==" || cur().text == "!=" ||
                                        cur().text == "<" || cur().text == ">" ||
                                        cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (isName("in")) {
        op = "in";
        advance();
      } else if (isName("not") && peek().kind == TokKind::Name && peek().text == "in") {
        op = "notin";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = makeNode<CompareExpr>(pos);
        cmp->first = std::move(first);
      }
      cmp->rest.emplace_back(op, parseMath1());
    }
    if (cmp)
      return cmp;
    return first;
  }

  ExprPtr binary(const std::string &op, ExprPtr lhs, ExprPtr rhs, SourcePos pos) {
    auto n = makeNode<BinaryExpr>(pos);
    n->op = op;
    n->lhs = std::move(lhs);
    n->rhs = std::move(rhs);
    return n;
  }

  ExprPtr parseMath1() {
    ExprPtr lhs = parseConcat();
    while (isOp("+") || isOp("-")) {
      std::string op = cur().text;
      SourcePos pos = cur().pos;
      advance();
      lhs = binary(op, std::move(lhs), parseConcat(), pos);
    }
    return lhs;
  }

  ExprPtr parseConcat() {
    ExprPtr lhs = parseMath2();
    while (isOp("~")) {
      SourcePos pos = cur().pos;
      advance();
      lhs = binary("~", std::move(lhs), parseMath2(), pos);
    }
    return lhs;
  }

  ExprPtr parseMath2() {
    ExprPtr lhs = parsePow();
    while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
      std::string op = cur().text;
      SourcePos pos = cur().pos;
      advance();
      lhs = binary(op, std::move(lhs), parsePow(), pos);
    }
    return lhs;
  }

  ExprPtr parsePow() {
    ExprPtr lhs = parseUnary(true);
    while (isOp("**")) {
      SourcePos pos = cur().pos;
      advance();
      lhs = binary("**", std::move(lhs), parseUnary(true), pos);
    }
    return lhs;
  }

  ExprPtr parseUnary(bool withFilter) {
    DepthGuard g(*this);
    ExprPtr node;
    if (isOp("-") || isOp("+")) {
      auto n = makeNode<UnaryExpr>(cur().pos);
      n->op = cur().text;
      advance();
      n->operand = parseUnary(false);
      node = std::move(n);
    } else {
      node = parsePrimary();
    }
    node = parsePostfix(std::move(node));
    return withFilter ? parseFilterExpr(std::move(node)) : std::move(node);
  }

  ExprPtr parsePrimary() {
    const Token &t = cur();
    SourcePos pos = t.pos;
    switch (t.kind) {
    case TokKind::Name: {
      static const std::set<std::string> trues = {"true", "True"}, falses = {"false", "False"},
                                         nones = {"none", "None"};
      auto lit = makeNode<Literal>(pos);
      if (trues.count(t.text))
        lit->value = Value(true);
      else if (falses.count(t.text))
        lit->value = Value(false);
      else if (nones.count(t.text))
        lit->value = Value::none();
      else {
        auto n = makeNode<NameExpr>(pos);
        n->name = t.text;
        advance();
        return n;
      }
      advance();
      return lit;
    }
    case TokKind::String: {
      auto lit = makeNode<Literal>(pos);
      std::string s;
      while (cur().kind == TokKind::String) {
        s += cur().text;
        advance();
      }
      lit->value = Value(std::move(s));
      return lit;
    }
    case TokKind::Int:
    case TokKind::Float: {
      auto lit = makeNode<Literal>(pos);
      lit->value = t.kind == TokKind::Int ? Value(t.intValue) : Value(t.floatValue);
      advance();
      return lit;
    }
    case TokKind::Op:
      if (t.text == "(") {
        advance();
        if (skipOp(")")) {
          auto tup = makeNode<ListExpr>(pos);
          tup->tuple = true;
          return tup;
        }
        ExprPtr e = parseExpression(true);
        if (isOp(",")) {
          auto tup = makeNode<ListExpr>(pos);
          tup->tuple = true;
          tup->items.push_back(std::move(e));
          while (skipOp(",") && !isOp(")"))
            tup->items.push_back(parseExpression(true));
          e = std::move(tup);
        }
        expectOp(")");
        return e;
      }
      if (t.text == "[") {
        advance();
        auto list = makeNode<ListExpr>(pos);
        while (!isOp("]")) {
          if (!list->items.empty())
            expectOp(",");
          if (isOp("]"))
            break;
          list->items.push_back(parseExpression(true));
        }
        expectOp("]");
        return list;
      }
      if (t.text == "{") {
        advance();
        auto dict = makeNode<DictExpr>(pos);
        while (!isOp("}")) {
          if (!dict->entries.empty())
            expectOp(",");
          if (isOp("}"))
            break;
          ExprPtr key = parseExpression(true);
          expectOp(":");
          dict->entries.emplace_back(std::move(key), parseExpression(true));
        }
        expectOp("}");
        return dict;
      }
      break;
    default:
      break;
    }
    fail("unexpected");
  }

  ExprPtr parsePostfix(ExprPtr node) {
    while (true) {
      SourcePos pos = cur().pos;
      if (isOp(".")) {
        advance();
        if (cur().kind == TokKind::Name) {
          auto a = makeNode<AttrExpr>(pos);
          a->object = std::move(node);
          a->name = cur().text;
          advance();
          node = std::move(a);
        } else if (cur().kind == TokKind::Int) {
          auto it = makeNode<ItemExpr>(pos);
          it->object = std::move(node);
          auto lit = makeNode<Literal>(cur().pos);
          lit->value = Value(cur().intValue);
          it->index = std::move(lit);
          advance();
          node = std::move(it);
        } else {
          fail("expected a name after '.', got");
        }
      } else if (isOp("[")) {
        advance();
        node = parseSubscript(std::move(node), pos);
      } else if (isOp("(")) {
        node = parseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parseSubscript(ExprPtr object, SourcePos pos) {
    ExprPtr parts[3];
    int colons = 0;
    while (true) {
      if (isOp(":")) {
        if (++colons > 2)
          fail("unexpected");
        advance();
        continue;
      }
      if (isOp("]"))
        break;
      if (parts[colons])
        fail("expected ']', got");
      parts[colons] = parseExpression(true);
    }
    expectOp("]");
    if (colons == 0) {
      if (!parts[0])
        failAt("empty subscript", pos);
      auto it = makeNode<ItemExpr>(pos);
      it->object = std::move(object);
      it->index = std::move(parts[0]);
      return it;
    }
    auto s = makeNode<SliceExpr>(pos);
    s->object = std::move(object);
    s->start = std::move(parts[0]);
    s->stop = std::move(parts[1]);
    s->step = std::move(parts[2]);
    return s;
  }

  Arguments parseArgs() {
    Arguments args;
    expectOp("(");
    bool first = true;
    while (!isOp(")")) {
      if (!first) {
        expectOp(",");
        if (isOp(")"))
          break;
      }
      first = false;
      if (isOp("*") || isOp("**"))
        fail("*args and **kwargs in calls are not supported:");
      if (cur().kind == TokKind::Name && peek().kind == TokKind::Op && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        args.keyword.emplace_back(key, parseExpression(true));
      } else {
        if (!args.keyword.empty())
          fail("positional argument after keyword argument:");
        args.positional.push_back(parseExpression(true));
      }
    }
    expectOp(")");
    return args;
  }

  ExprPtr parseCall(ExprPtr callee) {
    auto c = makeNode<CallExpr>(callee->pos);
    c->callee = std::move(callee);
    c->args = parseArgs();
    return c;
  }

  std::string parseDottedName() {
    std::string name = expectName();
    while (isOp(".") && peek().kind == TokKind::Name) {
      advance();
      name += "." + expectName();
    }
    return name;
  }

  FilterCall parseFilterCall() {
    FilterCall f;
    f.pos = cur().pos;
    f.name = parseDottedName();
    if (isOp("("))
      f.args = parseArgs();
    return f;
  }

  ExprPtr parseFilterExpr(ExprPtr node) {
    while (true) {
      if (isOp("|")) {
        advance();
        auto f = makeNode<FilterExpr>(cur().pos);
        f->subject = std::move(node);
        f->filter = parseFilterCall();
        node = std::move(f);
      } else if (isName("is")) {
        node = parseTest(std::move(node));
      } else if (isOp("(")) {
        node = parseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parseTest(ExprPtr subject) {
    auto t = makeNode<TestExpr>(cur().pos);
    advance(); // 'is'
    t->negated = skipName("not");
    t->name = parseDottedName();
    t->subject = std::move(subject);
    const Token &c = cur();
    if (isOp("(")) {
      t->args = parseArgs();
    } else if ((c.kind == TokKind::Name || c.kind == TokKind::String || c.kind == TokKind::Int ||
                c.kind == TokKind::Float || isOp("[") || isOp("{")) &&
               !(c.kind == TokKind::Name &&
                 (c.text == "else" || c.text == "or" || c.text == "and"))) {
      if (isName("is"))
        fail("cannot chain multiple tests with");
      ExprPtr arg = parsePostfix(parsePrimary());
      t->args.positional.push_back(std::move(arg));
    }
    return t;
  }

  const std::vector<Token> &toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loopDepth_ = 0;
};

} // namespace

Body parseTemplate(const std::vector<Token> &tokens) { return Parser(tokens).parseAll(); }

} // namespace qlc::chat::jinja
