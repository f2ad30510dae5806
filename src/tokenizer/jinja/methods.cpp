// The Python methods templates call on values (str.strip, dict.items, list.index, ...), bound as callables,
// and the sandbox's refusal of the mutating ones (list.append, dict.pop, ...).
#include <algorithm>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja {
namespace {

using U32 = std::u32string;

bool char_in(char32_t c, const U32* chars) {
  return chars ? chars->find(c) != U32::npos : unicode::is_space(c);
}

U32 strip_cps(const U32& s, const U32* chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && char_in(s[b], chars)) ++b;
  if (right)
    while (e > b && char_in(s[e - 1], chars)) --e;
  return s.substr(b, e - b);
}

std::vector<U32> split_whitespace(const U32& s, int64_t maxsplit, bool from_right) {
  std::vector<U32> out;
  if (!from_right) {
    size_t i = 0, n = s.size();
    while (true) {
      while (i < n && unicode::is_space(s[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(s.substr(i));  // the rest keeps its trailing whitespace, as in Python
        break;
      }
      size_t j = i;
      while (j < n && !unicode::is_space(s[j])) ++j;
      out.push_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  int64_t i = static_cast<int64_t>(s.size()) - 1;
  while (true) {
    while (i >= 0 && unicode::is_space(s[static_cast<size_t>(i)])) --i;
    if (i < 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.push_back(s.substr(0, static_cast<size_t>(i) + 1));
      break;
    }
    int64_t j = i;
    while (j >= 0 && !unicode::is_space(s[static_cast<size_t>(j)])) --j;
    out.push_back(s.substr(static_cast<size_t>(j + 1), static_cast<size_t>(i - j)));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<U32> split_sep(const U32& s, const U32& sep, int64_t maxsplit, bool from_right) {
  if (sep.empty()) throw Fault("ValueError: empty separator");
  std::vector<U32> out;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t p = s.find(sep, start);
      if (p == U32::npos) break;
      out.push_back(s.substr(start, p - start));
      start = p + sep.size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    size_t p = s.rfind(sep, end - sep.size());
    if (p == U32::npos) break;
    out.push_back(s.substr(p + sep.size(), end - p - sep.size()));
    end = p;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<U32> splitlines(const U32& s, bool keepends) {
  std::vector<U32> out;
  size_t i = 0, start = 0;
  while (i < s.size()) {
    if (!unicode::is_line_break(s[i])) {
      ++i;
      continue;
    }
    size_t eol = i;
    i += (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
    out.push_back(s.substr(start, (keepends ? i : eol) - start));
    start = i;
  }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

// Python's str.title(): title-case a character that follows an uncased one, lower-case the rest.
U32 title_case(const U32& s) {
  U32 out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (prev_cased) unicode::append_lower_at(out, s, i);
    else unicode::append_title(out, s[i]);
    prev_cased = unicode::is_cased(s[i]);
  }
  return out;
}

// Clamps Python's optional start/end arguments of find/count/startswith to code point offsets.
std::pair<size_t, size_t> span(const U32& s, const std::optional<Value>& start, const std::optional<Value>& end) {
  int64_t n = static_cast<int64_t>(s.size());
  auto fix = [&](const std::optional<Value>& v, int64_t dflt) {
    if (!v || v->is_none()) return dflt;
    if (!v->is_integral()) throw Fault("TypeError: slice indices must be integers or None");
    int64_t x = v->as_int();
    if (x < 0) x = std::max<int64_t>(0, x + n);
    return std::min(x, n);
  };
  return {static_cast<size_t>(fix(start, 0)), static_cast<size_t>(fix(end, n))};
}

U32 arg_string(const std::optional<Value>& v, const char* what) {
  if (!v || !v->is_string())
    throw Fault(std::string("TypeError: ") + what + " must be str, not " + (v ? py::type_name(*v) : "nothing"));
  return unicode::decode(v->str());
}

// Each group below handles some of Python's str methods and returns nullopt for the others. Methods of a
// Markup return Markup, as markupsafe wraps them.

// upper/lower/title/... and the is* classifiers.
std::optional<Value> str_case_method(const Value& self, const std::string& name, CallArgs& a) {
  const bool mk = self.markup();
  auto S = [&](const U32& s) { return Value::string(unicode::encode(s), mk); };
  const U32 s = unicode::decode(self.str());
  auto args = [&](std::vector<const char*> names, size_t required) { return bind_args(name, a, names, required); };
  if (name == "upper") return args({}, 0), S(unicode::to_upper(s));
  if (name == "lower" || name == "casefold") return args({}, 0), S(unicode::to_lower(s));
  if (name == "title") return args({}, 0), S(title_case(s));
  if (name == "capitalize") {
    args({}, 0);
    U32 out;  // str.capitalize(): the first character title-cased, the rest lower-cased
    for (size_t i = 0; i < s.size(); ++i) {
      if (i) unicode::append_lower_at(out, s, i);
      else unicode::append_title(out, s[i]);
    }
    return S(out);
  }
  if (name == "swapcase") {
    args({}, 0);
    U32 out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (unicode::is_upper(s[i])) unicode::append_lower_at(out, s, i);
      else if (unicode::is_lower(s[i])) unicode::append_upper(out, s[i]);
      else out.push_back(s[i]);
    }
    return S(out);
  }
  auto all_of = [&](bool (*pred)(char32_t)) {
    args({}, 0);
    return Value::boolean(!s.empty() && std::all_of(s.begin(), s.end(), pred));
  };
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") return all_of(unicode::is_digit);
  if (name == "isalpha") return all_of(unicode::is_alpha);
  if (name == "isalnum") return all_of(unicode::is_alnum);
  if (name == "isspace") return all_of(unicode::is_space);
  if (name == "isprintable") {
    args({}, 0);
    return Value::boolean(std::all_of(s.begin(), s.end(), unicode::is_printable));
  }
  if (name == "isascii") {
    args({}, 0);
    return Value::boolean(std::all_of(s.begin(), s.end(), [](char32_t c) { return c < 0x80; }));
  }
  if (name == "isupper" || name == "islower") {
    args({}, 0);
    bool any_cased = false, ok = true;
    for (char32_t c : s) {
      bool up = unicode::is_upper(c), lo = unicode::is_lower(c);
      any_cased |= up || lo;
      if (name == "isupper" ? lo : up) ok = false;
    }
    return Value::boolean(any_cased && ok);
  }
  return std::nullopt;
}
// strip, split, splitlines, partition, removeprefix/removesuffix.
std::optional<Value> str_split_method(const Value& self, const std::string& name, CallArgs& a) {
  const bool mk = self.markup();
  auto S = [&](const U32& s) { return Value::string(unicode::encode(s), mk); };
  auto list_of = [&](const std::vector<U32>& parts) {
    std::vector<Value> out;
    for (const auto& p : parts) out.push_back(S(p));
    return Value::list(std::move(out));
  };
  const U32 s = unicode::decode(self.str());
  auto args = [&](std::vector<const char*> names, size_t required) { return bind_args(name, a, names, required); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto v = args({"chars"}, 0);
    U32 chars;
    bool have = v[0] && !v[0]->is_none();
    if (have) chars = arg_string(v[0], "strip arg");
    return S(strip_cps(s, have ? &chars : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    auto v = args({"sep", "maxsplit"}, 0);
    int64_t maxsplit = v[1] ? py::index(*v[1]) : -1;
    bool right = name == "rsplit";
    if (!v[0] || v[0]->is_none()) return list_of(split_whitespace(s, maxsplit, right));
    return list_of(split_sep(s, arg_string(v[0], "separator"), maxsplit, right));
  }
  if (name == "splitlines") {
    auto v = args({"keepends"}, 0);
    return list_of(splitlines(s, v[0] && py::truthy(*v[0])));
  }
  if (name == "partition" || name == "rpartition") {
    auto v = args({"sep"}, 1);
    U32 sep = arg_string(v[0], "separator");
    if (sep.empty()) throw Fault("ValueError: empty separator");
    size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (p == U32::npos)
      return name == "partition" ? Value::tuple({S(s), S(U32()), S(U32())}) : Value::tuple({S(U32()), S(U32()), S(s)});
    return Value::tuple({S(s.substr(0, p)), S(sep), S(s.substr(p + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    auto v = args({"affix"}, 1);
    U32 fix = arg_string(v[0], "argument");
    if (name == "removeprefix" && s.compare(0, fix.size(), fix) == 0 && s.size() >= fix.size())
      return S(s.substr(fix.size()));
    if (name == "removesuffix" && !fix.empty() && s.size() >= fix.size() &&
        s.compare(s.size() - fix.size(), fix.size(), fix) == 0)
      return S(s.substr(0, s.size() - fix.size()));
    return S(s);
  }
  return std::nullopt;
}
// startswith/endswith, replace, find/index/count, join.
std::optional<Value> str_search_method(const Value& self, const std::string& name, CallArgs& a) {
  const bool mk = self.markup();
  auto S = [&](const U32& s) { return Value::string(unicode::encode(s), mk); };
  const U32 s = unicode::decode(self.str());
  auto args = [&](std::vector<const char*> names, size_t required) { return bind_args(name, a, names, required); };
  if (name == "startswith" || name == "endswith") {
    auto v = args({"prefix", "start", "end"}, 1);
    auto [b, e] = span(s, v[1], v[2]);
    U32 part = b <= e ? s.substr(b, e - b) : U32();
    std::vector<Value> options = v[0]->is_tuple() ? v[0]->items() : std::vector<Value>{*v[0]};
    for (const auto& o : options) {
      U32 p = arg_string(o, name == "startswith" ? "startswith arg" : "endswith arg");
      if (b > e) continue;
      bool hit = name == "startswith" ? part.compare(0, p.size(), p) == 0 && part.size() >= p.size()
                                      : part.size() >= p.size() && part.compare(part.size() - p.size(), p.size(), p) == 0;
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "replace") {
    auto v = args({"old", "new", "count"}, 2);
    U32 from = arg_string(v[0], "replace arg 1"), to = arg_string(v[1], "replace arg 2");
    int64_t count = v[2] ? py::index(*v[2]) : -1;
    U32 out;
    size_t pos = 0;
    int64_t done = 0;
    if (from.empty()) {
      for (size_t i = 0; i <= s.size(); ++i) {
        if (count < 0 || done < count) out += to, ++done;
        if (i < s.size()) out.push_back(s[i]);
      }
      return S(out);
    }
    while (count < 0 || done < count) {
      size_t p = s.find(from, pos);
      if (p == U32::npos) break;
      out += s.substr(pos, p - pos) + to;
      pos = p + from.size();
      ++done;
    }
    return S(out + s.substr(pos));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    auto v = args({"sub", "start", "end"}, 1);
    U32 sub = arg_string(v[0], "must be str");
    auto [b, e] = span(s, v[1], v[2]);
    if (name == "count") {
      if (b > e) return Value::integer(0);
      if (sub.empty()) return Value::integer(static_cast<int64_t>(e - b + 1));
      int64_t n = 0;
      for (size_t p = s.find(sub, b); p != U32::npos && p + sub.size() <= e; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    int64_t found = -1;
    if (b <= e && sub.size() <= e - b) {
      U32 part = s.substr(b, e - b);
      size_t p = name[0] == 'r' ? part.rfind(sub) : part.find(sub);
      if (p != U32::npos) found = static_cast<int64_t>(p + b);
    }
    if (found < 0 && (name == "index" || name == "rindex")) throw Fault("ValueError: substring not found");
    return Value::integer(found);
  }
  if (name == "join") {
    auto v = args({"iterable"}, 1);
    std::string sep = mk ? py::escape(self).str() : self.str();
    std::string out;
    size_t i = 0;
    for (const auto& item : py::to_list(*v[0])) {
      if (!item.is_string())
        throw Fault("TypeError: sequence item " + std::to_string(i) + ": expected str instance, " +
                    py::type_name(item) + " found");
      if (i++) out += sep;
      out += mk ? py::escape(item).str() : item.str();
    }
    return Value::string(out, mk);
  }
  return std::nullopt;
}
// format/format_map and the padding methods.
std::optional<Value> str_format_method(const Value& self, const std::string& name, CallArgs& a) {
  const bool mk = self.markup();
  auto S = [&](const U32& s) { return Value::string(unicode::encode(s), mk); };
  const U32 s = unicode::decode(self.str());
  auto args = [&](std::vector<const char*> names, size_t required) { return bind_args(name, a, names, required); };
  if (name == "format" || name == "format_map") {
    CallArgs call = a;
    if (name == "format_map") {
      auto v = args({"mapping"}, 1);
      call = {};
      if (!v[0]->is_dict()) throw Fault("TypeError: format_map() argument must be a mapping");
      for (const auto& [k, x] : v[0]->dict().items()) call.kwargs.emplace_back(py::str(k), x);
    }
    if (mk) {
      for (auto& x : call.args) x = x.is_string() ? py::escape(x) : x;
      for (auto& kv : call.kwargs) kv.second = kv.second.is_string() ? py::escape(kv.second) : kv.second;
    }
    return Value::string(py::str_format(self.str(), call), mk);
  }
  if (name == "ljust" || name == "rjust" || name == "center") {
    auto v = args({"width", "fillchar"}, 1);
    int64_t width = py::index(*v[0]);
    char32_t fill = ' ';
    if (v[1]) {
      U32 f = arg_string(v[1], "fillchar");
      if (f.size() != 1) throw Fault("TypeError: The fill character must be exactly one character long");
      fill = f[0];
    }
    int64_t len = static_cast<int64_t>(s.size());
    if (width <= len) return S(s);
    py::check_built_size(static_cast<uint64_t>(width), name + "(" + std::to_string(width) + ")");
    int64_t marg = width - len;
    int64_t left = name == "ljust" ? 0 : name == "rjust" ? marg : marg / 2 + (marg & width & 1);
    return S(U32(static_cast<size_t>(left), fill) + s + U32(static_cast<size_t>(marg - left), fill));
  }
  if (name == "zfill") {
    auto v = args({"width"}, 1);
    int64_t width = py::index(*v[0]), len = static_cast<int64_t>(s.size());
    if (width <= len) return S(s);
    py::check_built_size(static_cast<uint64_t>(width), "zfill(" + std::to_string(width) + ")");
    U32 out = s;
    size_t at = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    out.insert(at, static_cast<size_t>(width - len), U'0');
    return S(out);
  }
  return std::nullopt;
}
// markupsafe.Markup escapes the string arguments of the methods it wraps (any argument of partition).
void escape_markup_args(const std::string& name, CallArgs& a) {
  static const char* const kWrapped[] = {"replace", "ljust", "rjust", "lstrip", "rstrip", "center", "strip", "zfill"};
  bool partition = name == "partition" || name == "rpartition";
  if (!partition && std::find(std::begin(kWrapped), std::end(kWrapped), name) == std::end(kWrapped)) return;
  auto esc = [&](Value& v) {
    if (partition || v.is_string()) v = py::escape(v);
  };
  for (auto& v : a.args) esc(v);
  for (auto& kv : a.kwargs) esc(kv.second);
}

Value str_method(const Value& self, const std::string& name, CallArgs& a) {
  CallArgs escaped;
  if (self.markup()) {
    escaped = a;
    escape_markup_args(name, escaped);
  }
  CallArgs& args = self.markup() ? escaped : a;
  for (auto* group : {str_case_method, str_split_method, str_search_method, str_format_method})
    if (auto r = group(self, name, args)) return *r;
  throw Fault("unsupported: the str method '" + name + "'");
}

bool is_str_method(const std::string& n) {
  static const char* kNames[] = {
      "upper", "lower", "casefold", "title", "capitalize", "swapcase", "strip", "lstrip", "rstrip", "split",
      "rsplit", "splitlines", "startswith", "endswith", "replace", "find", "rfind", "index", "rindex", "count",
      "join", "format", "format_map", "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace",
      "isprintable", "isascii", "isupper", "islower", "ljust", "rjust", "center", "zfill", "partition",
      "rpartition", "removeprefix", "removesuffix", "encode", "expandtabs", "istitle", "isidentifier",
      "maketrans", "translate"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

Value dict_method(Interpreter&, const Value& self, const std::string& name, CallArgs& a) {
  const DictData& d = self.dict();
  if (name == "items" || name == "keys" || name == "values") {
    bind_args(name, a, {}, 0);
    std::vector<Value> out;
    for (const auto& [k, v] : d.items())
      out.push_back(name == "items" ? Value::tuple({k, v}) : name == "keys" ? k : v);
    return Value::view(std::move(out), name == "items" ? "dict_items" : name == "keys" ? "dict_keys" : "dict_values");
  }
  if (name == "get") {
    auto v = bind_args(name, a, {"key", "default"}, 1);
    if (const Value* found = d.find(*v[0])) return *found;
    return v[1] ? *v[1] : Value::none();
  }
  if (name == "copy") {
    bind_args(name, a, {}, 0);
    return self;
  }
  throw Fault("unsupported: the dict method '" + name + "'");
}

Value list_method(const Value& self, const std::string& name, CallArgs& a) {
  const auto& items = self.items();
  if (name == "count") {
    auto v = bind_args(name, a, {"value"}, 1);
    return Value::integer(std::count_if(items.begin(), items.end(), [&](const Value& x) { return py::equal(x, *v[0]); }));
  }
  if (name == "index") {
    auto v = bind_args(name, a, {"value", "start", "stop"}, 1);
    int64_t n = static_cast<int64_t>(items.size());
    auto clamp = [&](const std::optional<Value>& x, int64_t dflt) {
      if (!x) return dflt;
      int64_t i = py::index(*x);
      if (i < 0) i = std::max<int64_t>(0, i + n);
      return std::min(i, n);
    };
    for (int64_t i = clamp(v[1], 0); i < clamp(v[2], n); ++i)
      if (py::equal(items[static_cast<size_t>(i)], *v[0])) return Value::integer(i);
    throw Fault("ValueError: " + py::repr(*v[0]) + " is not in " + py::type_name(self));
  }
  if (name == "copy") {
    bind_args(name, a, {}, 0);
    return Value::list(items);
  }
  throw Fault("unsupported: the list method '" + name + "'");
}

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + py::type_name(obj) + "' object is unsafe.", true);
}

Value bind_method(const Value& self, const std::string& name, std::function<Value(const Value&, CallArgs&)> fn) {
  return Value::callable(name, [self, fn](CallArgs& a) { return fn(self, a); });
}

}  // namespace

std::optional<Value> python_attribute(Interpreter& interp, const Value& obj, const std::string& name) {
  if (name.size() > 4 && name.compare(0, 2, "__") == 0 && name.compare(name.size() - 2, 2, "__") == 0)
    return unsafe(obj, name);  // every Python object has dunder attributes; the sandbox refuses them all
  switch (obj.kind()) {
    case Kind::String:
      if (!is_str_method(name)) return std::nullopt;
      return bind_method(obj, name, [name](const Value& self, CallArgs& a) { return str_method(self, name, a); });
    case Kind::Dict:
      if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear")
        return unsafe(obj, name);
      if (name == "items" || name == "keys" || name == "values" || name == "get" || name == "copy")
        return bind_method(obj, name, [&interp, name](const Value& self, CallArgs& a) {
          return dict_method(interp, self, name, a);
        });
      if (name == "fromkeys") throw Fault("unsupported: dict.fromkeys");
      return std::nullopt;
    case Kind::List:
      if (obj.list_data().view) return std::nullopt;
      if (!obj.is_tuple() && (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
                              name == "remove" || name == "reverse" || name == "sort" || name == "clear"))
        return unsafe(obj, name);
      if (name == "count" || name == "index" || (!obj.is_tuple() && name == "copy"))
        return bind_method(obj, name, [name](const Value& self, CallArgs& a) { return list_method(self, name, a); });
      return std::nullopt;
    case Kind::Namespace:
      if (const Value* v = obj.ns().find(name)) return *v;
      return std::nullopt;
    case Kind::Object: return obj.object().get_attr(name);
    case Kind::Float:
      if (name == "is_integer")
        return bind_method(obj, name, [](const Value& self, CallArgs& a) {
          bind_args("is_integer", a, {}, 0);
          return Value::boolean(std::floor(self.as_float()) == self.as_float());
        });
      if (name == "real") return obj;
      return std::nullopt;
    case Kind::Int:
    case Kind::Bool:
      if (name == "real" || name == "numerator") return Value::integer(obj.as_int());
      if (name == "denominator") return Value::integer(1);
      if (name == "imag") return Value::integer(0);
      return std::nullopt;
    default: return std::nullopt;
  }
}

std::vector<std::optional<Value>> bind_args(const std::string& fname, const CallArgs& call,
                                            const std::vector<const char*>& names, size_t required) {
  std::vector<std::optional<Value>> out(names.size());
  if (call.args.size() > names.size())
    throw Fault("TypeError: " + fname + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
                std::to_string(call.args.size()) + " given)");
  for (size_t i = 0; i < call.args.size(); ++i) out[i] = call.args[i];
  for (const auto& [key, v] : call.kwargs) {
    const auto& k = key;  // clang 14 cannot capture structured bindings
    auto it = std::find_if(names.begin(), names.end(), [&](const char* n) { return k == n; });
    if (it == names.end()) throw Fault("TypeError: " + fname + "() got an unexpected keyword argument '" + k + "'");
    size_t i = static_cast<size_t>(it - names.begin());
    if (out[i]) throw Fault("TypeError: " + fname + "() got multiple values for argument '" + k + "'");
    out[i] = v;
  }
  for (size_t i = 0; i < required; ++i)
    if (!out[i]) throw Fault("TypeError: " + fname + "() missing required argument '" + names[i] + "'");
  return out;
}

}  // namespace moe::jinja
