// UTF-8 and the slice of Python's str semantics the template engine needs: Python indexes strings by code
// point and its whitespace, case and line-break rules are Unicode-aware, so we decode where they matter.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe::jinja::unicode {

// Decodes UTF-8; invalid bytes decode to themselves (U+0080..U+00FF) so nothing is lost or thrown.
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);
// Number of code points (Python len()).
size_t length(std::string_view s);

// str.isspace(): the set Python's str.strip()/split() and re's \s use.
bool is_space(char32_t c);
// Characters str.splitlines() breaks on (\r\n counts as one break, handled by the caller).
bool is_line_break(char32_t c);
// str.isprintable(), approximated without the full Unicode tables (see unicode.cpp).
bool is_printable(char32_t c);
bool is_alpha(char32_t c);
bool is_digit(char32_t c);  // str.isdigit() (decimal digits)
bool is_alnum(char32_t c);
bool is_word(char32_t c);   // re's \w: alphanumeric or underscore
bool is_upper(char32_t c);
bool is_lower(char32_t c);

// Full case mappings (ß upper-cases to "SS"); covers Latin, Greek, Cyrillic, Armenian and fullwidth Latin.
void append_upper(std::u32string& out, char32_t c);
void append_lower(std::u32string& out, char32_t c);
std::u32string to_upper(std::u32string_view s);
std::u32string to_lower(std::u32string_view s);
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);

}  // namespace moe::jinja::unicode
