// Jinja2's built-in filters (jinja2/filters.py) plus transformers' `tojson`, which is json.dumps with
// ensure_ascii=False instead of Jinja2's HTML-safe variant.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja {
namespace {

const char* const kFilters[] = {
    "abs",     "attr",      "batch",   "capitalize", "center",   "count",      "d",         "default", "dictsort",
    "e",       "escape",    "filesizeformat", "first", "float",  "forceescape", "format",   "groupby", "indent",
    "int",     "join",      "last",    "length",     "list",     "lower",      "items",     "map",     "min",
    "max",     "pprint",    "random",  "reject",     "rejectattr", "replace",  "reverse",   "round",   "safe",
    "select",  "selectattr", "slice",  "sort",       "string",   "striptags",  "sum",       "title",   "trim",
    "truncate", "unique",   "upper",   "urlencode",  "urlize",   "wordcount",  "wordwrap",  "xmlattr", "tojson"};

// markupsafe.soft_str: str(), except that Markup stays Markup.
Value soft_str(const Value& v) { return v.is_string() ? v : Value::string(py::str(v)); }

Value call_method(Interpreter& interp, const Value& obj, const char* method, std::vector<Value> args) {
  CallArgs a;
  a.args = std::move(args);
  return interp.call(interp.getattr(obj, method), a);
}

// Python's int(str, base): surrounding whitespace, a sign, underscores between digits, 0x/0o/0b prefixes.
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::u32string s = unicode::decode(text);
  size_t b = 0, e = s.size();
  while (b < e && unicode::is_space(s[b])) ++b;
  while (e > b && unicode::is_space(s[e - 1])) --e;
  std::string t = unicode::encode(s.substr(b, e - b));
  bool neg = false;
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
  if (base == 0 || base == 16 || base == 8 || base == 2) {
    if (i + 1 < t.size() && t[i] == '0') {
      char p = static_cast<char>(t[i + 1] | 0x20);
      int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (pb && (base == 0 || base == pb)) {
        base = pb;
        i += 2;
        if (i < t.size() && t[i] == '_') ++i;
      }
    }
    if (base == 0) base = 10;
  }
  if (i >= t.size()) return std::nullopt;
  int64_t v = 0;
  bool prev_digit = false;
  for (; i < t.size(); ++i) {
    char c = t[i];
    if (c == '_') {
      if (!prev_digit || i + 1 >= t.size()) return std::nullopt;
      prev_digit = false;
      continue;
    }
    int d = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? (c | 0x20) - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
      throw Fault("unsupported: integer does not fit in 64 bits");
    prev_digit = true;
  }
  return neg ? -v : v;
}

// Python's float(str): whitespace, underscores between digits, inf/nan spellings.
std::optional<double> parse_float(const std::string& text) {
  std::u32string s = unicode::decode(text);
  size_t b = 0, e = s.size();
  while (b < e && unicode::is_space(s[b])) ++b;
  while (e > b && unicode::is_space(s[e - 1])) --e;
  std::string t = unicode::encode(s.substr(b, e - b));
  std::string lower = unicode::to_lower(t);
  std::string body = lower;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.erase(0, 1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    double v = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -v : v;
  }
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (i == 0 || i + 1 >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(t[i + 1])))
        return std::nullopt;
      continue;
    }
    if (!(std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.' || t[i] == 'e' || t[i] == 'E' ||
          t[i] == '+' || t[i] == '-'))
      return std::nullopt;
    clean.push_back(t[i]);
  }
  if (clean.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return v;
}

// int(float): NaN raises ValueError (do_int returns the default), infinity OverflowError (not caught).
Value float_to_int(double f, const Value& dflt) {
  if (std::isnan(f)) return dflt;
  if (std::isinf(f)) throw Fault("OverflowError: cannot convert float infinity to integer");
  if (std::fabs(f) >= 9.2e18) throw Fault("unsupported: integer does not fit in 64 bits");
  return Value::integer(static_cast<int64_t>(std::trunc(f)));
}

