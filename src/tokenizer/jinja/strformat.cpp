// Python's two string formatting mini-languages: `fmt % args` and str.format / format(value, spec).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja::py {
namespace {

std::string pad(const std::string& body, size_t width, char32_t fill, char align) {
  size_t len = unicode::length(body);
  if (len >= width) return body;
  size_t total = width - len;
  std::string f;
  unicode::append_utf8(f, fill);
  check_built_size(static_cast<uint64_t>(total) * f.size() + body.size(), "padding to width " + std::to_string(width));
  auto rep = [&](size_t n) {
    std::string s;
    s.reserve(n * f.size());
    for (size_t i = 0; i < n; ++i) s += f;
    return s;
  };
  if (align == '<') return body + rep(total);
  if (align == '^') return rep(total / 2) + body + rep(total - total / 2);
  return rep(total) + body;
}

std::string group_digits(const std::string& digits, char sep) {
  std::string out;
  int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i && (n - i) % 3 == 0) out.push_back(sep);
    out.push_back(digits[static_cast<size_t>(i)]);
  }
  return out;
}

// printf of one double, as long as it needs to be ('%.600f' is 602 characters).
std::string c_format(const char* fmt, double d) {
  const int n = std::snprintf(nullptr, 0, fmt, d);
  if (n < 0) throw Fault("ValueError: cannot format " + std::string(fmt));
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), fmt, d);
  out.resize(static_cast<size_t>(n));
  return out;
}

// A width or precision written in digits; past the size limit it stops growing (the caller refuses it).
template <typename T>
T read_count(const std::u32string& s, size_t& i) {
  T n = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i)
    if (n <= static_cast<T>(kMaxBuiltBytes)) n = static_cast<T>(n * 10 + (s[i] - '0'));
  return n;
}

struct Spec {
  char32_t fill = ' ';
  char align = 0;
  char sign = '-';
  bool alt = false;
  size_t width = 0;
  char grouping = 0;
  int precision = -1;
  char type = 0;
};

Spec parse_spec(const std::string& text) {
  std::u32string s = unicode::decode(text);
  Spec sp;
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  if (s.size() >= 2 && is_align(s[1])) {
    sp.fill = s[0];
    sp.align = static_cast<char>(s[1]);
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    sp.align = static_cast<char>(s[0]);
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) sp.sign = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '#') {
    sp.alt = true;
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    if (!sp.align) {
      sp.fill = '0';
      sp.align = '=';
    }
    ++i;
  }
  sp.width = read_count<size_t>(s, i);
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) sp.grouping = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '.') {
    ++i;
    sp.precision = 0;
    if (i >= s.size() || s[i] < '0' || s[i] > '9') throw Fault("ValueError: Format specifier missing precision");
    const int64_t precision = read_count<int64_t>(s, i);
    check_built_size(static_cast<uint64_t>(precision), "a precision of " + std::to_string(precision));
    sp.precision = static_cast<int>(precision);
  }
  if (i < s.size()) sp.type = static_cast<char>(s[i++]);
  if (i != s.size()) throw Fault("ValueError: Invalid format specifier '" + text + "'");
  return sp;
}

// Applies sign, grouping and '='-style padding to a formatted magnitude.
std::string finish_number(bool negative, std::string body, const Spec& sp, const std::string& prefix = "") {
  if (sp.grouping) {
    size_t end = body.find_first_not_of("0123456789");
    std::string int_part = body.substr(0, end);
    body = group_digits(int_part, sp.grouping) + (end == std::string::npos ? "" : body.substr(end));
  }
  std::string sign = negative ? "-" : sp.sign == '+' ? "+" : sp.sign == ' ' ? " " : "";
  char align = sp.align ? sp.align : '>';
  if (align == '=') {
    std::string head = sign + prefix;
    size_t len = unicode::length(head) + unicode::length(body);
    if (len < sp.width) {
      std::string f;
      unicode::append_utf8(f, sp.fill);
      check_built_size(static_cast<uint64_t>(sp.width - len) * f.size(), "padding to width " + std::to_string(sp.width));
      for (size_t i = len; i < sp.width; ++i) head += f;
    }
    return head + body;
  }
  return pad(sign + prefix + body, sp.width, sp.fill, align);
}

