// Evaluates a parsed template: Jinja2's scoping (a fresh scope per loop iteration, macros that see their
// defining scope at call time), the sandbox's attribute rules, and the output of every statement.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/jinja.h"
#include "tokenizer/jinja/value.h"

namespace moe::jinja {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

class Interpreter {
 public:
  Interpreter(const Program& program, const RenderOptions& options);

  std::string render(const nlohmann::ordered_json& context);

  // Python/Jinja2 operations the filters, tests and methods call back into.
  Value getattr(const Value& obj, const std::string& name);  // environment.getattr (obj.name)
  Value getitem(const Value& obj, const Value& key);          // environment.getitem (obj[key])
  Value call(const Value& fn, CallArgs& args);
  Value call_filter(const std::string& name, const Value& v, CallArgs& args);
  bool call_test(const std::string& name, const Value& v, CallArgs& args);
  const RenderOptions& options() const { return options_; }

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow exec_stmt(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  void exec_call_block(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  std::string render_child(const Body& body, const std::shared_ptr<Scope>& scope);
  void assign(const Target& t, const Value& v, Scope& scope);

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_impl(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_getitem(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_filter(const Expr& e, const std::shared_ptr<Scope>& scope, const Value* block_input);
  CallArgs eval_args(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const Scope& scope) const;

  Value make_macro(const Stmt& m, const std::shared_ptr<Scope>& scope);
  Value invoke_macro(const Stmt& m, const std::weak_ptr<Scope>& defined_in, CallArgs& call);

  const Program& program_;
  RenderOptions options_;
  int depth_ = 0;  // macro call depth, bounded like Python's recursion limit
};

// Python's value-level operators (+ - * / // % **), with Markup escaping and Python's int/float rules.
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value unary_minus(const Value& v, bool negate);

// Builtins: the global functions, filters, tests and methods of the transformers environment.
void install_globals(Scope& root, Interpreter& interp);
Value apply_filter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args);
bool apply_test(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args);
// The Python attribute `name` of obj (a bound method or property), an unsafe-Undefined when the sandbox
// forbids it (list.append, dict.pop, ...), or nullopt when obj has no such attribute.
std::optional<Value> python_attribute(Interpreter& interp, const Value& obj, const std::string& name);

// Binds call arguments to a Python-style signature: names in order, the first `required` are mandatory.
// Missing optional arguments are nullopt. Raises TypeError-style Faults like Python.
std::vector<std::optional<Value>> bind_args(const std::string& fname, const CallArgs& call,
                                            const std::vector<const char*>& names, size_t required);

}  // namespace moe::jinja