Value do_int(const Value& v, CallArgs& args) {
  auto a = bind_args("int", args, {"default", "base"}, 0);
  Value dflt = a[0] ? *a[0] : Value::integer(0);
  // A bad base makes int(str, base) raise, which do_int catches like a bad number (and tries float()).
  int64_t base = a[1] && a[1]->is_integral() ? a[1]->as_int() : a[1] ? -1 : 10;
  bool base_ok = base == 0 || (base >= 2 && base <= 36);
  if (v.is_undefined()) v.fail_undefined();  // int(Undefined) raises UndefinedError, which do_int does not catch
  if (v.is_string()) {
    if (base_ok)
      if (auto i = parse_int(v.str(), static_cast<int>(base))) return Value::integer(*i);
    if (auto f = parse_float(v.str())) return float_to_int(*f, dflt);
    return dflt;
  }
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) return float_to_int(v.as_float(), dflt);
  return dflt;
}

Value do_float(const Value& v, CallArgs& args) {
  auto a = bind_args("float", args, {"default"}, 0);
  Value dflt = a[0] ? *a[0] : Value::number(0.0);
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_numeric()) return Value::number(v.as_float());
  if (v.is_string())
    if (auto f = parse_float(v.str())) return Value::number(*f);
  return dflt;
}

Value do_indent(const Value& v, CallArgs& args) {
  auto a = bind_args("indent", args, {"width", "first", "blank"}, 0);
  const int64_t spaces = a[0] && !a[0]->is_string() ? std::max<int64_t>(0, py::index(*a[0])) : 0;
  py::check_built_size(static_cast<uint64_t>(spaces), "indent(" + std::to_string(spaces) + ")");
  std::string indention = !a[0]              ? "    "
                          : a[0]->is_string() ? a[0]->str()
                                              : std::string(static_cast<size_t>(spaces), ' ');
  bool first = a[1] && py::truthy(*a[1]);
  bool blank = a[2] && py::truthy(*a[2]);
  if (!v.is_string()) throw Fault("TypeError: unsupported operand type(s) for +=: '" + py::type_name(v) + "' and 'str'");
  std::string s = v.str() + "\n";  // Jinja2 appends a newline so splitlines() keeps a trailing empty line
  std::vector<std::string> lines;
  {
    std::u32string cps = unicode::decode(s);
    size_t i = 0, start = 0;
    while (i < cps.size()) {
      if (!unicode::is_line_break(cps[i])) {
        ++i;
        continue;
      }
      lines.push_back(unicode::encode(cps.substr(start, i - start)));
      i += (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ? 2 : 1;
      start = i;
    }
    if (start < cps.size()) lines.push_back(unicode::encode(cps.substr(start)));
  }
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv.append(1, '\n').append(indention);
      rv.append(lines[i]);
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    if (lines.size() > 1) {
      for (size_t i = 1; i < lines.size(); ++i) {
        rv.push_back('\n');
        if (!lines[i].empty()) rv.append(indention).append(lines[i]);
      }
    }
  }
  if (first) rv = indention + rv;
  return Value::string(rv, v.markup());
}

