#include "tokenizer/jinja/unicode.h"

#include <algorithm>
#include <iterator>

#include "tokenizer/unicode.h"

namespace moe::jinja::unicode {
namespace {

struct Range {
  char32_t first, last;
};
struct CaseRun {
  char32_t first, last;
  int stride;  // 1 or 2: every code point, or every other one (Latin Extended pairs)
  int delta;
};
struct SpecialCase {
  char32_t from;
  char32_t to[3];  // zero-terminated when shorter
};

#include "tokenizer/jinja/unicode_tables.inc"

template <size_t N>
bool in_ranges(const Range (&table)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(table), std::end(table), c,
                             [](char32_t v, const Range& r) { return v < r.first; });
  if (it == std::begin(table)) return false;
  --it;
  return c <= it->last;
}

template <size_t NR, size_t NS>
void append_mapped(std::u32string& out, char32_t c, const CaseRun (&runs)[NR], const SpecialCase (&special)[NS]) {
  for (const auto& s : special) {
    if (s.from == c) {
      for (char32_t t : s.to)
        if (t) out.push_back(t);
      return;
    }
  }
  auto it = std::upper_bound(std::begin(runs), std::end(runs), c,
                             [](char32_t v, const CaseRun& r) { return v < r.first; });
  if (it != std::begin(runs)) {
    --it;
    if (c <= it->last && (c - it->first) % it->stride == 0) {
      out.push_back(static_cast<char32_t>(static_cast<int64_t>(c) + it->delta));
      return;
    }
  }
  out.push_back(c);
}

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    int extra = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    char32_t cp = extra > 0 ? (b & (0x3F >> extra)) : b;
    bool ok = extra >= 0 && i + extra < s.size();
    for (int k = 1; ok && k <= extra; ++k) {
      unsigned char cb = static_cast<unsigned char>(s[i + k]);
      if ((cb & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (!ok) {  // not valid UTF-8: keep the byte as a code point rather than fail
      out.push_back(b);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) { moe::unicode::append_utf8(out, static_cast<uint32_t>(cp)); }

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  return ascii ? s.size() : decode(s).size();
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

bool is_printable(char32_t c) { return !in_ranges(kNonPrintable, c); }
bool is_alpha(char32_t c) { return in_ranges(kAlpha, c); }
bool is_digit(char32_t c) { return in_ranges(kDigit, c); }
bool is_alnum(char32_t c) { return is_alpha(c) || is_digit(c) || in_ranges(kAlnumExtra, c); }
bool is_word(char32_t c) { return c == '_' || is_alnum(c); }
bool is_upper(char32_t c) { return in_ranges(kUpper, c); }
bool is_lower(char32_t c) { return in_ranges(kLower, c); }
bool is_cased(char32_t c) { return in_ranges(kCased, c); }

void append_upper(std::u32string& out, char32_t c) { append_mapped(out, c, kUpperRuns, kUpperSpecial); }

void append_title(std::u32string& out, char32_t c) {
  for (const auto& t : kTitleSpecial)
    if (t.from == c) {
      for (char32_t x : t.to)
        if (x) out.push_back(x);
      return;
    }
  append_upper(out, c);
}

void append_lower_at(std::u32string& out, std::u32string_view s, size_t i) {
  if (s[i] != 0x3A3) {
    append_mapped(out, s[i], kLowerRuns, kLowerSpecial);
    return;
  }
  // CPython's handle_capital_sigma: final when a cased letter precedes and none follows (skipping
  // case-ignorable characters both ways).
  size_t j = i;
  while (j > 0 && in_ranges(kCaseIgnorable, s[j - 1])) --j;
  bool final_sigma = j > 0 && is_cased(s[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < s.size() && in_ranges(kCaseIgnorable, s[k])) ++k;
    final_sigma = k == s.size() || !is_cased(s[k]);
  }
  out.push_back(final_sigma ? 0x3C2 : 0x3C3);
}

std::u32string to_upper(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) append_upper(out, c);
  return out;
}

std::u32string to_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) append_lower_at(out, s, i);
  return out;
}

std::string to_upper(std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (!ascii) return encode(to_upper(decode(s)));
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return out;
}

std::string to_lower(std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (!ascii) return encode(to_lower(decode(s)));
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

}  // namespace moe::jinja::unicode
