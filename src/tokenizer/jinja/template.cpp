#include <algorithm>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/jinja.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace moe::jinja {

TemplateError::TemplateError(int line, const std::string& message)
    : moe::Error(line > 0 ? "line " + std::to_string(line) + ": " + message : message), line_(line) {}

namespace {

// compiler.has_safe_repr: the values Jinja2's optimizer may bake into the compiled template.
bool has_safe_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::None:
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float:
    case Kind::String: return true;
    case Kind::List:
      return !v.list_data().view && std::all_of(v.items().begin(), v.items().end(), has_safe_repr);
    case Kind::Dict:
      return std::all_of(v.dict().items().begin(), v.dict().items().end(),
                         [](const auto& kv) { return has_safe_repr(kv.first) && has_safe_repr(kv.second); });
    default: return false;
  }
}

// Names and calls always need the render; skipping such trees keeps compiling free of failed folds.
// `and`, `or` and `if` may be decided by their first operand alone, so only that one counts here.
bool needs_render(const Expr* e) {
  if (!e) return false;
  if (e->kind == ExprKind::Name || e->kind == ExprKind::Call) return true;
  if (e->kind == ExprKind::And || e->kind == ExprKind::Or || e->kind == ExprKind::CondExpr)
    return needs_render(e->children[0].get());
  auto any = [](const std::vector<ExprPtr>& v) {
    return std::any_of(v.begin(), v.end(), [](const ExprPtr& c) { return needs_render(c.get()); });
  };
  return any(e->children) || any(e->args) || needs_render(e->dyn_args.get()) || needs_render(e->dyn_kwargs.get()) ||
         std::any_of(e->kwargs.begin(), e->kwargs.end(), [](const auto& kv) { return needs_render(kv.second.get()); });
}

// jinja2.optimizer: bottom-up, every sub-expression whose value needs nothing from the render and has a
// safe repr becomes a constant. It matters where compile-time and render-time evaluation differ (slices).
void optimize(ExprPtr& e, Interpreter& interp) {
  if (!e) return;
  for (auto& c : e->children) optimize(c, interp);
  for (auto& c : e->args) optimize(c, interp);
  for (auto& kv : e->kwargs) optimize(kv.second, interp);
  optimize(e->dyn_args, interp);
  optimize(e->dyn_kwargs, interp);
  if (e->kind == ExprKind::Const || e->kind == ExprKind::Slice || needs_render(e.get())) return;
  if (auto v = interp.fold_constant(*e); v && has_safe_repr(*v)) {
    auto c = std::make_unique<Expr>(ExprKind::Const, e->line);
    c->value = std::move(*v);
    e = std::move(c);
  }
}

void optimize(Body& body, Interpreter& interp) {
  for (auto& s : body) {
    optimize(s->expr, interp);
    optimize(s->filter, interp);
    for (auto& br : s->branches) {
      optimize(br.test, interp);
      optimize(br.body, interp);
    }
    for (auto& d : s->defaults) optimize(d, interp);
    for (auto& a : s->assigns) optimize(a.second, interp);
    optimize(s->body, interp);
    optimize(s->else_body, interp);
    // Then the compiler evaluates a print's whole expression if it can, whatever the value.
    if (s->kind == StmtKind::Print && !needs_render(s->expr.get())) s->folded = interp.fold_constant(*s->expr);
  }
}

std::unique_ptr<Program> compile(const std::string& source) {
  auto program = std::make_unique<Program>(parse(tokenize(source)));
  Interpreter interp(*program, RenderOptions{});
  optimize(program->body, interp);
  return program;
}

}  // namespace

Template::Template(std::string source) : program_(compile(source)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  Interpreter interp(*program_, options);
  try {
    return interp.render(context);
  } catch (const Fault& f) {  // raised outside any template line (e.g. the context itself)
    throw TemplateRuntimeError(0, f.what());
  }
}

}  // namespace moe::jinja
