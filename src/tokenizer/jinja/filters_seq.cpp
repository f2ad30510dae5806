// Jinja2's filters over sequences: many return generators (map, select, unique, batch, ...), which are
// consumed once and have no len(), exactly as in Python.
#include <algorithm>
#include <charconv>
#include <cstdint>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja {

Value ignore_case(const Value& v) { return v.is_string() ? Value::string(unicode::to_lower(v.str())) : v; }

std::function<Value(const Value&)> make_attrgetter(Interpreter& interp, const Value& attribute,
                                                   std::optional<Value> dflt) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    std::string a = attribute.str();
    size_t start = 0;
    while (true) {
      size_t dot = a.find('.', start);
      std::string part = a.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      int64_t index = 0;
      if (digits && std::from_chars(part.data(), part.data() + part.size(), index).ec != std::errc())
        throw Fault("unsupported: attribute part " + part + " does not fit in a signed 64-bit integer");
      parts.push_back(digits ? Value::integer(index) : Value::string(part));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  } else if (!attribute.is_none()) {
    parts.push_back(attribute);
  }
  return [&interp, parts, dflt](const Value& item) {
    Value v = item;
    for (const auto& p : parts) {
      v = interp.getitem(v, p);
      if (dflt && v.is_undefined()) v = *dflt;
    }
    return v;
  };
}

std::function<std::optional<Value>()> make_source(const Value& v) {
  if (v.is_iterator()) {
    Value it = v;
    return [it]() { return it.iterator().pull(); };
  }
  struct State {
    Value v;
    std::vector<Value> items;
    size_t i = 0;
    bool started = false;
  };
  auto st = std::make_shared<State>();
  st->v = v;
  return [st]() -> std::optional<Value> {
    if (!st->started) {
      st->started = true;
      if (!py::is_iterable(st->v))
        throw Fault("TypeError: '" + py::type_name(st->v) + "' object is not iterable");
      st->items = py::to_list(st->v);
    }
    if (st->i >= st->items.size()) return std::nullopt;
    return st->items[st->i++];
  };
}

