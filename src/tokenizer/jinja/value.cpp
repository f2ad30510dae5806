#include "tokenizer/jinja/value.h"

#include <algorithm>

#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja {

// ---- construction -------------------------------------------------------------------------------------

Value Value::undefined(std::string hint, bool security) {
  Value v;
  v.flag_ = security;
  if (!hint.empty()) v.ptr_ = std::make_shared<std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::Float;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s, bool markup) {
  Value v;
  v.kind_ = Kind::String;
  v.flag_ = markup;
  v.ptr_ = std::make_shared<std::string>(std::move(s));
  return v;
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::List;
  auto d = std::make_shared<ListData>();
  d->items = std::move(items);
  v.ptr_ = std::move(d);
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  static_cast<ListData*>(v.ptr_.get())->tuple = true;
  return v;
}

Value Value::view(std::vector<Value> items, const char* view_name) {
  Value v = list(std::move(items));
  static_cast<ListData*>(v.ptr_.get())->view = view_name;
  return v;
}

Value Value::dict(std::shared_ptr<const DictData> d) {
  Value v;
  v.kind_ = Kind::Dict;
  v.ptr_ = std::const_pointer_cast<DictData>(std::move(d));
  return v;
}

Value Value::dict(DictData d) { return dict(std::make_shared<const DictData>(std::move(d))); }

Value Value::ns(std::shared_ptr<NamespaceData> n) {
  Value v;
  v.kind_ = Kind::Namespace;
  v.ptr_ = std::move(n);
  return v;
}

Value Value::object(std::shared_ptr<ObjectData> o) {
  Value v;
  v.kind_ = Kind::Object;
  v.ptr_ = std::move(o);
  return v;
}

Value Value::callable(std::string name, std::function<Value(CallArgs&)> fn, bool macro) {
  Value v;
  v.kind_ = Kind::Callable;
  auto c = std::make_shared<CallableData>();
  c->name = std::move(name);
  c->macro = macro;
  c->fn = std::move(fn);
  v.ptr_ = std::move(c);
  return v;
}

Value Value::iterator(std::string type_name, std::function<std::optional<Value>()> next) {
  Value v;
  v.kind_ = Kind::Iterator;
  auto it = std::make_shared<IteratorData>();
  it->type_name = std::move(type_name);
  it->next = std::move(next);
  v.ptr_ = std::move(it);
  return v;
}

namespace {
// JSON contexts nest as deep as their writer likes; building Values recurses once per level (and so do str(),
// == and tojson later), so a context nested ~10,000 deep overflowed the stack. Python's json stops near 1000.
constexpr int kMaxJsonDepth = 512;

Value json_to_value(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxJsonDepth)
    throw Fault("the JSON context nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) throw Fault("integer " + std::to_string(u) + " is too large");
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(json_to_value(e, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      DictData d;
      for (const auto& [k, e] : j.items()) d.set(Value::string(k), json_to_value(e, depth + 1));
      return Value::dict(std::move(d));
    }
    default: throw Fault("unsupported JSON value (binary)");
  }
}
}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j) { return json_to_value(j, 1); }

// ---- access -------------------------------------------------------------------------------------------

bool Value::is_tuple() const { return kind_ == Kind::List && list_data().tuple; }
bool Value::is_plain_list() const { return kind_ == Kind::List && !list_data().tuple && !list_data().view; }

const std::string& Value::str() const { return *static_cast<const std::string*>(ptr_.get()); }
const ListData& Value::list_data() const { return *static_cast<const ListData*>(ptr_.get()); }
const std::vector<Value>& Value::items() const { return list_data().items; }
const DictData& Value::dict() const { return *static_cast<const DictData*>(ptr_.get()); }
NamespaceData& Value::ns() const { return *static_cast<NamespaceData*>(ptr_.get()); }
ObjectData& Value::object() const { return *static_cast<ObjectData*>(ptr_.get()); }
const CallableData& Value::callable() const { return *static_cast<const CallableData*>(ptr_.get()); }
IteratorData& Value::iterator() const { return *static_cast<IteratorData*>(ptr_.get()); }

