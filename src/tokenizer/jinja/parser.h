// Recursive-descent parser with Jinja2's grammar and operator precedence (jinja2/parser.py).
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace moe::jinja {

// Throws TemplateSyntaxError naming the line.
Program parse(const std::vector<Token>& tokens);

// The names Jinja2's environment (as transformers configures it) knows; defined with their implementations.
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace moe::jinja