// round(x, ndigits) for a float as CPython computes it: correctly rounded, ties to even, on the exact binary
// value. glibc's printf is exact, so the decimal expansion it prints is rounded digit by digit.
double round_float(double x, int64_t ndigits) {
  if (!std::isfinite(x) || ndigits > 323) return x;
  if (ndigits < -308) return 0.0 * x;
  if (ndigits >= 0) {
    std::string buf(static_cast<size_t>(std::snprintf(nullptr, 0, "%.*f", static_cast<int>(ndigits), x)) + 1, '\0');
    std::snprintf(buf.data(), buf.size(), "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf.c_str(), nullptr);
  }
  std::string exact(static_cast<size_t>(std::snprintf(nullptr, 0, "%.1100f", std::fabs(x))) + 1, '\0');
  std::snprintf(exact.data(), exact.size(), "%.1100f", std::fabs(x));
  exact.resize(exact.size() - 1);
  size_t dot = exact.find('.');
  std::string int_part = exact.substr(0, dot), rest_frac = exact.substr(dot + 1);
  size_t k = static_cast<size_t>(-ndigits);
  if (int_part.size() <= k) int_part.insert(0, k + 1 - int_part.size(), '0');
  std::string keep = int_part.substr(0, int_part.size() - k);
  std::string rest = int_part.substr(int_part.size() - k) + rest_frac;
  bool tail = rest.find_first_not_of('0', 1) != std::string::npos;
  bool up = rest[0] > '5' || (rest[0] == '5' && (tail || (keep.back() - '0') % 2 == 1));
  for (size_t i = keep.size(); up && i-- > 0;) {
    if (keep[i] == '9') {
      keep[i] = '0';
      if (i == 0) keep.insert(0, 1, '1');
    } else {
      ++keep[i];
      up = false;
    }
  }
  double r = std::strtod((keep + std::string(k, '0')).c_str(), nullptr);
  return x < 0 ? -r : r;
}

// round(int, ndigits) stays an int; a negative ndigits rounds to tens, hundreds, ... ties to even.
int64_t round_int(int64_t v, int64_t ndigits) {
  if (ndigits >= 0) return v;
  if (ndigits < -18) return 0;
  int64_t p = 1;
  for (int64_t i = 0; i < -ndigits; ++i) p *= 10;
  int64_t q = v / p, r = v % p;
  if (r < 0) r += p, --q;  // floor division
  if (2 * r > p || (2 * r == p && q % 2 != 0)) ++q;
  int64_t out = 0;
  if (__builtin_mul_overflow(q, p, &out)) throw Fault("unsupported: integer does not fit in 64 bits");
  return out;
}

Value do_round(const Value& v, CallArgs& args) {
  auto a = bind_args("round", args, {"precision", "method"}, 0);
  std::string method = a[1] ? py::str(*a[1]) : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    throw Fault("FilterArgumentError: method must be common, ceil or floor");
  if (!v.is_numeric()) throw Fault("TypeError: type " + py::type_name(v) + " doesn't define __round__ method");
  if (method == "common" && a[0] && a[0]->is_none()) {  // round(x, None) is round(x): an int
    if (v.is_integral()) return Value::integer(v.as_int());
    double r = std::nearbyint(v.as_float());  // ties to even in the default rounding mode
    if (std::isnan(r)) throw Fault("ValueError: cannot convert float NaN to integer");
    if (std::isinf(r)) throw Fault("OverflowError: cannot convert float infinity to integer");
    if (std::fabs(r) >= 9.2e18) throw Fault("unsupported: integer does not fit in 64 bits");
    return Value::integer(static_cast<int64_t>(r));
  }
  int64_t precision = a[0] ? py::index(*a[0]) : 0;
  if (method == "common") {
    if (v.is_integral()) return Value::integer(round_int(v.as_int(), precision));
    return Value::number(round_float(v.as_float(), precision));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float() * scale;
  return Value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value do_truncate(const Value& v, CallArgs& args) {
  auto a = bind_args("truncate", args, {"length", "killwords", "end", "leeway"}, 0);
  // length and leeway are only compared until the text must actually be cut, so floats pass until then.
  Value length = a[0] ? *a[0] : Value::integer(255);
  bool killwords = a[1] && py::truthy(*a[1]);
  Value end = a[2] ? *a[2] : Value::string("...");
  Value leeway = a[3] && !a[3]->is_none() ? *a[3] : Value::integer(5);
  Value end_len = Value::integer(py::length(end));
  if (py::less(length, end_len)) throw Fault("AssertionError: expected length >= " + py::str(end_len) + ", got " + py::str(length));
  if (py::less(leeway, Value::integer(0))) throw Fault("AssertionError: expected leeway >= 0, got " + py::str(leeway));
  Value n = Value::integer(py::length(v));
  if (!py::less(binary_op("+", length, leeway), n)) return v;  // returned untouched when short enough
  if (!v.is_string() || !end.is_string()) throw Fault("unsupported: truncate() of a long " + py::type_name(v));
  std::u32string s = unicode::decode(v.str());
  int64_t keep = py::index(length) - end_len.as_int();
  std::u32string head = keep > 0 ? s.substr(0, static_cast<size_t>(keep)) : std::u32string();
  if (!killwords) {
    size_t sp = head.rfind(U' ');
    if (sp != std::u32string::npos) head = head.substr(0, sp);
  }
  return Value::string(unicode::encode(head) + end.str());
}

Value do_title(const Value& v) {
  // Jinja2's own title(): the text splits at runs of [-\s({\[<]; each piece becomes
  // piece[0].upper() + piece[1:].lower().
  std::u32string s = unicode::decode(soft_str(v).str());
  auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || unicode::is_space(c);
  };
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    bool sep = is_sep(s[i]);
    while (j < s.size() && is_sep(s[j]) == sep) ++j;
    if (sep) {
      out.append(s, i, j - i);
    } else {
      unicode::append_upper(out, s[i]);
      out += unicode::to_lower(std::u32string_view(s).substr(i + 1, j - i - 1));
    }
    i = j;
  }
  return Value::string(unicode::encode(out), v.markup());
}

Value do_tojson(const Value& v, CallArgs& args) {
  auto a = bind_args("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}, 0);
  py::JsonOptions opt;
  opt.ensure_ascii = a[0] && py::truthy(*a[0]);
  // JSONEncoder.encode returns early for a str, before it looks at indent or separators.
  if (v.is_string()) return Value::string(py::json_dumps(v, opt));
  if (a[1] && !a[1]->is_none()) {
    if (a[1]->is_string()) opt.indent = a[1]->str();
    else if (a[1]->is_integral()) {
      const int64_t spaces = std::max<int64_t>(0, a[1]->as_int());
      py::check_built_size(static_cast<uint64_t>(spaces), "tojson(indent=" + std::to_string(spaces) + ")");
      opt.indent = std::string(static_cast<size_t>(spaces), ' ');
    }
    else throw Fault("TypeError: indent must be an int or a str");
    opt.item_separator.assign(1, ',');
  }
  if (a[2] && !a[2]->is_none()) {
    std::vector<Value> seps = py::to_list(*a[2]);
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string())
      throw Fault("ValueError: separators must be a pair of strings");
    opt.item_separator = seps[0].str();
    opt.key_separator = seps[1].str();
  }
  opt.sort_keys = a[3] && py::truthy(*a[3]);
  return Value::string(py::json_dumps(v, opt));
}

std::string url_quote(const std::string& s, bool for_qs) {
  std::string out;
  const char* safe = for_qs ? "" : "/";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || (c && std::strchr(safe, c))) {
      out.push_back(static_cast<char>(c));
    } else if (for_qs && c == ' ') {
      out.push_back('+');
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// default, length, string, safe/escape, tojson, text case and trimming, numbers.
std::optional<Value> value_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  auto none = [&] { bind_args(name, args, {}, 0); };
  if (name == "default" || name == "d") {
    auto a = bind_args(name, args, {"default_value", "boolean"}, 0);
    bool boolean = a[1] && py::truthy(*a[1]);
    if (v.is_undefined() || (boolean && !py::truthy(v))) return a[0] ? *a[0] : Value::string("");
    return v;
  }
  if (name == "length" || name == "count") return none(), Value::integer(py::length(v));
  if (name == "string") return none(), soft_str(v);
  if (name == "safe") return none(), v.markup() ? v : Value::string(py::str(v), true);
  if (name == "escape" || name == "e") return none(), py::escape(v);
  if (name == "forceescape") return none(), Value::string(py::escape_html(py::str(v)), true);
  if (name == "tojson") return do_tojson(v, args);
  if (name == "trim") {
    auto a = bind_args(name, args, {"chars"}, 0);
    CallArgs m;
    if (a[0]) m.args.push_back(*a[0]);
    return interp.call(interp.getattr(soft_str(v), "strip"), m);
  }
  if (name == "upper" || name == "lower" || name == "capitalize") return none(), call_method(interp, soft_str(v), name.c_str(), {});
  if (name == "title") return none(), do_title(v);
  if (name == "center") {
    auto a = bind_args(name, args, {"width"}, 0);
    return call_method(interp, soft_str(v), "center", {a[0] ? *a[0] : Value::integer(80)});
  }
  if (name == "replace") {
    auto a = bind_args(name, args, {"old", "new", "count"}, 2);
    std::vector<Value> margs{Value::string(py::str(*a[0])), Value::string(py::str(*a[1]))};
    if (a[2] && !a[2]->is_none()) margs.push_back(*a[2]);
    return call_method(interp, Value::string(py::str(v)), "replace", margs);
  }
  if (name == "int") return do_int(v, args);
  if (name == "float") return do_float(v, args);
  if (name == "abs") {
    none();
    if (v.is_integral() && v.as_int() == INT64_MIN) throw Fault("unsupported: integer does not fit in 64 bits");
    if (v.is_integral()) return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    if (v.is_float()) return Value::number(std::fabs(v.as_float()));
    if (v.is_undefined()) v.fail_undefined();
    throw Fault("TypeError: bad operand type for abs(): '" + py::type_name(v) + "'");
  }
  if (name == "indent") return do_indent(v, args);
  if (name == "round") return do_round(v, args);
  if (name == "truncate") return do_truncate(v, args);
  return std::nullopt;
}

// wordcount, format, attr, urlencode, xmlattr, filesizeformat.
std::optional<Value> text_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  auto none = [&] { bind_args(name, args, {}, 0); };
  if (name == "wordcount") {
    none();
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : unicode::decode(soft_str(v).str())) {
      bool w = unicode::is_word(c);
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value::integer(n);
  }
  if (name == "format") {
    if (!args.args.empty() && !args.kwargs.empty())
      throw Fault("FilterArgumentError: can't handle positional and keyword arguments at the same time");
    Value fmt = soft_str(v);
    Value params;
    if (!args.kwargs.empty()) {
      DictData d;
      for (const auto& [k, x] : args.kwargs) d.set(Value::string(k), x);
      params = Value::dict(std::move(d));
    } else {
      params = Value::tuple(args.args);
    }
    return binary_op("%", fmt, params);
  }
  if (name == "attr") {
    auto a = bind_args(name, args, {"name"}, 1);
    if (v.is_undefined()) v.fail_undefined();
    if (!a[0]->is_string()) throw Fault("TypeError: attribute name must be string, not '" + py::type_name(*a[0]) + "'");
    std::string attr = a[0]->str();
    if (auto x = python_attribute(interp, v, attr)) return *x;
    std::string hint = "'";
    hint.append(py::type_name(v)).append(" object' has no attribute '").append(attr).append(1, '\'');
    return Value::undefined(std::move(hint));
  }
  if (name == "urlencode") {
    none();
    if (v.is_string() || !py::is_iterable(v)) return Value::string(url_quote(py::str(v), false));
    // A mapping or an iterable of pairs becomes k=v&k=v.
    std::vector<Value> pairs;
    if (v.is_dict()) {
      for (const auto& [k, x] : v.dict().items()) pairs.push_back(Value::tuple({k, x}));
    } else {
      pairs = py::to_list(v);
    }
    std::string out;
    for (const auto& p : pairs) {
      std::vector<Value> kv = py::to_list(p);
      if (kv.size() != 2) throw Fault("ValueError: urlencode expects pairs of key and value");
      if (!out.empty()) out.push_back('&');
      out.append(url_quote(py::str(kv[0]), true)).append(1, '=').append(url_quote(py::str(kv[1]), true));
    }
    return Value::string(out);
  }
  if (name == "xmlattr") {
    auto a = bind_args(name, args, {"autospace"}, 0);
    if (!v.is_dict()) throw Fault("AttributeError: '" + py::type_name(v) + "' object has no attribute 'items'");
    std::string rv;
    for (const auto& [k, x] : v.dict().items()) {
      if (x.is_none() || x.is_undefined()) continue;
      std::string key = py::str(k);
      if (key.find_first_of(" \t\n\r\f\v/>=") != std::string::npos)
        throw Fault("ValueError: Invalid character in attribute name: " + py::repr(k));
      if (!rv.empty()) rv.push_back(' ');
      rv.append(py::escape_html(key)).append("=\"").append(py::escape(x).str()).append(1, '"');
    }
    if ((!a[0] || py::truthy(*a[0])) && !rv.empty()) rv = " " + rv;
    return Value::string(rv);
  }
  if (name == "filesizeformat") {
    auto a = bind_args(name, args, {"binary"}, 0);
    bool binary = a[0] && py::truthy(*a[0]);
    CallArgs no_args;
    double bytes = do_float(v, no_args).as_float();
    double base = binary ? 1024 : 1000;
    static const char* kDec[] = {"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
    static const char* kBin[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
    if (bytes == 1) return Value::string("1 Byte");
    if (bytes < base) return Value::string(std::to_string(static_cast<int64_t>(bytes)) + " Bytes");
    double unit = base;
    int i = 0;
    for (; i < 8; ++i) {
      unit = std::pow(base, i + 2);
      if (bytes < unit) break;
    }
    i = std::min(i, 7);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f %s", base * bytes / unit, binary ? kBin[i] : kDec[i]);
    return Value::string(buf);
  }
  return std::nullopt;
}

}  // namespace

bool is_known_filter(const std::string& name) {
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

Value apply_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  if (!is_known_filter(name)) throw Fault("TemplateRuntimeError: No filter named '" + name + "' found.");
  if (auto r = apply_sequence_filter(interp, name, v, args)) return *r;
  for (auto* group : {value_filter, text_filter})
    if (auto r = group(interp, name, v, args)) return *r;
  // pprint, random, striptags, urlize, wordwrap, groupby: not reproduced (addresses, randomness, or
  // algorithms no chat template uses); refusing is better than rendering something else.
  throw Fault("unsupported: the '" + name + "' filter");
}

}  // namespace moe::jinja
