// Python's built-in semantics over Value: truth, str()/repr(), ==, <, in, len(), iter(), json.dumps,
// %-formatting and str.format. Jinja2 delegates all of these to Python, so a byte-exact rendering
// depends on reproducing them exactly (e.g. repr picks its quote character, floats print shortest).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace moe::jinja::py {

// One string or list built by padding, repetition or a format precision stops at 64 MiB, far past any chat
// prompt; Python would go on until MemoryError (or take the machine's memory first).
constexpr uint64_t kMaxBuiltBytes = uint64_t{64} << 20;
inline void check_built_size(uint64_t bytes, const std::string& what) {
  if (bytes > kMaxBuiltBytes) throw Fault("MemoryError: " + what + " would need more than 64 MiB");
}

bool truthy(const Value& v);
std::string type_name(const Value& v);  // Python's type(v).__name__: 'str', 'dict', 'NoneType', ...
std::string str(const Value& v);         // str(v); Undefined -> ""
std::string repr(const Value& v);
std::string repr_string(const std::string& s);
std::string float_repr(double d);

bool equal(const Value& a, const Value& b);
// a < b; throws Fault("'<' not supported between instances of ...") when Python would.
bool less(const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);  // `item in container`
int64_t length(const Value& v);                             // len(v)
// operator.index(v): ints and bools; anything else raises "'str' object cannot be interpreted as an integer".
int64_t index(const Value& v);
bool is_iterable(const Value& v);
// list(iter(v)): strings yield characters, dicts their keys, generators are consumed.
std::vector<Value> to_list(const Value& v);

// Code-point based string indexing and slicing (Python semantics, negative indices, steps).
std::optional<Value> index_string(const std::string& s, int64_t index);
Value slice(const Value& v, std::optional<int64_t> start, std::optional<int64_t> stop, std::optional<int64_t> step);

// markupsafe.escape: returns Markup; Markup passes through unchanged.
Value escape(const Value& v);
std::string escape_html(const std::string& s);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // json.dumps indent (an int n means n spaces)
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string json_dumps(const Value& v, const JsonOptions& opt);

// `fmt % args` for str (printf-style); args is a tuple, a dict (for %(name)s) or a single value.
std::string percent_format(const std::string& fmt, const Value& args);
// str.format(*args, **kwargs) with the format-spec mini-language for str, int and float.
std::string str_format(const std::string& fmt, const CallArgs& call);
// format(value, spec) as used by str.format fields.
std::string format_spec(const Value& v, const std::string& spec);

}  // namespace moe::jinja::py
