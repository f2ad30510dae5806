// Splits template source into tokens the way Jinja2's lexer does with trim_blocks and lstrip_blocks on
// and keep_trailing_newline off: the whitespace rules decide every byte of the output, so they follow
// jinja2/lexer.py rule by rule (see lexer.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string text;  // Data/Name/String: the value (strings unescaped); Op: the operator
  int line = 1;
  int64_t ival = 0;  // Integer
  double fval = 0;   // Float
};

// Throws TemplateSyntaxError (with the line) on malformed input.
std::vector<Token> tokenize(const std::string& source);

}  // namespace moe::jinja
