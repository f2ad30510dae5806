#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/jinja.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace moe::jinja {

TemplateError::TemplateError(int line, const std::string& message)
    : moe::Error(line > 0 ? "line " + std::to_string(line) + ": " + message : message), line_(line) {}

namespace {

void fold_prints(Body& body, Interpreter& interp) {
  for (auto& s : body) {
    if (s->kind == StmtKind::Print) s->folded = interp.fold_constant(*s->expr);
    for (auto& br : s->branches) fold_prints(br.body, interp);
    fold_prints(s->body, interp);
    fold_prints(s->else_body, interp);
  }
}

std::unique_ptr<Program> compile(const std::string& source) {
  auto program = std::make_unique<Program>(parse(tokenize(source)));
  Interpreter interp(*program, RenderOptions{});
  fold_prints(program->body, interp);
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