std::string format_float(double d, Spec sp) {
  bool neg = std::signbit(d) && !std::isnan(d);
  double a = std::fabs(d);
  std::string body;
  char type = sp.type;
  int prec = sp.precision;
  if (std::isnan(a) || std::isinf(a)) {
    body = std::isnan(a) ? "nan" : "inf";
    if (type == 'F' || type == 'E' || type == 'G') body = std::isnan(a) ? "NAN" : "INF";
    if (type == '%') body += "%";
  } else if (type == 0 && prec < 0) {
    body = float_repr(a);
  } else if (type == 'f' || type == 'F') {
    body = c_format(("%." + std::to_string(prec < 0 ? 6 : prec) + "f").c_str(), a);
  } else if (type == 'e' || type == 'E') {
    body = c_format(("%." + std::to_string(prec < 0 ? 6 : prec) + (type == 'e' ? "e" : "E")).c_str(), a);
  } else if (type == '%') {
    body = c_format(("%." + std::to_string(prec < 0 ? 6 : prec) + "f").c_str(), a * 100) + "%";
  } else if (type == 'g' || type == 'G' || type == 0) {
    int p = prec < 0 ? 6 : (prec == 0 ? 1 : prec);
    std::string f = sp.alt ? "%#." : "%.";
    f.append(std::to_string(p)).push_back(type == 'G' ? 'G' : 'g');
    body = c_format(f.c_str(), a);
    // With no type, Python keeps at least one digit after the point when the result is not exponential.
    if (type == 0 && body.find_first_of(".e") == std::string::npos) body += ".0";
  } else {
    throw Fault(std::string("ValueError: Unknown format code '") + type + "' for object of type 'float'");
  }
  return finish_number(neg, body, sp);
}

std::string format_int(int64_t v, Spec sp) {
  if (sp.type == 'e' || sp.type == 'E' || sp.type == 'f' || sp.type == 'F' || sp.type == 'g' || sp.type == 'G' ||
      sp.type == '%')
    return format_float(static_cast<double>(v), sp);
  if (sp.precision >= 0) throw Fault("ValueError: Precision not allowed in integer format specifier");
  bool neg = v < 0;
  uint64_t mag = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string body, prefix;
  auto in_base = [&](int base, bool upper) {
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string s;
    do {
      s.push_back(digits[mag % base]);
      mag /= base;
    } while (mag);
    std::reverse(s.begin(), s.end());
    return s;
  };
  switch (sp.type) {
    case 0:
    case 'd':
    case 'n': body = in_base(10, false); break;
    case 'x': body = in_base(16, false), prefix = sp.alt ? "0x" : ""; break;
    case 'X': body = in_base(16, true), prefix = sp.alt ? "0X" : ""; break;
    case 'o': body = in_base(8, false), prefix = sp.alt ? "0o" : ""; break;
    case 'b': body = in_base(2, false), prefix = sp.alt ? "0b" : ""; break;
    case 'c': {
      std::string s;
      unicode::append_utf8(s, static_cast<char32_t>(v));
      return pad(s, sp.width, sp.fill, sp.align ? sp.align : '<');
    }
    default: throw Fault(std::string("ValueError: Unknown format code '") + sp.type + "' for object of type 'int'");
  }
  return finish_number(neg, body, sp, prefix);
}

}  // namespace

std::string format_spec(const Value& v, const std::string& spec_text) {
  if (spec_text.empty()) return str(v);
  Spec sp = parse_spec(spec_text);
  if (v.is_string()) {
    if (sp.type && sp.type != 's')
      throw Fault(std::string("ValueError: Unknown format code '") + sp.type + "' for object of type 'str'");
    if (sp.sign != '-') throw Fault("ValueError: Sign not allowed in string format specifier");
    std::string s = v.str();
    if (sp.precision >= 0) {
      std::u32string cps = unicode::decode(s);
      if (cps.size() > static_cast<size_t>(sp.precision)) s = unicode::encode(cps.substr(0, sp.precision));
    }
    return pad(s, sp.width, sp.fill, sp.align ? sp.align : '<');
  }
  if (v.is_integral()) return format_int(v.as_int(), sp);
  if (v.is_float()) return format_float(v.as_float(), sp);
  throw Fault("TypeError: unsupported format string passed to " + type_name(v) + ".__format__");
}

// ---- `fmt % args` -------------------------------------------------------------------------------------

