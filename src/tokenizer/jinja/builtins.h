// Helpers shared by the filter implementations (internal to the jinja module).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja/interpreter.h"

namespace moe::jinja {

// Jinja2's make_attrgetter: "a.b.0" looked up part by part with environment.getitem; an Undefined result
// becomes `dflt` when one is given.
std::function<Value(const Value&)> make_attrgetter(Interpreter& interp, const Value& attribute,
                                                   std::optional<Value> dflt = std::nullopt);
// str.lower() for strings, the value otherwise (the filters' case_sensitive=False).
Value ignore_case(const Value& v);
// A lazy cursor over anything Python can iterate (lists, dict keys, characters, generators). Errors for
// non-iterables surface on the first pull, as Python's generators raise them.
std::function<std::optional<Value>()> make_source(const Value& v);

// The sequence filters (filters_seq.cpp): returns nullopt when `name` is not one of them.
std::optional<Value> apply_sequence_filter(Interpreter& interp, const std::string& name, const Value& v,
                                           CallArgs& args);

}  // namespace moe::jinja
