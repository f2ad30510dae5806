// str()/repr(), float formatting and json.dumps exactly as CPython prints them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja::py {
namespace {

void append_hex(std::string& out, uint32_t v, int digits) {
  static const char* kHex = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (4 * i)) & 0xF]);
}

[[noreturn]] void unprintable(const Value& v) {
  // CPython prints these with a memory address, which no reimplementation can reproduce.
  throw Fault("unsupported: printing a " + type_name(v) + " object (Python would print its memory address)");
}

}  // namespace

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // shortest round-trip digits: "-1.2345e-05"
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp10 = std::stoi(sci.substr(e + 1));
  int decpt = exp10 + 1;  // digits d1d2d3... represent 0.d1d2d3 * 10^decpt
  int nd = static_cast<int>(digits.size());
  std::string out = neg ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (nd > 1) out.append(1, '.').append(digits, 1, std::string::npos);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += eb;
  } else if (decpt <= 0) {
    out.append("0.").append(static_cast<size_t>(-decpt), '0').append(digits);
  } else if (decpt >= nd) {
    out.append(digits).append(static_cast<size_t>(decpt - nd), '0').append(".0");
  } else {
    out += digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
  }
  return out;
}

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : unicode::decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c < 0x7F || unicode::is_printable(c)) {
      unicode::append_utf8(out, c);
    } else if (c <= 0xFF) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c <= 0xFFFF) {
      out += "\\u";
      append_hex(out, c, 4);
    } else {
      out += "\\U";
      append_hex(out, c, 8);
    }
  }
  out.push_back(quote);
  return out;
}

std::string str(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "";
    case Kind::String: return v.str();
    case Kind::Namespace:
    case Kind::Object:
    case Kind::Callable:
    case Kind::Iterator:
    case Kind::None:
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float:
    case Kind::List:
    case Kind::Dict: return repr(v);
  }
  return repr(v);
}

std::string repr(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "None";
    case Kind::Bool: return v.as_bool() ? "True" : "False";
    case Kind::Int: return std::to_string(v.as_int());
    case Kind::Float: return float_repr(v.as_float());
    case Kind::String: return v.markup() ? "Markup(" + repr_string(v.str()) + ")" : repr_string(v.str());
    case Kind::List: {
      const ListData& l = v.list_data();
      std::string out = l.view ? std::string(l.view) + "([" : l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += repr(l.items[i]);
      }
      if (l.tuple && l.items.size() == 1) out += ",";
      out += l.view ? "])" : l.tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, e] : v.dict().items()) {
        if (!first) out += ", ";
        first = false;
        out += repr(k) + ": " + repr(e);
      }
      return out + "}";
    }
    case Kind::Namespace: {
      std::string out = "<Namespace {";
      bool first = true;
      for (const auto& [k, e] : v.ns().attrs) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(k) + ": " + repr(e);
      }
      return out + "}>";
    }
    case Kind::Callable:
      if (v.callable().macro) return "<Macro " + repr_string(v.callable().name) + ">";
      unprintable(v);
    case Kind::Object:
      if (v.object().repr) return v.object().repr();
      unprintable(v);
    case Kind::Iterator: unprintable(v);
  }
  unprintable(v);
}

std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

Value escape(const Value& v) {
  if (v.markup()) return v;
  return Value::string(escape_html(str(v)), true);
}

// ---- json.dumps ---------------------------------------------------------------------------------------

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t c : unicode::decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          if (c > 0xFFFF) {  // UTF-16 surrogate pair, as Python's ensure_ascii writes it
            char32_t u = c - 0x10000;
            out += "\\u";
            append_hex(out, 0xD800 + (u >> 10), 4);
            out += "\\u";
            append_hex(out, 0xDC00 + (u & 0x3FF), 4);
          } else {
            out += "\\u";
            append_hex(out, c, 4);
          }
        } else {
          unicode::append_utf8(out, c);
        }
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return float_repr(d);
}

[[noreturn]] void not_serializable(const Value& v) {
  throw Fault("TypeError: Object of type " + type_name(v) + " is not JSON serializable");
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Kind::String: return k.str();
    case Kind::Bool: return k.as_bool() ? "true" : "false";
    case Kind::None: return "null";
    case Kind::Int: return std::to_string(k.as_int());
    case Kind::Float: return json_float(k.as_float());
    default: throw Fault("TypeError: keys must be str, int, float, bool or None, not " + type_name(k));
  }
}

void json_value(std::string& out, const Value& v, const JsonOptions& opt, int level) {
  auto newline = [&](int lvl) {
    if (!opt.indent) return;
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += *opt.indent;
  };
  switch (v.kind()) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.as_int()); return;
    case Kind::Float: out += json_float(v.as_float()); return;
    case Kind::String: json_string(out, v.str(), opt.ensure_ascii); return;
    case Kind::List: {
      if (v.list_data().view) not_serializable(v);
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += opt.item_separator;
        newline(level + 1);
        json_value(out, items[i], opt, level + 1);
      }
      newline(level);
      out.push_back(']');
      return;
    }
    case Kind::Dict: {
      if (v.dict().size() == 0) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& kv : v.dict().items()) entries.push_back(&kv);
      if (opt.sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return less(a->first, b->first); });
      out.push_back('{');
      bool first = true;
      for (const auto* kv : entries) {
        if (!first) out += opt.item_separator;
        first = false;
        newline(level + 1);
        json_string(out, json_key(kv->first), opt.ensure_ascii);
        out += opt.key_separator;
        json_value(out, kv->second, opt, level + 1);
      }
      newline(level);
      out.push_back('}');
      return;
    }
    default: not_serializable(v);
  }
}

}  // namespace

std::string json_dumps(const Value& v, const JsonOptions& opt) {
  std::string out;
  json_value(out, v, opt, 0);
  return out;
}

}  // namespace moe::jinja::py