std::string percent_format(const std::string& fmt, const Value& args) {
  std::vector<Value> positional;
  // CPython treats any non-tuple argument with __getitem__ (dict, list, Undefined) as a possible mapping:
  // %(name)s looks names up in it, and unused arguments are not an error.
  const bool mapping = args.is_dict() || args.is_plain_list() || args.is_undefined();
  if (args.is_tuple()) positional = args.items();
  else positional.push_back(args);
  size_t next = 0;
  auto take = [&]() -> Value {
    if (next >= positional.size()) throw Fault("TypeError: not enough arguments for format string");
    return positional[next++];
  };
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    if (i >= fmt.size()) throw Fault("ValueError: incomplete format");
    Value arg;
    bool have_arg = false;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) throw Fault("ValueError: incomplete format key");
      if (!mapping) throw Fault("TypeError: format requires a mapping");
      if (args.is_undefined()) args.fail_undefined();
      if (!args.is_dict()) throw Fault("TypeError: list indices must be integers or slices, not str");
      const Value* v = args.dict().find(Value::string(fmt.substr(i + 1, close - i - 1)));
      if (!v) throw Fault("KeyError: " + repr_string(fmt.substr(i + 1, close - i - 1)));
      arg = *v;
      have_arg = true;
      i = close + 1;
    }
    Spec sp;
    bool left = false, zero = false;
    for (; i < fmt.size() && std::string("-+ #0").find(fmt[i]) != std::string::npos; ++i) {
      if (fmt[i] == '-') left = true;
      else if (fmt[i] == '0') zero = true;
      else if (fmt[i] == '#') sp.alt = true;
      else if (fmt[i] == '+' || (fmt[i] == ' ' && sp.sign != '+')) sp.sign = fmt[i];
    }
    auto number = [&](size_t& pos) -> int64_t {
      if (pos < fmt.size() && fmt[pos] == '*') {
        ++pos;
        Value w = take();
        if (!w.is_integral()) throw Fault("TypeError: * wants int");
        return w.as_int();
      }
      int64_t n = 0;  // stops growing past the size limit, which the checks below refuse
      for (; pos < fmt.size() && fmt[pos] >= '0' && fmt[pos] <= '9'; ++pos)
        if (n <= static_cast<int64_t>(kMaxBuiltBytes)) n = n * 10 + (fmt[pos] - '0');
      return n;
    };
    int64_t width = number(i);
    if (width < 0) left = true, width = width == INT64_MIN ? INT64_MAX : -width;
    check_built_size(static_cast<uint64_t>(width), "a width of " + std::to_string(width));
    sp.width = static_cast<size_t>(width);
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      const int64_t precision = number(i);
      check_built_size(static_cast<uint64_t>(std::max<int64_t>(precision, 0)), "a precision of " + std::to_string(precision));
      sp.precision = static_cast<int>(std::max<int64_t>(precision, 0));
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) throw Fault("ValueError: incomplete format");
    char type = fmt[i++];
    if (type == '%') {
      out.push_back('%');
      continue;
    }
    if (!have_arg) arg = take();
    sp.align = left ? '<' : (zero ? '=' : '>');
    sp.fill = zero && !left ? '0' : ' ';
    std::string piece;
    switch (type) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = type == 's' ? str(arg) : repr(arg);
        if (sp.precision >= 0) {
          std::u32string cps = unicode::decode(s);
          if (cps.size() > static_cast<size_t>(sp.precision)) s = unicode::encode(cps.substr(0, sp.precision));
        }
        piece = pad(s, sp.width, ' ', left ? '<' : '>');
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        if (arg.is_undefined()) arg.fail_undefined();
        if (!arg.is_numeric())
          throw Fault(std::string("TypeError: %") + type + " format: a real number is required, not " +
                      type_name(arg));
        int64_t n = arg.is_float() ? static_cast<int64_t>(std::trunc(arg.as_float())) : arg.as_int();
        sp.type = type == 'x' || type == 'X' || type == 'o' ? type : 'd';
        int prec = sp.precision;
        sp.precision = -1;
        std::string s = format_int(n, sp);
        if (prec > 0) {  // %.3d pads the digits with zeros
          bool neg = n < 0;
          std::string digits = s.substr(s.find_first_of("0123456789"));
          if (static_cast<int>(digits.size()) < prec) digits.insert(0, prec - digits.size(), '0');
          s = pad((neg ? "-" : "") + digits, sp.width, sp.fill, sp.align);
        }
        piece = s;
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (arg.is_undefined()) arg.fail_undefined();
        if (!arg.is_numeric())
          throw Fault("TypeError: must be real number, not " + type_name(arg));
        sp.type = type;
        if (sp.precision < 0) sp.precision = 6;
        piece = format_float(arg.as_float(), sp);
        break;
      }
      case 'c': {
        if (arg.is_string()) piece = arg.str();
        else if (arg.is_integral() && (arg.as_int() < 0 || arg.as_int() > 0x10FFFF))
          throw Fault("OverflowError: %c arg not in range(0x110000)");
        else if (arg.is_integral()) unicode::append_utf8(piece, static_cast<char32_t>(arg.as_int()));
        else throw Fault("TypeError: %c requires int or char");
        piece = pad(piece, sp.width, ' ', left ? '<' : '>');
        break;
      }
      default:
        throw Fault(std::string("ValueError: unsupported format character '") + type + "'");
    }
    out += piece;
  }
  if (!mapping && next < positional.size())
    throw Fault("TypeError: not all arguments converted during string formatting");
  return out;
}

// ---- str.format ---------------------------------------------------------------------------------------

