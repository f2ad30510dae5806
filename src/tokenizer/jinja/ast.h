// The parsed template: expression and statement trees, mirroring jinja2.nodes closely enough that the
// interpreter can follow Jinja2's evaluation order and scoping rules.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace moe::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  Const,     // value
  Name,      // name
  List,      // children
  Tuple,     // children
  Dict,      // children: key0, value0, key1, value1, ...
  Getattr,   // children[0].name
  Getitem,   // children[0][children[1]]
  Slice,     // start/stop/step in children[0..2], each may be null (only as a Getitem key)
  Call,      // children[0](args, kwargs, *dyn_args, **dyn_kwargs)
  Filter,    // children[0] | name(args, kwargs); children[0] is null inside {% filter %} blocks
  Test,      // children[0] is name(args, kwargs)
  Not,       // not children[0]
  Neg,       // -children[0]
  Pos,       // +children[0]
  Binary,    // children[0] name children[1] with name one of + - * / // % **
  And,       // children[0] and children[1]
  Or,        // children[0] or children[1]
  Concat,    // children joined with ~
  Compare,   // children[0] ops[0] children[1] ops[1] children[2] ... (Python chaining)
  CondExpr,  // children[1] if children[0] else children[2] (children[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::string> ops;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr dyn_args, dyn_kwargs;
  // Filter/Test: false when the name was unknown at parse time inside an {% if %} or conditional
  // expression, where Jinja2 defers the "no filter named ..." error until it is evaluated.
  bool known = true;
  int height = 1;  // 1 + the tallest child's height; the parser bounds it

  Expr(ExprKind k, int l) : kind(k), line(l) {}
};

// An assignment target: a name, a tuple of targets, or `ns.attr` (namespace attribute).
struct Target {
  enum class Kind { Name, Tuple, NsAttr } kind = Kind::Name;
  std::string name, attr;
  std::vector<Target> items;
  int line = 0;
};

enum class StmtKind {
  Text,         // text
  Print,        // {{ expr }}
  If,           // branches (if/elif), else_body
  For,          // for target in expr [if filter] ... body [else else_body]
  Set,          // set target = expr
  SetBlock,     // set target [| filter] ... body endset
  Macro,        // macro name(params=defaults) body
  CallBlock,    // call[(params)] expr ... body endcall: the body becomes `caller`
  FilterBlock,  // filter expr ... body endfilter (expr is a Filter chain whose innermost base is null)
  With,         // with targets = values ... body
  Scope,        // a body rendered in its own scope: {% generation %}
  Break,
  Continue,
};

struct IfBranch {
  ExprPtr test;
  Body body;
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  Target target;
  std::vector<IfBranch> branches;
  Body body, else_body;
  // Macro / CallBlock
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
  // With
  std::vector<std::pair<Target, ExprPtr>> assigns;
  // Print: the value Jinja2 computes while compiling when the expression needs nothing from the render
  // (nodes.Expr.as_const); there a slice goes through environment.getitem, so a failed one is Undefined.
  std::optional<Value> folded;

  Stmt(StmtKind k, int l) : kind(k), line(l) {}
};

struct Program {
  Body body;
};

}  // namespace moe::jinja
