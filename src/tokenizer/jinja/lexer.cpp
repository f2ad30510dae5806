#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>

#include "tokenizer/jinja/jinja.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja {
namespace {

[[noreturn]] void fail(int line, const std::string& msg) { throw TemplateSyntaxError(line, msg); }

// Decodes the code point at `pos` (UTF-8) and its byte length.
char32_t peek_cp(const std::string& s, size_t pos, size_t* len) {
  unsigned char b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  size_t n = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
  n = std::min(n, s.size() - pos);
  std::u32string cps = unicode::decode(std::string_view(s).substr(pos, n));
  *len = n;
  return cps.empty() ? b : cps[0];
}

// Python's re `\s*` from pos: returns the end of the whitespace run.
size_t skip_space(const std::string& s, size_t pos) {
  while (pos < s.size()) {
    size_t len;
    if (!unicode::is_space(peek_cp(s, pos, &len))) break;
    pos += len;
  }
  return pos;
}

// str.rstrip(): Unicode whitespace.
std::string rstrip(const std::string& s) {
  std::u32string cps = unicode::decode(s);
  size_t end = cps.size();
  while (end > 0 && unicode::is_space(cps[end - 1])) --end;
  return unicode::encode(cps.substr(0, end));
}

bool all_space(const std::string& s) {
  if (s.empty()) return false;
  for (char32_t c : unicode::decode(s))
    if (!unicode::is_space(c)) return false;
  return true;
}

int count_newlines(const std::string& s, size_t from, size_t to) {
  return static_cast<int>(std::count(s.begin() + static_cast<long>(from), s.begin() + static_cast<long>(to), '\n'));
}

bool starts_with(const std::string& s, size_t pos, const char* lit) {
  return s.compare(pos, std::char_traits<char>::length(lit), lit) == 0;
}

// Python's unicode-escape decoding of a string literal body.
std::string unescape(const std::string& body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    auto hex = [&](size_t digits) {
      uint32_t v = 0;
      for (size_t k = 1; k <= digits; ++k) {
        if (i + k >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[i + k])))
          fail(line, "truncated escape sequence in string literal");
        char h = body[i + k];
        v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
      }
      i += digits;
      return v;
    };
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': unicode::append_utf8(out, hex(2)); break;
      case 'u': unicode::append_utf8(out, hex(4)); break;
      case 'U': unicode::append_utf8(out, hex(8)); break;
      case 'N': fail(line, "unsupported: \\N{...} escape in string literal");
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            v = v * 8 + static_cast<uint32_t>(body[++i] - '0');
          unicode::append_utf8(out, v);
        } else {  // unknown escapes keep their backslash
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) {
      size_t p = find_tag(pos_);
      if (p == std::string::npos) {
        emit_data(s_.substr(pos_));
        line_ += count_newlines(s_, pos_, s_.size());
        break;
      }
      root_tag(p);
    }
    push(Tok::Eof, "");
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t p = s_.find('{', from); p != std::string::npos; p = s_.find('{', p + 1))
      if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
    return std::string::npos;
  }

  void push(Tok t, std::string text) {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    tok.line = line_;
    out_.push_back(std::move(tok));
  }

  void emit_data(std::string text) {
    if (!text.empty()) push(Tok::Data, std::move(text));
  }

  // The text before a tag, after the `-` / lstrip_blocks rules (OptionalLStrip in jinja2/lexer.py).
  std::string strip_before(std::string text, char sign, bool variable) const {
    if (sign == '-') return rstrip(text);
    if (sign != '+' && !variable) {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if ((l_pos > 0 || line_starting_) && all_space(text.substr(l_pos))) text.resize(l_pos);
    }
    return text;
  }

  // Matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at p; returns its end or npos.
  size_t match_raw_begin(size_t p) const {
    size_t i = p + 2;
    if (i < s_.size() && (s_[i] == '-' || s_[i] == '+')) ++i;
    i = skip_space(s_, i);
    if (!starts_with(s_, i, "raw")) return std::string::npos;
    i = skip_space(s_, i + 3);
    if (starts_with(s_, i, "-%}")) return skip_space(s_, i + 3);
    if (starts_with(s_, i, "%}")) return i + 2;
    return std::string::npos;
  }

  void root_tag(size_t p) {
    char kind = s_[p + 1];
    char sign = p + 2 < s_.size() && (s_[p + 2] == '-' || s_[p + 2] == '+') ? s_[p + 2] : 0;
    std::string text = s_.substr(pos_, p - pos_);
    int text_lines = count_newlines(s_, pos_, p);
    size_t raw_end = kind == '%' ? match_raw_begin(p) : std::string::npos;
    emit_data(strip_before(std::move(text), sign, kind == '{'));
    line_ += text_lines;
    if (raw_end != std::string::npos) {
      line_ += count_newlines(s_, p, raw_end);
      line_starting_ = s_[raw_end - 1] == '\n';
      pos_ = raw_end;
      raw_body();
      return;
    }
    pos_ = p + 2 + (sign ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') return comment();
    push(kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "");
    tag_body(kind == '{');
  }

  void raw_body() {
    for (size_t q = s_.find("{%", pos_); q != std::string::npos; q = s_.find("{%", q + 1)) {
      size_t i = q + 2;
      char sign = i < s_.size() && (s_[i] == '-' || s_[i] == '+') ? s_[i] : 0;
      if (sign) ++i;
      i = skip_space(s_, i);
      if (!starts_with(s_, i, "endraw")) continue;
      i = skip_space(s_, i + 6);
      size_t end;
      if (starts_with(s_, i, "+%}")) end = i + 3;
      else if (starts_with(s_, i, "-%}")) end = skip_space(s_, i + 3);
      else if (starts_with(s_, i, "%}")) end = i + 2 + (i + 2 < s_.size() && s_[i + 2] == '\n' ? 1 : 0);
      else continue;
      emit_data(strip_before(s_.substr(pos_, q - pos_), sign, false));
      line_ += count_newlines(s_, pos_, end);
      line_starting_ = s_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    fail(line_, "Missing end of raw directive");
  }

  void comment() {
    for (size_t q = pos_; q < s_.size(); ++q) {
      size_t end;
      if (starts_with(s_, q, "+#}")) end = q + 3;
      else if (starts_with(s_, q, "-#}")) end = skip_space(s_, q + 3);
      else if (starts_with(s_, q, "#}")) end = q + 2 + (q + 2 < s_.size() && s_[q + 2] == '\n' ? 1 : 0);
      else continue;
      line_ += count_newlines(s_, pos_, end);
      line_starting_ = s_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    fail(line_, "Missing end of comment tag");
  }

  // The tag end, when the brackets are balanced: returns its end or npos.
  size_t match_end(bool variable) const {
    if (!balance_.empty()) return std::string::npos;
    if (variable) {
      if (starts_with(s_, pos_, "-}}")) return skip_space(s_, pos_ + 3);
      if (starts_with(s_, pos_, "}}")) return pos_ + 2;
      return std::string::npos;
    }
    if (starts_with(s_, pos_, "+%}")) return pos_ + 3;
    if (starts_with(s_, pos_, "-%}")) return skip_space(s_, pos_ + 3);
    if (starts_with(s_, pos_, "%}")) return pos_ + 2 + (pos_ + 2 < s_.size() && s_[pos_ + 2] == '\n' ? 1 : 0);
    return std::string::npos;
  }

  void tag_body(bool variable) {
    while (pos_ < s_.size()) {
      size_t end = match_end(variable);
      if (end != std::string::npos) {
        push(variable ? Tok::VarEnd : Tok::BlockEnd, "");
        line_ += count_newlines(s_, pos_, end);
        line_starting_ = s_[end - 1] == '\n';
        pos_ = end;
        return;
      }
      size_t ws = skip_space(s_, pos_);
      if (ws > pos_) {
        line_ += count_newlines(s_, pos_, ws);
        line_starting_ = s_[ws - 1] == '\n';
        pos_ = ws;
        continue;
      }
      line_starting_ = false;
      if (lex_number() || lex_name() || lex_string() || lex_operator()) continue;
      fail(line_, "unexpected char '" + s_.substr(pos_, 1) + "' at " + std::to_string(pos_));
    }
  }

  // Digits with single underscores between them ((\d+_)*\d+); returns the end or npos.
  size_t digits(size_t i) const {
    if (i >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i]))) return std::string::npos;
    while (true) {
      while (i < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i]))) ++i;
      if (i + 1 < s_.size() && s_[i] == '_' && std::isdigit(static_cast<unsigned char>(s_[i + 1]))) ++i;
      else return i;
    }
  }

  size_t exponent(size_t i) const {
    if (i >= s_.size() || (s_[i] != 'e' && s_[i] != 'E')) return std::string::npos;
    ++i;
    if (i < s_.size() && (s_[i] == '+' || s_[i] == '-')) ++i;
    return digits(i);
  }

  bool lex_number() {
    if (!std::isdigit(static_cast<unsigned char>(s_[pos_]))) return false;
    auto clean = [](std::string t) {
      t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
      return t;
    };
    if (pos_ == 0 || s_[pos_ - 1] != '.') {  // float_re's (?<!\.)
      size_t int_end = digits(pos_);
      size_t end = std::string::npos;
      if (int_end < s_.size() && s_[int_end] == '.') {
        size_t frac = digits(int_end + 1);
        if (frac != std::string::npos) {
          size_t ex = exponent(frac);
          end = ex != std::string::npos ? ex : frac;
        }
      }
      if (end == std::string::npos) end = exponent(int_end);
      if (end != std::string::npos) {
        Token t;
        t.type = Tok::Float;
        t.text = s_.substr(pos_, end - pos_);
        // Python's float(): out of range is inf (or 0 when too small), never an error. strtod gives those.
        t.fval = std::strtod(clean(t.text).c_str(), nullptr);
        t.line = line_;
        out_.push_back(std::move(t));
        pos_ = end;
        return true;
      }
    }
    size_t end = pos_;
    int base = 10;
    char p1 = pos_ + 1 < s_.size() ? static_cast<char>(s_[pos_ + 1] | 0x20) : 0;
    auto based = [&](int b, auto ok) {
      size_t i = pos_ + 2;
      size_t last = std::string::npos;
      while (i < s_.size()) {
        size_t j = i + (s_[i] == '_' ? 1 : 0);
        if (j < s_.size() && ok(s_[j])) last = i = j + 1;
        else break;
      }
      if (last != std::string::npos) end = last, base = b;
    };
    if (s_[pos_] == '0' && p1 == 'b') based(2, [](char c) { return c == '0' || c == '1'; });
    else if (s_[pos_] == '0' && p1 == 'o') based(8, [](char c) { return c >= '0' && c <= '7'; });
    else if (s_[pos_] == '0' && p1 == 'x') based(16, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
    if (end == pos_) {
      if (s_[pos_] == '0') {  // 0(_?0)*
        end = pos_ + 1;
        while (end < s_.size() && (s_[end] == '0' || (s_[end] == '_' && end + 1 < s_.size() && s_[end + 1] == '0')))
          end += s_[end] == '_' ? 2 : 1;
      } else {
        end = digits(pos_);
      }
    }
    Token t;
    t.type = Tok::Integer;
    t.text = s_.substr(pos_, end - pos_);
    std::string digits_only = clean(base == 10 ? t.text : t.text.substr(2));
    uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(digits_only.data(), digits_only.data() + digits_only.size(), v, base);
    if (ec != std::errc() || ptr != digits_only.data() + digits_only.size() || v > INT64_MAX)
      fail(line_, "unsupported: integer literal " + t.text + " does not fit in a signed 64-bit integer");
    t.ival = static_cast<int64_t>(v);
    t.line = line_;
    out_.push_back(std::move(t));
    pos_ = end;
    return true;
  }

  bool lex_name() {
    size_t i = pos_, len;
    while (i < s_.size()) {
      char32_t c = peek_cp(s_, i, &len);
      if (!(c == '_' || unicode::is_alnum(c))) break;
      i += len;
    }
    if (i == pos_) return false;
    push(Tok::Name, s_.substr(pos_, i - pos_));
    pos_ = i;
    return true;
  }

  bool lex_string() {
    char q = s_[pos_];
    if (q != '\'' && q != '"') return false;
    size_t i = pos_ + 1;
    while (i < s_.size() && s_[i] != q) i += s_[i] == '\\' ? 2 : 1;
    if (i >= s_.size()) fail(line_, "unexpected char '" + std::string(1, q) + "' at " + std::to_string(pos_));
    push(Tok::String, unescape(s_.substr(pos_ + 1, i - pos_ - 1), line_));
    line_ += count_newlines(s_, pos_, i);
    pos_ = i + 1;
    return true;
  }

  bool lex_operator() {
    static const char* kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo)
      if (starts_with(s_, pos_, op)) {
        push(Tok::Op, op);
        pos_ += 2;
        return true;
      }
    char c = s_[pos_];
    if (std::string("+-/*%~[](){}><=.:|,;").find(c) == std::string::npos) return false;
    if (c == '{' || c == '(' || c == '[') balance_.push_back(c == '{' ? '}' : c == '(' ? ')' : ']');
    if (c == '}' || c == ')' || c == ']') {
      if (balance_.empty()) fail(line_, std::string("unexpected '") + c + "'");
      if (balance_.back() != c) fail(line_, std::string("unexpected '") + c + "', expected '" + balance_.back() + "'");
      balance_.pop_back();
    }
    push(Tok::Op, std::string(1, c));
    ++pos_;
    return true;
  }

  std::string s_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::string balance_;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  // Every line break becomes "\n", and one trailing newline is dropped (keep_trailing_newline=False).
  std::string s;
  s.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      s.push_back(source[i]);
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return Lexer(std::move(s)).run();
}

}  // namespace moe::jinja