const std::string& Value::undefined_hint() const {
  static const std::string kNone = "value is undefined";
  return ptr_ ? *static_cast<const std::string*>(ptr_.get()) : kNone;
}

void Value::fail_undefined() const {
  throw Fault((flag_ ? "SecurityError: " : "UndefinedError: ") + undefined_hint());
}

// ---- containers ---------------------------------------------------------------------------------------

void check_hashable(const Value& key) {
  if (key.is_dict() || key.is_plain_list() || key.is_namespace())
    throw Fault("TypeError: unhashable type: '" + py::type_name(key) + "'");
  if (key.is_tuple())
    for (const auto& e : key.items()) check_hashable(e);
}

void DictData::set(const Value& key, Value value) {
  check_hashable(key);
  if (key.is_string()) {
    auto it = string_index_.find(key.str());
    if (it != string_index_.end()) {
      items_[it->second].second = std::move(value);
      return;
    }
    string_index_.emplace(key.str(), items_.size());
  } else {
    for (auto& kv : items_)
      if (!kv.first.is_string() && py::equal(kv.first, key)) {
        kv.second = std::move(value);
        return;
      }
  }
  items_.emplace_back(key, std::move(value));
}

const Value* DictData::find(const Value& key) const {
  if (key.is_string()) {
    auto it = string_index_.find(key.str());
    return it == string_index_.end() ? nullptr : &items_[it->second].second;
  }
  check_hashable(key);
  for (const auto& kv : items_)
    if (!kv.first.is_string() && py::equal(kv.first, key)) return &kv.second;
  return nullptr;
}

const Value* NamespaceData::find(const std::string& name) const {
  for (const auto& kv : attrs)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

void NamespaceData::set(const std::string& name, Value v) {
  for (auto& kv : attrs)
    if (kv.first == name) {
      kv.second = std::move(v);
      return;
    }
  attrs.emplace_back(name, std::move(v));
}

std::optional<Value> IteratorData::pull() {
  if (exhausted) return std::nullopt;
  try {
    auto v = next();
    if (!v) exhausted = true;
    return v;
  } catch (...) {  // a Python generator that raised is finished
    exhausted = true;
    throw;
  }
}

// ---- Python built-in semantics ------------------------------------------------------------------------

namespace py {

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return v.as_bool();
    case Kind::Int: return v.as_int() != 0;
    case Kind::Float: return v.as_float() != 0.0;
    case Kind::String: return !v.str().empty();
    case Kind::List: return !v.items().empty();
    case Kind::Dict: return v.dict().size() != 0;
    default: return true;  // objects, callables and generators are always true
  }
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return v.markup() ? "Markup" : "str";
    case Kind::List: return v.list_data().view ? v.list_data().view : v.list_data().tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Object: return v.object().type_name;
    case Kind::Callable: return v.callable().macro ? "Macro" : "function";
    case Kind::Iterator: return v.iterator().type_name;
  }
  return "object";
}

static bool same_sequence_kind(const Value& a, const Value& b) {
  return a.list_data().tuple == b.list_data().tuple && a.list_data().view == b.list_data().view;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_numeric() && b.is_numeric()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.str() == b.str();
    case Kind::List: {
      if (!same_sequence_kind(a, b)) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      if (a.list_data().view && std::string(a.list_data().view) != "dict_values") {  // set-like views
        for (const auto& e : x)
          if (std::none_of(y.begin(), y.end(), [&](const Value& f) { return equal(e, f); })) return false;
        return true;
      }
      if (a.list_data().view) return a.identity() == b.identity();
      for (size_t i = 0; i < x.size(); ++i)
        if (!equal(x[i], y[i])) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.dict().size() != b.dict().size()) return false;
      for (const auto& [k, v] : a.dict().items()) {
        const Value* o = b.dict().find(k);
        if (!o || !equal(v, *o)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_numeric() && b.is_numeric()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order is code point order
  if (a.is_list() && b.is_list() && same_sequence_kind(a, b) && !a.list_data().view) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equal(x[i], y[i])) return less(x[i], y[i]);
    return x.size() < y.size();
  }
  throw Fault("TypeError: '<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) +
              "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::String:
      if (!item.is_string())
        throw Fault("TypeError: 'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::List:
      return std::any_of(container.items().begin(), container.items().end(),
                         [&](const Value& e) { return equal(e, item); });
    case Kind::Dict: return container.dict().find(item) != nullptr;
    case Kind::Undefined: return false;
    case Kind::Iterator:
      while (auto e = container.iterator().pull())
        if (equal(*e, item)) return true;
      return false;
    default: throw Fault("TypeError: argument of type '" + type_name(container) + "' is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return 0;
    case Kind::String: return static_cast<int64_t>(unicode::length(v.str()));
    case Kind::List: return static_cast<int64_t>(v.items().size());
    case Kind::Dict: return static_cast<int64_t>(v.dict().size());
    default: throw Fault("TypeError: object of type '" + type_name(v) + "' has no len()");
  }
}

int64_t index(const Value& v) {
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_integral()) throw Fault("TypeError: '" + type_name(v) + "' object cannot be interpreted as an integer");
  return v.as_int();
}

bool is_iterable(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::String:
    case Kind::List:
    case Kind::Dict:
    case Kind::Iterator: return true;
    default: return false;
  }
}

