#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <functional>
#include <initializer_list>

#include "tokenizer/jinja/jinja.h"

namespace moe::jinja {
namespace {

// How deep a template may nest (blocks in blocks, brackets in brackets, operator chains like a+b+c+...):
// the parser, the interpreter and the tree's destructor all recurse, so a template nested ~10,000 deep
// overflowed the stack. Jinja2 itself stops near 100 levels (Python's recursion limit); real templates use < 20.
constexpr int kMaxNesting = 256;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& toks) : t_(toks) {}

  Program run() {
    Program p;
    p.body = subparse({});
    return p;
  }

 private:
  // ---- token stream ----
  const Token& cur() const { return t_[i_]; }
  const Token& look() const { return t_[i_ + 1 < t_.size() ? i_ + 1 : i_]; }
  const Token& advance() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Eof: return "end of template";
      case Tok::BlockEnd: return "end of statement block";
      case Tok::VarEnd: return "end of print statement";
      case Tok::BlockBegin: return "begin of statement block";
      case Tok::VarBegin: return "begin of print statement";
      case Tok::Data: return "template data";
      default: return t.text;
    }
  }

  [[noreturn]] void fail(const std::string& msg, int line = 0) const {
    throw TemplateSyntaxError(line ? line : cur().line, msg);
  }

  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected token '") + op + "', got '" + describe(cur()) + "'");
  }
  void expect_name(const char* n) {
    if (!skip_name(n)) fail(std::string("expected token '") + n + "', got '" + describe(cur()) + "'");
  }
  std::string expect_identifier() {
    if (cur().type != Tok::Name) fail("expected token 'name', got '" + describe(cur()) + "'");
    return advance().text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) fail("expected token 'end of statement block', got '" + describe(cur()) + "'");
    advance();
  }

  // Counts the parser's own recursion (nested statements, brackets, unary operators).
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nesting_ > kMaxNesting) p.fail_too_deep();
    }
    ~Nest() { --p.nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };
  [[noreturn]] void fail_too_deep() const {
    fail("the template nests deeper than " + std::to_string(kMaxNesting) + " levels");
  }

  // Height of an expression tree, checked as each node is built: chains such as a+b+c+... or x|f|f|f... are
  // built in loops, not recursion, so only their height bounds what evaluating and freeing them recurses.
  ExprPtr sealed(ExprPtr e) {
    int h = 0;
    auto see = [&](const ExprPtr& c) {
      if (c) h = std::max(h, c->height);
    };
    for (const auto& c : e->children) see(c);
    for (const auto& c : e->args) see(c);
    for (const auto& kv : e->kwargs) see(kv.second);
    see(e->dyn_args);
    see(e->dyn_kwargs);
    e->height = h + 1;
    if (e->height > kMaxNesting) fail_too_deep();
    return e;
  }

  // ---- statements ----

  // Parses until a block whose first name is one of `end_tokens` (left as the current token).
  Body subparse(const std::vector<std::string>& end_tokens) {
    Body body;
    while (cur().type != Tok::Eof) {
      const Token& tok = cur();
      if (tok.type == Tok::Data) {
        auto s = std::make_unique<Stmt>(StmtKind::Text, tok.line);
        s->text = tok.text;
        body.push_back(std::move(s));
        advance();
      } else if (tok.type == Tok::VarBegin) {
        advance();
        auto s = std::make_unique<Stmt>(StmtKind::Print, cur().line);
        s->expr = parse_tuple(true);
        if (cur().type != Tok::VarEnd) fail("expected token 'end of print statement', got '" + describe(cur()) + "'");
        advance();
        body.push_back(std::move(s));
      } else if (tok.type == Tok::BlockBegin) {
        advance();
        if (cur().type == Tok::Name)
          for (const auto& e : end_tokens)
            if (cur().text == e) return body;
        body.push_back(parse_statement(end_tokens));
        expect_block_end();
      } else {
        fail("unexpected '" + describe(tok) + "'");
      }
    }
    return body;
  }

  Body parse_statements(const std::vector<std::string>& end_tokens, bool drop_needle) {
    skip_op(":");
    expect_block_end();
    Body body = subparse(end_tokens);
    if (cur().type == Tok::Eof) {
      std::string want;
      for (const auto& e : end_tokens) want += (want.empty() ? "'" : " or '") + e + "'";
      fail("Unexpected end of template. Jinja was looking for the following tags: " + want + ".");
    }
    if (drop_needle) advance();
    return body;
  }

  StmtPtr parse_statement(const std::vector<std::string>& end_tokens) {
    Nest nest(*this);
    if (cur().type != Tok::Name) fail("tag name expected");
    const std::string tag = cur().text;
    int line = cur().line;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") {
      advance();
      auto s = std::make_unique<Stmt>(StmtKind::Print, line);
      std::vector<ExprPtr> items;
      while (cur().type != Tok::BlockEnd) {
        if (!items.empty()) expect_op(",");
        items.push_back(parse_expression());
      }
      if (items.size() != 1) fail("unsupported: {% print %} with other than one expression", line);
      s->expr = std::move(items[0]);
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", line);
      advance();
      return std::make_unique<Stmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue, line);
    }
    if (tag == "generation") {  // transformers' AssistantTracker: renders its body like a call block
      advance();
      auto s = std::make_unique<Stmt>(StmtKind::Scope, line);
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = parse_statements({"endgeneration"}, true);
      loop_depth_ = saved;
      return s;
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" || tag == "from" ||
        tag == "autoescape")
      fail("unsupported: the {% " + tag + " %} tag", line);
    std::string msg = "Encountered unknown tag '" + tag + "'.";
    if (!end_tokens.empty()) {
      msg += " Jinja was looking for the following tags: ";
      for (size_t k = 0; k < end_tokens.size(); ++k) msg += (k ? " or '" : "'") + end_tokens[k] + "'";
      msg += ".";
    }
    fail(msg, line);
  }

  StmtPtr parse_for() {
    auto s = std::make_unique<Stmt>(StmtKind::For, advance().line);
    s->target = parse_assign_target(true, false, {"in"});
    expect_name("in");
    s->expr = parse_tuple(false, {"recursive"});
    if (skip_name("if")) s->filter = parse_expression();
    if (is_name("recursive")) fail("unsupported: recursive for loops");
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (advance().text == "else") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = std::make_unique<Stmt>(StmtKind::If, advance().line);
    while (true) {
      IfBranch br;
      br.test = parse_tuple(false);
      br.body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.push_back(std::move(br));
      std::string tok = advance().text;
      if (tok == "elif") continue;
      if (tok == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_set() {
    auto s = std::make_unique<Stmt>(StmtKind::Set, advance().line);
    s->target = parse_assign_target(true, true, {});
    if (skip_op("=")) {
      s->expr = parse_tuple(true);
      return s;
    }
    s->kind = StmtKind::SetBlock;
    if (is_op("|")) s->filter = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);  // compiled inline: break/continue reach an outer loop
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      s.params.push_back(expect_identifier());
      if (skip_op("=")) s.defaults.push_back(parse_expression());
      else if (!s.defaults.empty()) fail("non-default argument follows default argument");
    }
    expect_op(")");
  }

  // Which of the special names a macro body reads (Jinja2 passes them only when it does).
  static void scan_special(const Body& body, Stmt& m) {
    std::function<void(const Expr*)> ex = [&](const Expr* e) {
      if (!e) return;
      if (e->kind == ExprKind::Name) {
        m.uses_varargs |= e->name == "varargs";
        m.uses_kwargs |= e->name == "kwargs";
        m.uses_caller |= e->name == "caller";
      }
      for (const auto& c : e->children) ex(c.get());
      for (const auto& c : e->args) ex(c.get());
      for (const auto& kv : e->kwargs) ex(kv.second.get());
      ex(e->dyn_args.get());
      ex(e->dyn_kwargs.get());
    };
    std::function<void(const Body&)> st = [&](const Body& b) {
      for (const auto& s : b) {
        ex(s->expr.get());
        ex(s->filter.get());
        for (const auto& br : s->branches) {
          ex(br.test.get());
          st(br.body);
        }
        for (const auto& d : s->defaults) ex(d.get());
        for (const auto& a : s->assigns) ex(a.second.get());
        st(s->body);
        st(s->else_body);
      }
    };
    st(body);
    for (const auto& p : m.params) {
      if (p == "varargs") m.uses_varargs = false;
      if (p == "kwargs") m.uses_kwargs = false;
    }
  }

  StmtPtr parse_macro() {
    auto s = std::make_unique<Stmt>(StmtKind::Macro, advance().line);
    s->name = expect_identifier();
    parse_signature(*s);
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    scan_special(s->body, *s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = std::make_unique<Stmt>(StmtKind::CallBlock, advance().line);
    if (is_op("(")) parse_signature(*s);
    s->expr = parse_expression();
    if (s->expr->kind != ExprKind::Call) fail("expected call", s->line);
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved;
    scan_special(s->body, *s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = std::make_unique<Stmt>(StmtKind::FilterBlock, advance().line);
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = std::make_unique<Stmt>(StmtKind::With, advance().line);
    while (cur().type != Tok::BlockEnd) {
      if (!s->assigns.empty()) expect_op(",");
      Target t = parse_assign_target(true, false, {});
      expect_op("=");
      s->assigns.emplace_back(std::move(t), parse_expression());
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  Target parse_assign_target(bool with_tuple, bool with_namespace, const std::vector<std::string>& extra_end) {
    Target t;
    t.line = cur().line;
    if (with_namespace && look().type == Tok::Op && look().text == ".") {
      t.kind = Target::Kind::NsAttr;
      t.name = expect_identifier();
      advance();
      t.attr = expect_identifier();
      return t;
    }
    auto one = [&]() {
      Target n;
      n.line = cur().line;
      if (cur().type != Tok::Name) fail("can't assign to '" + describe(cur()) + "'");
      n.name = advance().text;
      if (n.name == "true" || n.name == "false" || n.name == "none" || n.name == "True" || n.name == "False" ||
          n.name == "None")
        fail("can't assign to 'const'");
      return n;
    };
    if (!with_tuple) return one();
    // parse_tuple(simplified=True): names separated by commas, optionally parenthesised.
    std::vector<Target> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      if (skip_op("(")) {
        Target inner = parse_assign_target(true, false, {});
        expect_op(")");
        items.push_back(std::move(inner));
      } else {
        items.push_back(one());
      }
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (items.empty()) fail("Expected an expression, got '" + describe(cur()) + "'");
      return std::move(items[0]);
    }
    t.kind = Target::Kind::Tuple;
    t.items = std::move(items);
    return t;
  }

  // ---- expressions ----

  // Jinja2 3.1 passes its extra end rules (`in`, `recursive`) to Token.test_any as one tuple, so they never
  // match; only the tag end or `)` ends a tuple. We keep that behaviour: `{% for k, in d %}` is an error.
  bool is_tuple_end(const std::vector<std::string>& /*extra_end*/) const {
    return cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || (cur().type == Tok::Op && cur().text == ")");
  }

  ExprPtr parse_tuple(bool with_condexpr, const std::vector<std::string>& extra_end = {}, bool explicit_parens = false) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(with_condexpr ? parse_expression() : parse_or());
      if (is_op(",")) is_tuple = true;
      else break;
      line = cur().line;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail("Expected an expression, got '" + describe(cur()) + "'");
    }
    auto e = std::make_unique<Expr>(ExprKind::Tuple, line);
    e->children = std::move(args);
    return sealed(std::move(e));
  }

  ExprPtr parse_expression() { return parse_condexpr(); }

  ExprPtr parse_condexpr() {
    int line = cur().line;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      auto e = std::make_unique<Expr>(ExprKind::CondExpr, line);
      e->children.push_back(parse_or());
      e->children.push_back(std::move(expr1));
      e->children.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      expr1 = sealed(std::move(e));
      line = cur().line;
    }
    return expr1;
  }

  ExprPtr binary_chain(ExprKind kind, const char* word, ExprPtr (Parser::*sub)()) {
    int line = cur().line;
    ExprPtr left = (this->*sub)();
    while (skip_name(word)) {
      auto e = std::make_unique<Expr>(kind, line);
      e->children.push_back(std::move(left));
      e->children.push_back((this->*sub)());
      left = sealed(std::move(e));
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_or() { return binary_chain(ExprKind::Or, "or", &Parser::parse_and); }
  ExprPtr parse_and() { return binary_chain(ExprKind::And, "and", &Parser::parse_not); }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this);
      auto e = std::make_unique<Expr>(ExprKind::Not, advance().line);
      e->children.push_back(parse_not());
      return sealed(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr expr = parse_math1();
    auto cmp = std::make_unique<Expr>(ExprKind::Compare, line);
    while (true) {
      static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
      std::string op;
      if (cur().type == Tok::Op)
        for (const char* o : kOps)
          if (cur().text == o) op = o;
      if (!op.empty()) {
        advance();
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && look().type == Tok::Name && look().text == "in") {
        advance();
        advance();
        op = "notin";
      } else {
        break;
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(parse_math1());
      line = cur().line;
    }
    if (cmp->ops.empty()) return expr;
    cmp->line = line;
    cmp->children.insert(cmp->children.begin(), std::move(expr));
    return sealed(std::move(cmp));
  }

  ExprPtr binary_ops(std::initializer_list<const char*> ops, ExprPtr (Parser::*sub)()) {
    int line = cur().line;
    ExprPtr left = (this->*sub)();
    while (true) {
      const char* found = nullptr;
      for (const char* o : ops)
        if (is_op(o)) found = o;
      if (!found) break;
      advance();
      auto e = std::make_unique<Expr>(ExprKind::Binary, line);
      e->name = found;
      e->children.push_back(std::move(left));
      e->children.push_back((this->*sub)());
      left = sealed(std::move(e));
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_math1() { return binary_ops({"+", "-"}, &Parser::parse_concat); }

  ExprPtr parse_concat() {
    int line = cur().line;
    std::vector<ExprPtr> args;
    args.push_back(parse_math2());
    while (skip_op("~")) args.push_back(parse_math2());
    if (args.size() == 1) return std::move(args[0]);
    auto e = std::make_unique<Expr>(ExprKind::Concat, line);
    e->children = std::move(args);
    return sealed(std::move(e));
  }

  ExprPtr parse_math2() { return binary_ops({"*", "/", "//", "%"}, &Parser::parse_pow); }
  ExprPtr parse_pow() { return binary_ops({"**"}, &Parser::parse_unary_filtered); }
  ExprPtr parse_unary_filtered() { return parse_unary(true); }

  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this);
    int line = cur().line;
    ExprPtr node;
    if (skip_op("-")) {
      node = std::make_unique<Expr>(ExprKind::Neg, line);
      node->children.push_back(parse_unary(false));
    } else if (skip_op("+")) {
      node = std::make_unique<Expr>(ExprKind::Pos, line);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = sealed(std::move(node));
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr constant(Value v, int line) {
    auto e = std::make_unique<Expr>(ExprKind::Const, line);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    int line = tok.line;
    if (tok.type == Tok::Name) {
      std::string n = advance().text;
      if (n == "true" || n == "True") return constant(Value::boolean(true), line);
      if (n == "false" || n == "False") return constant(Value::boolean(false), line);
      if (n == "none" || n == "None") return constant(Value::none(), line);
      auto e = std::make_unique<Expr>(ExprKind::Name, line);
      e->name = n;
      return e;
    }
    if (tok.type == Tok::String) {
      std::string s;
      while (cur().type == Tok::String) s += advance().text;  // adjacent literals concatenate
      return constant(Value::string(std::move(s)), line);
    }
    if (tok.type == Tok::Integer) return constant(Value::integer(advance().ival), line);
    if (tok.type == Tok::Float) return constant(Value::number(advance().fval), line);
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      advance();
      auto e = std::make_unique<Expr>(ExprKind::List, line);
      while (!is_op("]")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("]")) break;
        e->children.push_back(parse_expression());
      }
      expect_op("]");
      return sealed(std::move(e));
    }
    if (is_op("{")) {
      advance();
      auto e = std::make_unique<Expr>(ExprKind::Dict, line);
      while (!is_op("}")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("}")) break;
        e->children.push_back(parse_expression());
        expect_op(":");
        e->children.push_back(parse_expression());
      }
      expect_op("}");
      return sealed(std::move(e));
    }
    fail("unexpected '" + describe(tok) + "'");
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& tok = advance();
    int line = tok.line;
    if (tok.text == ".") {
      const Token& attr = advance();
      if (attr.type == Tok::Name) {
        auto e = std::make_unique<Expr>(ExprKind::Getattr, line);
        e->name = attr.text;
        e->children.push_back(std::move(node));
        return sealed(std::move(e));
      }
      if (attr.type != Tok::Integer) fail("expected name or number", attr.line);
      auto e = std::make_unique<Expr>(ExprKind::Getitem, line);
      e->children.push_back(std::move(node));
      e->children.push_back(constant(Value::integer(attr.ival), attr.line));
      return sealed(std::move(e));
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = std::make_unique<Expr>(ExprKind::Getitem, line);
    e->children.push_back(std::move(node));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      auto t = std::make_unique<Expr>(ExprKind::Tuple, line);
      t->children = std::move(args);
      e->children.push_back(sealed(std::move(t)));
    }
    return sealed(std::move(e));
  }

  ExprPtr parse_subscribed() {
    int line = cur().line;
    std::vector<ExprPtr> parts;
    if (skip_op(":")) {
      parts.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression();
      if (!skip_op(":")) return node;
      parts.push_back(std::move(node));
    }
    if (is_op(":")) parts.push_back(nullptr);
    else if (!is_op("]") && !is_op(",")) parts.push_back(parse_expression());
    else parts.push_back(nullptr);
    if (skip_op(":")) parts.push_back(!is_op("]") && !is_op(",") ? parse_expression() : nullptr);
    else parts.push_back(nullptr);
    auto e = std::make_unique<Expr>(ExprKind::Slice, line);
    e->children = std::move(parts);
    return sealed(std::move(e));
  }

  void parse_call_args(Expr& e) {
    int line = cur().line;
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression", line);
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (skip_op("*")) {
        ensure(!e.dyn_args && !e.dyn_kwargs);
        e.dyn_args = parse_expression();
      } else if (skip_op("**")) {
        ensure(!e.dyn_kwargs);
        e.dyn_kwargs = parse_expression();
      } else if (cur().type == Tok::Name && look().type == Tok::Op && look().text == "=") {
        ensure(!e.dyn_kwargs);
        std::string key = advance().text;
        advance();
        e.kwargs.emplace_back(key, parse_expression());
      } else {
        ensure(!e.dyn_args && !e.dyn_kwargs && e.kwargs.empty());
        e.args.push_back(parse_expression());
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = std::make_unique<Expr>(ExprKind::Call, cur().line);
    e->children.push_back(std::move(node));
    parse_call_args(*e);
    return sealed(std::move(e));
  }

  std::string dotted_name() {
    std::string name = expect_identifier();
    while (skip_op(".")) name += "." + expect_identifier();
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) advance();
      int line = cur().line;
      auto e = std::make_unique<Expr>(ExprKind::Filter, line);
      e->name = dotted_name();
      check_known(*e, is_known_filter(e->name), "filter");
      if (is_op("(")) parse_call_args(*e);
      e->children.push_back(std::move(node));
      node = sealed(std::move(e));
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    int line = advance().line;
    bool negated = skip_name("not");
    auto e = std::make_unique<Expr>(ExprKind::Test, line);
    e->name = dotted_name();
    check_known(*e, is_known_test(e->name), "test");
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Integer ||
                cur().type == Tok::Float || is_op("(") || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    e->children.push_back(std::move(node));
    if (!negated) return sealed(std::move(e));
    auto n = std::make_unique<Expr>(ExprKind::Not, line);
    n->children.push_back(std::move(e));
    return sealed(std::move(n));
  }

  static void check_known(Expr& e, bool known, const char*) { e.known = known; }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;
};

// Jinja2's compiler rejects an unknown filter or test unless it sits in an {% if %} or a conditional
// expression (a "soft frame"), where the error waits until the expression runs. Loops, macros and blocks
// open fresh frames that are not soft again.
void check_names(const Expr* e, bool soft) {
  if (!e) return;
  if ((e->kind == ExprKind::Filter || e->kind == ExprKind::Test) && !e->known && !soft)
    throw TemplateSyntaxError(e->line, std::string("No ") + (e->kind == ExprKind::Filter ? "filter" : "test") +
                                           " named '" + e->name + "'.");
  bool inner = soft || e->kind == ExprKind::CondExpr;
  for (const auto& c : e->children) check_names(c.get(), inner);
  for (const auto& c : e->args) check_names(c.get(), inner);
  for (const auto& kv : e->kwargs) check_names(kv.second.get(), inner);
  check_names(e->dyn_args.get(), inner);
  check_names(e->dyn_kwargs.get(), inner);
}

void check_names(const Body& body, bool soft) {
  for (const auto& s : body) {
    switch (s->kind) {
      case StmtKind::If:
        for (const auto& br : s->branches) {
          check_names(br.test.get(), true);
          check_names(br.body, true);
        }
        check_names(s->else_body, true);
        break;
      case StmtKind::For:
        check_names(s->expr.get(), soft);
        check_names(s->filter.get(), false);
        check_names(s->body, false);
        check_names(s->else_body, false);
        break;
      case StmtKind::Macro:
        for (const auto& d : s->defaults) check_names(d.get(), false);
        check_names(s->body, false);
        break;
      case StmtKind::With:
        for (const auto& a : s->assigns) check_names(a.second.get(), soft);
        check_names(s->body, false);
        break;
      default:
        check_names(s->expr.get(), s->kind == StmtKind::FilterBlock ? false : soft);
        check_names(s->filter.get(), false);
        for (const auto& d : s->defaults) check_names(d.get(), false);
        check_names(s->body, false);
    }
  }
}

}  // namespace

Program parse(const std::vector<Token>& tokens) {
  Program p = Parser(tokens).run();
  check_names(p.body, false);
  return p;
}

}  // namespace moe::jinja