namespace {

Value generator(std::function<std::optional<Value>()> next) { return Value::iterator("generator", std::move(next)); }

using Cursor = std::function<std::optional<Value>()>;

// A Python generator function's body runs at the first next(), not at the call: `make` builds the real
// cursor then, so argument errors and `if value:` checks happen when the generator is consumed.
Value lazy_generator(std::function<Cursor()> make) {
  auto cursor = std::make_shared<Cursor>();
  return generator([make, cursor]() -> std::optional<Value> {
    if (!*cursor) *cursor = make();
    return (*cursor)();
  });
}

Cursor empty_cursor() {
  return [] { return std::optional<Value>(); };
}

std::vector<Value> sorted(std::vector<Value> items, const std::function<Value(const Value&)>& key, bool reverse) {
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& x : items) keyed.emplace_back(key(x), std::move(x));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? py::less(b.first, a.first) : py::less(a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

// Jinja2's prepare_select_or_reject: the test to run on each item (or its attribute).
std::function<bool(const Value&)> select_func(Interpreter& interp, CallArgs& args, bool lookup_attr) {
  std::vector<Value> rest = args.args;
  std::function<Value(const Value&)> trans = [](const Value& x) { return x; };
  if (lookup_attr) {
    if (rest.empty()) throw Fault("FilterArgumentError: Missing parameter for attribute name");
    trans = make_attrgetter(interp, rest[0]);
    rest.erase(rest.begin());
  }
  if (rest.empty()) return [trans](const Value& x) { return py::truthy(trans(x)); };
  if (!rest[0].is_string()) throw Fault("TypeError: test name must be a string");
  std::string test = rest[0].str();
  CallArgs targs;
  targs.args.assign(rest.begin() + 1, rest.end());
  targs.kwargs = args.kwargs;
  return [&interp, trans, test, targs](const Value& x) {
    CallArgs a = targs;
    return interp.call_test(test, trans(x), a);
  };
}

Value select_or_reject(Interpreter& interp, const Value& v, CallArgs& args, bool lookup_attr, bool select) {
  return lazy_generator([&interp, v, args, lookup_attr, select]() -> Cursor {
    if (!py::truthy(v)) return empty_cursor();
    CallArgs a = args;
    auto fn = select_func(interp, a, lookup_attr);
    auto src = make_source(v);
    return [src, fn, select]() -> std::optional<Value> {
      while (auto x = src())
        if (fn(*x) == select) return x;
      return std::nullopt;
    };
  });
}

// Jinja2's prepare_map: attribute= (with an optional default=) or a filter name and its arguments.
std::function<Value(const Value&)> map_func(Interpreter& interp, const CallArgs& args) {
  auto attr = std::find_if(args.kwargs.begin(), args.kwargs.end(), [](const auto& kv) { return kv.first == "attribute"; });
  if (args.args.empty() && attr != args.kwargs.end()) {
    std::optional<Value> dflt;
    for (const auto& [k, x] : args.kwargs) {
      if (k == "default") dflt = x;
      else if (k != "attribute") throw Fault("FilterArgumentError: Unexpected keyword argument '" + k + "'");
    }
    if (dflt && dflt->is_none()) dflt.reset();
    return make_attrgetter(interp, attr->second, dflt);
  }
  if (args.args.empty()) throw Fault("FilterArgumentError: map requires a filter argument");
  if (!args.args[0].is_string()) throw Fault("TemplateRuntimeError: No filter named " + py::repr(args.args[0]) + ".");
  std::string name = args.args[0].str();
  CallArgs fargs;
  fargs.args.assign(args.args.begin() + 1, args.args.end());
  fargs.kwargs = args.kwargs;
  return [&interp, name, fargs](const Value& x) {
    CallArgs a = fargs;
    return interp.call_filter(name, x, a);
  };
}

Value do_map(Interpreter& interp, const Value& v, CallArgs& args) {
  return lazy_generator([&interp, v, args]() -> Cursor {
    if (!py::truthy(v)) return empty_cursor();
    auto fn = map_func(interp, args);
    auto src = make_source(v);
    return [src, fn]() -> std::optional<Value> {
      auto x = src();
      if (!x) return std::nullopt;
      return fn(*x);
    };
  });
}

// do_batch, line by line: rows of `linecount` items, the last padded with fill_with when given.
Value do_batch(const Value& v, CallArgs& args) {
  auto a = bind_args("batch", args, {"linecount", "fill_with"}, 1);
  Value linecount = *a[0];
  std::optional<Value> fill;
  if (a[1] && !a[1]->is_none()) fill = a[1];
  return lazy_generator([v, linecount, fill]() -> Cursor {
    auto src = make_source(v);
    auto done = std::make_shared<bool>(false);
    auto tmp = std::make_shared<std::vector<Value>>();
    return [src, linecount, fill, done, tmp]() -> std::optional<Value> {
      if (*done) return std::nullopt;
      while (auto item = src()) {
        std::optional<Value> out;
        if (py::equal(Value::integer(static_cast<int64_t>(tmp->size())), linecount)) {
          out = Value::list(std::move(*tmp));
          tmp->clear();
        }
        tmp->push_back(std::move(*item));
        if (out) return out;
      }
      *done = true;
      if (tmp->empty()) return std::nullopt;
      if (fill && py::less(Value::integer(static_cast<int64_t>(tmp->size())), linecount))
        while (py::less(Value::integer(static_cast<int64_t>(tmp->size())), linecount)) tmp->push_back(*fill);
      return Value::list(std::move(*tmp));
    };
  });
}

// sync_do_slice: `slices` columns, the first len % slices of them one item longer.
Value do_slice(const Value& v, CallArgs& args) {
  auto a = bind_args("slice", args, {"slices", "fill_with"}, 1);
  Value slices_v = *a[0];
  std::optional<Value> fill;
  if (a[1] && !a[1]->is_none()) fill = a[1];
  return lazy_generator([v, slices_v, fill]() -> Cursor {
    std::vector<Value> items = py::to_list(v);
    int64_t n = py::index(slices_v);
    if (n == 0) throw Fault("ZeroDivisionError: integer division or modulo by zero");
    int64_t len = static_cast<int64_t>(items.size());
    int64_t per = len / n, extra = len % n;  // Python floor semantics for negative n are not reproduced
    if (n < 0) throw Fault("unsupported: slice() with a negative count");
    auto groups = std::make_shared<std::vector<Value>>();
    int64_t offset = 0;
    for (int64_t k = 0; k < n; ++k) {
      int64_t start = offset + k * per;
      if (k < extra) ++offset;
      int64_t end = offset + (k + 1) * per;
      std::vector<Value> g(items.begin() + start, items.begin() + end);
      if (fill && k >= extra) g.push_back(*fill);
      groups->push_back(Value::list(std::move(g)));
    }
    auto i = std::make_shared<size_t>(0);
    return [groups, i]() -> std::optional<Value> {
      if (*i >= groups->size()) return std::nullopt;
      return (*groups)[(*i)++];
    };
  });
}

Value min_max(Interpreter& interp, const Value& v, CallArgs& args, bool is_max, const std::string& name) {
  auto a = bind_args(name, args, {"case_sensitive", "attribute"}, 0);
  std::vector<Value> items = py::to_list(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  bool cs = a[0] && py::truthy(*a[0]);
  auto get = make_attrgetter(interp, a[1] ? *a[1] : Value::none());
  auto key = [&](const Value& x) { return cs ? get(x) : ignore_case(get(x)); };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (is_max ? py::less(best_key, k) : py::less(k, best_key)) best = i, best_key = k;
  }
  return items[best];
}

// list, first, last, reverse, join, sum.
std::optional<Value> basic_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  if (name == "list") {
    bind_args(name, args, {}, 0);
    return Value::list(py::to_list(v));
  }
  if (name == "first") {
    bind_args(name, args, {}, 0);
    auto x = make_source(v)();
    return x ? *x : Value::undefined("No first item, sequence was empty.");
  }
  if (name == "last") {
    bind_args(name, args, {}, 0);
    if (v.is_iterator()) throw Fault("TypeError: '" + py::type_name(v) + "' object is not reversible");
    std::vector<Value> items = py::to_list(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (name == "reverse") {
    bind_args(name, args, {}, 0);
    if (v.is_string()) return py::slice(v, std::nullopt, std::nullopt, -1);
    std::vector<Value> items = py::to_list(v);
    std::reverse(items.begin(), items.end());
    if (v.is_iterator()) return Value::list(std::move(items));  // reversed() fails; Jinja2 falls back to a list
    auto st = std::make_shared<std::pair<std::vector<Value>, size_t>>(std::move(items), 0);
    const char* type = v.is_dict() ? "dict_reversekeyiterator" : "list_reverseiterator";
    return Value::iterator(type, [st]() -> std::optional<Value> {
      if (st->second >= st->first.size()) return std::nullopt;
      return st->first[st->second++];
    });
  }
  if (name == "join") {
    auto a = bind_args(name, args, {"d", "attribute"}, 0);
    std::string sep = a[0] ? py::str(*a[0]) : "";
    std::function<Value(const Value&)> get = [](const Value& x) { return x; };
    if (a[1] && !a[1]->is_none()) get = make_attrgetter(interp, *a[1]);
    std::string out;
    bool first = true;
    auto src = make_source(v);
    while (auto x = src()) {
      if (!first) out += sep;
      first = false;
      out += py::str(get(*x));
    }
    return Value::string(std::move(out));
  }
  if (name == "sum") {
    auto a = bind_args(name, args, {"attribute", "start"}, 0);
    Value total = a[1] ? *a[1] : Value::integer(0);
    if (total.is_string()) throw Fault("TypeError: sum() can't sum strings [use ''.join(seq) instead]");
    std::function<Value(const Value&)> get = [](const Value& x) { return x; };
    if (a[0] && !a[0]->is_none()) get = make_attrgetter(interp, *a[0]);
    auto src = make_source(v);
    while (auto x = src()) total = binary_op("+", total, get(*x));
    return total;
  }
  return std::nullopt;
}

// sort, dictsort, min, max (case-insensitive unless asked).
std::optional<Value> ordering_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  if (name == "sort") {
    auto a = bind_args(name, args, {"reverse", "case_sensitive", "attribute"}, 0);
    bool reverse = a[0] && py::index(*a[0]) != 0;  // sorted(reverse=...) takes an int
    bool cs = a[1] && py::truthy(*a[1]);
    std::vector<std::function<Value(const Value&)>> getters;
    if (a[2] && a[2]->is_string()) {
      std::string attrs = a[2]->str();
      size_t start = 0;
      while (true) {
        size_t comma = attrs.find(',', start);
        getters.push_back(make_attrgetter(interp, Value::string(attrs.substr(start, comma - start))));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      getters.push_back(make_attrgetter(interp, a[2] ? *a[2] : Value::none()));
    }
    auto key = [&](const Value& x) {
      std::vector<Value> parts;
      for (auto& g : getters) parts.push_back(cs ? g(x) : ignore_case(g(x)));
      return Value::list(std::move(parts));
    };
    return Value::list(sorted(py::to_list(v), key, reverse));
  }
  if (name == "dictsort") {
    auto a = bind_args(name, args, {"case_sensitive", "by", "reverse"}, 0);
    if (!v.is_dict()) throw Fault("AttributeError: '" + py::type_name(v) + "' object has no attribute 'items'");
    bool cs = a[0] && py::truthy(*a[0]);
    std::string by = a[1] ? py::str(*a[1]) : "key";
    if (by != "key" && by != "value")
      throw Fault("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
    size_t pos = by == "key" ? 0 : 1;
    std::vector<Value> items;
    for (const auto& [k, x] : v.dict().items()) items.push_back(Value::tuple({k, x}));
    auto key = [&](const Value& t) { return cs ? t.items()[pos] : ignore_case(t.items()[pos]); };
    return Value::list(sorted(std::move(items), key, a[2] && py::index(*a[2]) != 0));
  }
  if (name == "min" || name == "max") return min_max(interp, v, args, name == "max", name);
  return std::nullopt;
}

// The filters that return generators: unique, map, select*, reject*, items, batch, slice.
std::optional<Value> generator_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  if (name == "unique") {
    auto a = bind_args(name, args, {"case_sensitive", "attribute"}, 0);
    return lazy_generator([&interp, v, a]() -> Cursor {
      bool cs = a[0] && py::truthy(*a[0]);
      auto get = make_attrgetter(interp, a[1] ? *a[1] : Value::none());
      auto src = make_source(v);
      auto seen = std::make_shared<std::vector<Value>>();
      return [src, get, cs, seen]() -> std::optional<Value> {
        while (auto x = src()) {
          Value k = cs ? get(*x) : ignore_case(get(*x));
          check_hashable(k);
          if (std::none_of(seen->begin(), seen->end(), [&](const Value& s) { return py::equal(s, k); })) {
            seen->push_back(k);
            return x;
          }
        }
        return std::nullopt;
      };
    });
  }
  if (name == "map") return do_map(interp, v, args);
  if (name == "select" || name == "reject") return select_or_reject(interp, v, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr")
    return select_or_reject(interp, v, args, true, name == "selectattr");
  if (name == "items") {
    bind_args(name, args, {}, 0);
    return lazy_generator([v]() -> Cursor {
      if (v.is_undefined()) return empty_cursor();
      if (!v.is_dict()) throw Fault("TypeError: Can only get item pairs from a mapping.");
      auto i = std::make_shared<size_t>(0);
      return [v, i]() -> std::optional<Value> {
        const auto& items = v.dict().items();
        if (*i >= items.size()) return std::nullopt;
        const auto& kv = items[(*i)++];
        return Value::tuple({kv.first, kv.second});
      };
    });
  }
  if (name == "batch") return do_batch(v, args);
  if (name == "slice") return do_slice(v, args);
  return std::nullopt;
}

}  // namespace

std::optional<Value> apply_sequence_filter(Interpreter& interp, const std::string& name, const Value& v,
                                           CallArgs& args) {
  for (auto* group : {basic_filter, ordering_filter, generator_filter})
    if (auto r = group(interp, name, v, args)) return r;
  return std::nullopt;
}

}  // namespace moe::jinja