namespace {

Value field_value(const std::string& field, const CallArgs& call, size_t& auto_index, int& numbering) {
  size_t end = field.find_first_of(".[");
  std::string head = field.substr(0, end);
  Value v;
  if (head.empty() || std::all_of(head.begin(), head.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    size_t idx;
    if (head.empty()) {
      if (numbering == 2)
        throw Fault("ValueError: cannot switch from manual field specification to automatic field numbering");
      numbering = 1;
      idx = auto_index++;
    } else {
      if (numbering == 1)
        throw Fault("ValueError: cannot switch from automatic field numbering to manual field specification");
      numbering = 2;
      if (std::from_chars(head.data(), head.data() + head.size(), idx).ec != std::errc())
        throw Fault("ValueError: Too many decimal digits in format string");
    }
    if (idx >= call.args.size())
      throw Fault("IndexError: Replacement index " + std::to_string(idx) + " out of range for positional args tuple");
    v = call.args[idx];
  } else {
    auto it = std::find_if(call.kwargs.begin(), call.kwargs.end(), [&](const auto& kv) { return kv.first == head; });
    if (it == call.kwargs.end()) throw Fault("KeyError: " + repr_string(head));
    v = it->second;
  }
  size_t i = end;
  while (i != std::string::npos && i < field.size()) {
    if (field[i] == '.') {
      size_t e = field.find_first_of(".[", i + 1);
      std::string name = field.substr(i + 1, e == std::string::npos ? std::string::npos : e - i - 1);
      const Value* found = v.is_dict() ? v.dict().find(Value::string(name)) : nullptr;
      if (v.is_namespace()) found = v.ns().find(name);
      if (!found) throw Fault("AttributeError: '" + type_name(v) + "' object has no attribute " + repr_string(name));
      v = *found;
      i = e;
    } else {
      size_t close = field.find(']', i);
      if (close == std::string::npos) throw Fault("ValueError: Missing ']' in format string");
      std::string key = field.substr(i + 1, close - i - 1);
      bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
      int64_t index = 0;
      if (numeric && std::from_chars(key.data(), key.data() + key.size(), index).ec != std::errc())
        throw Fault("unsupported: index " + key + " does not fit in a signed 64-bit integer");
      const Value k = numeric ? Value::integer(index) : Value::string(key);
      if (v.is_list() && numeric && static_cast<uint64_t>(index) < v.items().size()) v = v.items()[index];
      else if (v.is_dict() && v.dict().find(k)) v = *v.dict().find(k);
      else throw Fault("KeyError: " + repr_string(key));
      i = close + 1;
    }
  }
  return v;
}

std::string format_impl(const std::string& fmt, const CallArgs& call, size_t& auto_index, int& numbering, int depth) {
  if (depth > 2) throw Fault("ValueError: Max string recursion exceeded");
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      throw Fault("ValueError: Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    // Find the matching close brace (the spec may nest one level of {fields}).
    size_t j = i + 1;
    int nest = 1;
    for (; j < fmt.size(); ++j) {
      if (fmt[j] == '{') ++nest;
      else if (fmt[j] == '}' && --nest == 0) break;
    }
    if (j >= fmt.size()) throw Fault("ValueError: expected '}' before end of string");
    std::string field = fmt.substr(i + 1, j - i - 1);
    i = j + 1;
    std::string spec;
    char conversion = 0;
    size_t bracket = 0, k = 0;
    for (; k < field.size(); ++k) {
      if (field[k] == '[') bracket = 1;
      else if (field[k] == ']') bracket = 0;
      else if (!bracket && (field[k] == '!' || field[k] == ':')) break;
    }
    std::string name = field.substr(0, k);
    if (k < field.size() && field[k] == '!') {
      if (k + 1 >= field.size()) throw Fault("ValueError: end of string while looking for conversion specifier");
      conversion = field[k + 1];
      k += 2;
      if (k < field.size() && field[k] != ':') throw Fault("ValueError: expected ':' after conversion specifier");
    }
    Value v = field_value(name, call, auto_index, numbering);  // numbered before any {} inside its spec
    if (k < field.size() && field[k] == ':') spec = format_impl(field.substr(k + 1), call, auto_index, numbering, depth + 1);
    if (conversion == 'r' || conversion == 'a') v = Value::string(repr(v));
    else if (conversion == 's') v = Value::string(str(v));
    else if (conversion) throw Fault(std::string("ValueError: Unknown conversion specifier ") + conversion);
    out += format_spec(v, spec);
  }
  return out;
}

}  // namespace

std::string str_format(const std::string& fmt, const CallArgs& call) {
  size_t auto_index = 0;
  int numbering = 0;  // 0 unknown, 1 automatic, 2 manual
  return format_impl(fmt, call, auto_index, numbering, 0);
}

}  // namespace moe::jinja::py
