// The values a template computes with: Python's object model cut down to what Jinja2 templates see
// (None, bool, int, float, str/Markup, list/tuple, dict, Undefined, namespace, callables, generators).
// Lists and dicts are immutable once built (ImmutableSandboxedEnvironment forbids mutating them), so they
// are shared by pointer; namespaces, loop objects and generators are mutable and shared by reference,
// exactly as Python aliases them.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moe::jinja {

// A Python exception raised while evaluating (TypeError, UndefinedError, SecurityError, ...); the
// interpreter turns it into a TemplateRuntimeError that names the template line.
class Fault : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Object, Callable, Iterator };

class Value;
struct ListData;
class DictData;
struct NamespaceData;
struct ObjectData;
struct CallableData;
struct IteratorData;

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

class Value {
 public:
  Value() = default;  // Undefined
  static Value undefined(std::string hint, bool security = false);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s, bool markup = false);
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value view(std::vector<Value> items, const char* view_name);
  static Value dict(std::shared_ptr<const DictData> d);
  static Value dict(DictData d);
  static Value ns(std::shared_ptr<NamespaceData> n);
  static Value object(std::shared_ptr<ObjectData> o);
  static Value callable(std::string name, std::function<Value(CallArgs&)> fn, bool macro = false);
  static Value iterator(std::string type_name, std::function<std::optional<Value>()> next);
  // JSON -> Python objects, the way json.load builds them (object key order kept).
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }  // list, tuple or dict view
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Namespace; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_callable() const { return kind_ == Kind::Callable; }
  bool is_iterator() const { return kind_ == Kind::Iterator; }
  // Python numbers.Number / int: bool is an int subclass in Python.
  bool is_integral() const { return kind_ == Kind::Int || kind_ == Kind::Bool; }
  bool is_numeric() const { return is_integral() || kind_ == Kind::Float; }
  bool is_tuple() const;
  bool is_plain_list() const;  // a real `list` (not tuple, not view)

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }
  double as_float() const { return kind_ == Kind::Float ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const;
  bool markup() const { return kind_ == Kind::String && flag_; }
  const ListData& list_data() const;
  const std::vector<Value>& items() const;
  const DictData& dict() const;
  NamespaceData& ns() const;
  ObjectData& object() const;
  const CallableData& callable() const;
  IteratorData& iterator() const;

  const std::string& undefined_hint() const;
  // Raises what Jinja2 raises when an Undefined is used for more than printing, testing or iterating.
  [[noreturn]] void fail_undefined() const;
  // Object identity for the `sameas` test (payload address; scalars compare by value).
  const void* identity() const { return ptr_.get(); }

 private:
  Kind kind_ = Kind::Undefined;
  bool flag_ = false;  // String: is Markup; Undefined: raises SecurityError (sandbox) instead of UndefinedError
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<void> ptr_;  // the payload of the kind (string, ListData, DictData, ...)
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;             // prints as (a, b) and never equals a list
  const char* view = nullptr;     // "dict_items"/"dict_keys"/"dict_values": prints as view, not subscriptable
};

// Insertion-ordered mapping with Python key equality (1 == 1.0 == True); string keys are indexed.
class DictData {
 public:
  void set(const Value& key, Value value);
  const Value* find(const Value& key) const;
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> string_index_;
};

struct NamespaceData {
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(const std::string& name) const;
  void set(const std::string& name, Value v);
};

// Host objects with attributes (loop, cycler, joiner): attributes are computed on access.
struct ObjectData {
  std::string type_name;                                             // for messages: "LoopContext"
  std::function<std::optional<Value>(const std::string&)> get_attr;  // nullopt: no such attribute
  std::function<std::string()> repr;                                  // unset: Python would print an address
};

struct CallableData {
  std::string name;
  bool macro = false;
  std::function<Value(CallArgs&)> fn;
};

// A Python generator (what map/select/unique/... return): consumed once, always truthy, has no len().
struct IteratorData {
  std::string type_name;
  std::function<std::optional<Value>()> next;
  bool exhausted = false;
  std::optional<Value> pull();
};

// Throws TypeError-like Faults for unhashable keys (list, dict) as Python does.
void check_hashable(const Value& key);

}  // namespace moe::jinja