std::vector<Value> to_list(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::String: {
      std::vector<Value> out;
      for (char32_t c : unicode::decode(v.str())) out.push_back(Value::string(unicode::encode(std::u32string(1, c))));
      return out;
    }
    case Kind::List: return v.items();
    case Kind::Dict: {
      std::vector<Value> out;
      out.reserve(v.dict().size());
      for (const auto& kv : v.dict().items()) out.push_back(kv.first);
      return out;
    }
    case Kind::Iterator: {
      std::vector<Value> out;
      while (auto e = v.iterator().pull()) out.push_back(std::move(*e));
      return out;
    }
    default: throw Fault("TypeError: '" + type_name(v) + "' object is not iterable");
  }
}

std::optional<Value> index_string(const std::string& s, int64_t index) {
  std::u32string cps = unicode::decode(s);
  int64_t n = static_cast<int64_t>(cps.size());
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  return Value::string(unicode::encode(std::u32string(1, cps[static_cast<size_t>(index)])));
}

namespace {
// PySlice_AdjustIndices: clamps start/stop for a sequence of length n.
std::vector<int64_t> slice_positions(int64_t n, std::optional<int64_t> start, std::optional<int64_t> stop,
                                     std::optional<int64_t> step_opt) {
  int64_t step = step_opt.value_or(1);
  if (step == 0) throw Fault("ValueError: slice step cannot be zero");
  int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? n : n - 1;
  auto adjust = [&](std::optional<int64_t> x, int64_t dflt) {
    if (!x) return dflt;
    int64_t v = *x;
    if (v < 0) {
      v += n;
      if (v < lower) v = lower;
    } else if (v > upper) {
      v = upper;
    }
    return v;
  };
  int64_t b = adjust(start, step > 0 ? lower : upper);
  int64_t e = adjust(stop, step > 0 ? upper : lower);
  std::vector<int64_t> out;
  for (int64_t i = b; step > 0 ? i < e : i > e;) {
    out.push_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;  // a huge step leaves the sequence at once
  }
  return out;
}
}  // namespace

Value slice(const Value& v, std::optional<int64_t> start, std::optional<int64_t> stop, std::optional<int64_t> step) {
  if (v.is_string()) {
    std::u32string cps = unicode::decode(v.str());
    std::u32string out;
    for (int64_t i : slice_positions(static_cast<int64_t>(cps.size()), start, stop, step))
      out.push_back(cps[static_cast<size_t>(i)]);
    return Value::string(unicode::encode(out), v.markup());
  }
  if (v.is_list() && !v.list_data().view) {
    std::vector<Value> out;
    const auto& items = v.items();
    for (int64_t i : slice_positions(static_cast<int64_t>(items.size()), start, stop, step))
      out.push_back(items[static_cast<size_t>(i)]);
    return v.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  throw Fault("TypeError: '" + type_name(v) + "' object is not subscriptable");
}

}  // namespace py
}  // namespace moe::jinja
