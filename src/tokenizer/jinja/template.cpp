#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/jinja.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace moe::jinja {

TemplateError::TemplateError(int line, const std::string& message)
    : moe::Error("line " + std::to_string(line) + ": " + message), line_(line) {}

Template::Template(std::string source) : program_(std::make_unique<Program>(parse(tokenize(source)))) {}
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
