// Jinja2's tests (`x is defined`, `x is string`, ...), with Python's isinstance answers for our values.
#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/py.h"
#include "tokenizer/jinja/unicode.h"

namespace moe::jinja {
namespace {

const char* const kTests[] = {"odd",     "even",     "divisibleby", "defined",  "undefined", "filter",  "test",
                              "none",    "boolean",  "false",       "true",     "integer",   "float",   "lower",
                              "upper",   "string",   "mapping",     "number",   "sequence",  "iterable", "callable",
                              "sameas",  "escaped",  "in",          "==",       "eq",        "equalto", "!=",
                              "ne",      ">",        "gt",          "greaterthan", ">=",     "ge",      "<",
                              "lt",      "lessthan", "<=",          "le"};

const Value& arg(const std::string& name, std::vector<std::optional<Value>>& v, size_t i) {
  if (!v[i]) throw Fault("TypeError: test '" + name + "' missing an argument");
  return *v[i];
}

}  // namespace

bool is_known_test(const std::string& name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

bool apply_test(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  auto one = [&](size_t required, std::vector<const char*> names) { return bind_args(name, args, names, required); };
  if (name == "defined") return one(0, {}), !v.is_undefined();
  if (name == "undefined") return one(0, {}), v.is_undefined();
  if (name == "none") return one(0, {}), v.is_none();
  if (name == "boolean") return one(0, {}), v.is_bool();
  if (name == "true") return one(0, {}), v.is_bool() && v.as_bool();
  if (name == "false") return one(0, {}), v.is_bool() && !v.as_bool();
  if (name == "integer") return one(0, {}), v.is_int();
  if (name == "float") return one(0, {}), v.is_float();
  if (name == "number") return one(0, {}), v.is_numeric();
  if (name == "string") return one(0, {}), v.is_string();
  if (name == "mapping") return one(0, {}), v.is_dict();
  // Python: len() and __getitem__ both work. Undefined qualifies (it defines both).
  if (name == "sequence") return one(0, {}), v.is_undefined() || v.is_string() || v.is_dict() || (v.is_list() && !v.list_data().view);
  if (name == "iterable") return one(0, {}), py::is_iterable(v);
  if (name == "callable") return one(0, {}), v.is_callable() || v.is_undefined();
  if (name == "escaped") return one(0, {}), v.markup();
  if (name == "filter" || name == "test") {
    one(0, {});
    if (!v.is_string()) return false;
    return name == "filter" ? is_known_filter(v.str()) : is_known_test(v.str());
  }
  if (name == "lower" || name == "upper") {
    one(0, {});
    CallArgs none;
    Value s = Value::string(py::str(v));
    return py::truthy(interp.call(interp.getattr(s, name == "lower" ? "islower" : "isupper"), none));
  }
  if (name == "odd" || name == "even") {
    one(0, {});
    Value m = binary_op("%", v, Value::integer(2));
    return py::equal(m, Value::integer(name == "odd" ? 1 : 0));
  }
  if (name == "divisibleby") {
    auto a = one(1, {"num"});
    return py::equal(binary_op("%", v, arg(name, a, 0)), Value::integer(0));
  }
  if (name == "sameas") {
    auto a = one(1, {"other"});
    const Value& o = arg(name, a, 0);
    if (v.kind() != o.kind()) return false;
    switch (v.kind()) {
      case Kind::None:
      case Kind::Undefined: return true;
      case Kind::Bool: return v.as_bool() == o.as_bool();
      case Kind::Int: return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;  // CPython's small ints
      default: return v.identity() == o.identity();
    }
  }
  if (name == "in") {
    auto a = one(1, {"seq"});
    return py::contains(arg(name, a, 0), v);
  }
  auto a = one(1, {"b"});
  const Value& o = arg(name, a, 0);
  if (name == "==" || name == "eq" || name == "equalto") return py::equal(v, o);
  if (name == "!=" || name == "ne") return !py::equal(v, o);
  if (name == "<" || name == "lt" || name == "lessthan") return py::less(v, o);
  if (name == ">" || name == "gt" || name == "greaterthan") return py::less(o, v);
  if (name == "<=" || name == "le") return py::less(v, o) || py::equal(v, o);
  if (name == ">=" || name == "ge") return py::less(o, v) || py::equal(v, o);
  throw Fault("TemplateRuntimeError: No test named '" + name + "' found.");
}

}  // namespace moe::jinja
