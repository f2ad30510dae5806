#include "tokenizer/jinja/interpreter.h"

#include <algorithm>

#include "tokenizer/jinja/py.h"

namespace moe::jinja {
namespace {

constexpr int kMaxMacroDepth = 250;  // Python's recursion limit stops runaway macros well before a crash

// Jinja2's object_type_repr, used in "'dict object' has no attribute 'x'".
std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_namespace()) return "jinja2.utils.Namespace object";
  if (v.is_object()) return "jinja2.runtime." + v.object().type_name + " object";
  if (v.is_callable() && v.callable().macro) return "jinja2.runtime.Macro object";
  if (v.is_string() && v.markup()) return "markupsafe.Markup object";
  return py::type_name(v) + " object";
}

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
}

}  // namespace

Interpreter::Interpreter(const Program& program, const RenderOptions& options)
    : program_(program), options_(options) {}

std::string Interpreter::render(const nlohmann::ordered_json& context) {
  if (!context.is_object()) throw Fault("the template context must be a JSON object");
  auto root = std::make_shared<Scope>();
  install_globals(*root, *this);
  for (const auto& [k, v] : context.items()) root->vars[k] = Value::from_json(v);
  std::string out;
  exec(program_.body, root, out);
  return out;
}

// ---- statements ---------------------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
  for (const auto& s : body) {
    Flow f = exec_stmt(*s, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

std::string Interpreter::render_child(const Body& body, const std::shared_ptr<Scope>& scope) {
  auto child = std::make_shared<Scope>();
  child->parent = scope;
  std::string out;
  exec(body, child, out);
  return out;
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  switch (s.kind) {
    case StmtKind::Text: out += s.text; break;
    case StmtKind::Print: {
      Value v = eval(*s.expr, scope);
      try {
        out += py::str(v);
      } catch (const Fault& f) {
        throw TemplateRuntimeError(s.line, f.what());
      }
      break;
    }
    case StmtKind::If:
      for (const auto& br : s.branches)
        if (py::truthy(eval(*br.test, scope))) return exec(br.body, scope, out);
      return exec(s.else_body, scope, out);
    case StmtKind::For: return exec_for(s, scope, out);
    case StmtKind::Set: {
      Value v = eval(*s.expr, scope);
      try {
        assign(s.target, v, *scope);
      } catch (const Fault& f) {
        throw TemplateRuntimeError(s.line, f.what());
      }
      break;
    }
    case StmtKind::SetBlock: {
      Value v = Value::string(render_child(s.body, scope));
      if (s.filter) v = eval_filter(*s.filter, scope, &v);
      try {
        assign(s.target, v, *scope);
      } catch (const Fault& f) {
        throw TemplateRuntimeError(s.line, f.what());
      }
      break;
    }
    case StmtKind::Macro: scope->vars[s.name] = make_macro(s, scope); break;
    case StmtKind::CallBlock: exec_call_block(s, scope, out); break;
    case StmtKind::FilterBlock: {
      Value body = Value::string(render_child(s.body, scope));
      Value v = eval_filter(*s.expr, scope, &body);
      try {
        out += py::str(v);
      } catch (const Fault& f) {
        throw TemplateRuntimeError(s.line, f.what());
      }
      break;
    }
    case StmtKind::With: {
      auto child = std::make_shared<Scope>();
      child->parent = scope;
      for (const auto& [target, expr] : s.assigns) {
        Value v = eval(*expr, scope);
        try {
          assign(target, v, *child);
        } catch (const Fault& f) {
          throw TemplateRuntimeError(s.line, f.what());
        }
      }
      std::string body;
      exec(s.body, child, body);
      out += body;
      break;
    }
    case StmtKind::Scope: out += render_child(s.body, scope); break;
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

void Interpreter::assign(const Target& t, const Value& v, Scope& scope) {
  switch (t.kind) {
    case Target::Kind::Name: scope.vars[t.name] = v; return;
    case Target::Kind::NsAttr: {
      Value ns = lookup(t.name, scope);
      if (!ns.is_namespace()) throw Fault("TemplateRuntimeError: cannot assign attribute on non-namespace object");
      ns.ns().set(t.attr, v);
      return;
    }
    case Target::Kind::Tuple: {
      std::vector<Value> items = py::to_list(v);
      if (items.size() < t.items.size())
        throw Fault("ValueError: not enough values to unpack (expected " + std::to_string(t.items.size()) +
                    ", got " + std::to_string(items.size()) + ")");
      if (items.size() > t.items.size())
        throw Fault("ValueError: too many values to unpack (expected " + std::to_string(t.items.size()) + ")");
      for (size_t i = 0; i < items.size(); ++i) assign(t.items[i], items[i], scope);
      return;
    }
  }
}

namespace {

// Jinja2's LoopContext: one object per loop whose attributes follow the current iteration.
struct LoopState {
  std::vector<Value> items;
  size_t index0 = 0;
  std::optional<Value> last_changed;
};

Value make_loop_object(const std::shared_ptr<LoopState>& st) {
  auto obj = std::make_shared<ObjectData>();
  obj->type_name = "LoopContext";
  std::weak_ptr<LoopState> weak = st;
  obj->repr = [weak] {
    auto s = weak.lock();
    return s ? "<LoopContext " + std::to_string(s->index0 + 1) + "/" + std::to_string(s->items.size()) + ">"
             : std::string("<LoopContext>");
  };
  obj->get_attr = [weak](const std::string& name) -> std::optional<Value> {
    auto s = weak.lock();
    if (!s) throw Fault("unsupported: a loop object used after its loop ended");
    const int64_t n = static_cast<int64_t>(s->items.size());
    const int64_t i = static_cast<int64_t>(s->index0);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem")
      return i == 0 ? Value::undefined("there is no previous item") : s->items[static_cast<size_t>(i - 1)];
    if (name == "nextitem")
      return i + 1 >= n ? Value::undefined("there is no next item") : s->items[static_cast<size_t>(i + 1)];
    if (name == "cycle")
      return Value::callable("cycle", [weak](CallArgs& a) {
        auto st2 = weak.lock();
        if (a.args.empty()) throw Fault("TypeError: no items for cycling given");
        if (!a.kwargs.empty()) throw Fault("TypeError: cycle() got an unexpected keyword argument");
        return a.args[st2->index0 % a.args.size()];
      });
    if (name == "changed")
      return Value::callable("changed", [weak](CallArgs& a) {
        auto st2 = weak.lock();
        Value v = Value::tuple(a.args);
        if (st2->last_changed && py::equal(*st2->last_changed, v)) return Value::boolean(false);
        st2->last_changed = v;
        return Value::boolean(true);
      });
    return std::nullopt;
  };
  return Value::object(obj);
}

}  // namespace

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  Value iterable = eval(*s.expr, scope);
  auto st = std::make_shared<LoopState>();
  try {
    if (!py::is_iterable(iterable)) throw Fault("TypeError: '" + py::type_name(iterable) + "' object is not iterable");
    st->items = py::to_list(iterable);
    if (s.filter) {  // {% for x in xs if cond %}: filtered before the loop sees them (loop.length counts kept items)
      std::vector<Value> kept;
      for (const auto& item : st->items) {
        auto probe = std::make_shared<Scope>();
        probe->parent = scope;
        assign(s.target, item, *probe);
        if (py::truthy(eval(*s.filter, probe))) kept.push_back(item);
      }
      st->items = std::move(kept);
    }
  } catch (const Fault& f) {
    throw TemplateRuntimeError(s.line, f.what());
  }
  if (st->items.empty()) {
    out += render_child(s.else_body, scope);
    return Flow::Normal;
  }
  Value loop = make_loop_object(st);
  for (size_t i = 0; i < st->items.size(); ++i) {
    st->index0 = i;
    auto iter_scope = std::make_shared<Scope>();  // Jinja2: assignments inside an iteration stay there
    iter_scope->parent = scope;
    iter_scope->vars["loop"] = loop;
    try {
      assign(s.target, st->items[i], *iter_scope);
    } catch (const Fault& f) {
      throw TemplateRuntimeError(s.line, f.what());
    }
    if (exec(s.body, iter_scope, out) == Flow::Break) break;
  }
  return Flow::Normal;
}

// ---- macros -------------------------------------------------------------------------------------------

Value Interpreter::make_macro(const Stmt& m, const std::shared_ptr<Scope>& scope) {
  std::weak_ptr<Scope> defined_in = scope;  // weak: the scope holds the macro, avoid a reference cycle
  const Stmt* stmt = &m;
  return Value::callable(
      m.name, [this, stmt, defined_in](CallArgs& call) { return invoke_macro(*stmt, defined_in, call); }, true);
}

Value Interpreter::invoke_macro(const Stmt& m, const std::weak_ptr<Scope>& defined_in, CallArgs& call) {
  auto parent = defined_in.lock();
  if (!parent) throw Fault("unsupported: macro '" + m.name + "' called after its defining scope ended");
  if (depth_ >= kMaxMacroDepth) throw Fault("RecursionError: maximum recursion depth exceeded in macro calls");
  auto scope = std::make_shared<Scope>();
  scope->parent = parent;
  auto kwargs = call.kwargs;
  auto take_kwarg = [&](const std::string& name) -> std::optional<Value> {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it)
      if (it->first == name) {
        Value v = it->second;
        kwargs.erase(it);
        return v;
      }
    return std::nullopt;
  };
  const size_t n = m.params.size();
  std::vector<std::optional<Value>> values(n);
  for (size_t i = 0; i < n && i < call.args.size(); ++i) values[i] = call.args[i];
  for (size_t i = call.args.size(); i < n; ++i) values[i] = take_kwarg(m.params[i]);
  if (m.uses_caller) {
    auto c = take_kwarg("caller");
    scope->vars["caller"] = c ? *c : Value::undefined("No caller defined");
  }
  if (m.uses_kwargs) {
    DictData d;
    for (const auto& [k, v] : kwargs) d.set(Value::string(k), v);
    scope->vars["kwargs"] = Value::dict(std::move(d));
  } else if (!kwargs.empty()) {
    throw Fault("TypeError: macro '" + m.name + "' takes no keyword argument '" + kwargs.front().first + "'");
  }
  if (m.uses_varargs) {
    std::vector<Value> extra;
    for (size_t i = n; i < call.args.size(); ++i) extra.push_back(call.args[i]);
    scope->vars["varargs"] = Value::tuple(std::move(extra));
  } else if (call.args.size() > n) {
    throw Fault("TypeError: macro '" + m.name + "' takes not more than " + std::to_string(n) + " argument(s)");
  }
  const size_t first_default = n - m.defaults.size();
  for (size_t i = 0; i < n; ++i) {  // defaults run in the macro's scope, so they can read earlier parameters
    if (values[i]) scope->vars[m.params[i]] = *values[i];
    else if (i >= first_default) scope->vars[m.params[i]] = eval(*m.defaults[i - first_default], scope);
    else scope->vars[m.params[i]] = Value::undefined("parameter '" + m.params[i] + "' was not provided");
  }
  std::string out;
  ++depth_;
  try {
    exec(m.body, scope, out);
  } catch (...) {
    --depth_;
    throw;
  }
  --depth_;
  return Value::string(std::move(out));
}

void Interpreter::exec_call_block(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  // {% call m(args) %}body{% endcall %}: the body becomes a macro passed to m as `caller`.
  Value caller = make_macro(s, scope);
  const Expr& call = *s.expr;
  Value fn = eval(*call.children[0], scope);
  CallArgs args = eval_args(call, scope);
  args.kwargs.emplace_back("caller", caller);
  try {
    out += py::str(this->call(fn, args));
  } catch (const Fault& f) {
    throw TemplateRuntimeError(s.line, f.what());
  }
}

// ---- expressions --------------------------------------------------------------------------------------

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  for (const Scope* s = &scope; s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

Value Interpreter::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  try {
    return eval_impl(e, scope);
  } catch (const Fault& f) {
    throw TemplateRuntimeError(e.line, f.what());
  }
}

CallArgs Interpreter::eval_args(const Expr& e, const std::shared_ptr<Scope>& scope) {
  CallArgs a;
  for (const auto& x : e.args) a.args.push_back(eval(*x, scope));
  for (const auto& [k, x] : e.kwargs) a.kwargs.emplace_back(k, eval(*x, scope));
  if (e.dyn_args)
    for (auto& v : py::to_list(eval(*e.dyn_args, scope))) a.args.push_back(std::move(v));
  if (e.dyn_kwargs) {
    Value d = eval(*e.dyn_kwargs, scope);
    if (!d.is_dict()) throw Fault("TypeError: argument after ** must be a mapping, not " + py::type_name(d));
    for (const auto& [k, v] : d.dict().items()) {
      if (!k.is_string()) throw Fault("TypeError: keywords must be strings");
      a.kwargs.emplace_back(k.str(), v);
    }
  }
  return a;
}

Value Interpreter::eval_impl(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case ExprKind::Const: return e.value;
    case ExprKind::Name: return lookup(e.name, *scope);
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(eval(*c, scope));
      return e.kind == ExprKind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::Dict: {
      DictData d;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i], scope);
        d.set(k, eval(*e.children[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::Getattr: return getattr(eval(*e.children[0], scope), e.name);
    case ExprKind::Getitem: return eval_getitem(e, scope);
    case ExprKind::Slice: throw Fault("unsupported: a slice outside of a subscript");
    case ExprKind::Call: {
      Value fn = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, scope);
      return call(fn, args);
    }
    case ExprKind::Filter: return eval_filter(e, scope, nullptr);
    case ExprKind::Test: {
      if (!e.known) throw Fault("TemplateRuntimeError: No test named '" + e.name + "' found.");
      Value v = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, scope);
      return Value::boolean(apply_test(*this, e.name, v, args));
    }
    case ExprKind::Not: return Value::boolean(!py::truthy(eval(*e.children[0], scope)));
    case ExprKind::Neg:
    case ExprKind::Pos: return unary_minus(eval(*e.children[0], scope), e.kind == ExprKind::Neg);
    case ExprKind::Binary: {
      Value a = eval(*e.children[0], scope);
      Value b = eval(*e.children[1], scope);
      return binary_op(e.name, a, b);
    }
    case ExprKind::And: {
      Value a = eval(*e.children[0], scope);
      return py::truthy(a) ? eval(*e.children[1], scope) : a;
    }
    case ExprKind::Or: {
      Value a = eval(*e.children[0], scope);
      return py::truthy(a) ? a : eval(*e.children[1], scope);
    }
    case ExprKind::Concat: {
      std::string s;
      for (const auto& c : e.children) s += py::str(eval(*c, scope));
      return Value::string(std::move(s));
    }
    case ExprKind::Compare: {
      Value left = eval(*e.children[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.children[i + 1], scope);
        const std::string& op = e.ops[i];
        bool r;
        if (op == "==") r = py::equal(left, right);
        else if (op == "!=") r = !py::equal(left, right);
        else if (op == "<") r = py::less(left, right);
        else if (op == ">") r = py::less(right, left);
        else if (op == "<=") r = py::less(left, right) || py::equal(left, right);
        else if (op == ">=") r = py::less(right, left) || py::equal(left, right);
        else if (op == "in") r = py::contains(right, left);
        else r = !py::contains(right, left);
        if (!r) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::CondExpr:
      if (py::truthy(eval(*e.children[0], scope))) return eval(*e.children[1], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
  }
  throw Fault("internal error: unknown expression kind");
}

Value Interpreter::eval_getitem(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value obj = eval(*e.children[0], scope);
  const Expr& key = *e.children[1];
  if (key.kind != ExprKind::Slice) return getitem(obj, eval(key, scope));
  std::optional<int64_t> parts[3];
  bool bad = false;
  for (int i = 0; i < 3; ++i) {
    if (!key.children[static_cast<size_t>(i)]) continue;
    Value v = eval(*key.children[static_cast<size_t>(i)], scope);
    if (v.is_integral()) parts[i] = v.as_int();
    else if (!v.is_none()) bad = true;
  }
  if (obj.is_undefined()) obj.fail_undefined();
  if (bad || !(obj.is_string() || (obj.is_list() && !obj.list_data().view)))
    return Value::undefined("'" + object_type_repr(obj) + "' has no element slice");  // TypeError -> Undefined
  return py::slice(obj, parts[0], parts[1], parts[2]);
}

Value Interpreter::eval_filter(const Expr& e, const std::shared_ptr<Scope>& scope, const Value* block_input) {
  // In {% filter a|b %} and {% set x | a | b %} the innermost filter's input is the rendered block.
  const Expr* inner = e.children[0].get();
  Value v = !inner ? *block_input
            : (block_input && inner->kind == ExprKind::Filter) ? eval_filter(*inner, scope, block_input)
                                                               : eval(*inner, scope);
  try {
    if (!e.known) throw Fault("TemplateRuntimeError: No filter named '" + e.name + "' found.");
    CallArgs args = eval_args(e, scope);
    return apply_filter(*this, e.name, v, args);
  } catch (const Fault& f) {
    throw TemplateRuntimeError(e.line, f.what());
  }
}

// ---- Python object protocol ---------------------------------------------------------------------------

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (auto attr = python_attribute(*this, obj, name)) return *attr;
  if (obj.is_dict())
    if (const Value* v = obj.dict().find(Value::string(name))) return *v;
  return missing_attribute(obj, name);
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (obj.is_dict()) {
    bool hashable = !(key.is_dict() || key.is_plain_list());
    if (hashable)
      if (const Value* v = obj.dict().find(key)) return *v;
  } else if (obj.is_list() && !obj.list_data().view && key.is_integral()) {
    int64_t n = static_cast<int64_t>(obj.items().size());
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
  } else if (obj.is_string() && key.is_integral()) {
    if (auto c = py::index_string(obj.str(), key.as_int())) return *c;
  }
  if (key.is_string()) {
    if (auto attr = python_attribute(*this, obj, key.str())) return *attr;
    return missing_attribute(obj, key.str());
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + py::repr(key));
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) fn.fail_undefined();
  if (!fn.is_callable()) throw Fault("TypeError: '" + py::type_name(fn) + "' object is not callable");
  return fn.callable().fn(args);
}

Value Interpreter::call_filter(const std::string& name, const Value& v, CallArgs& args) {
  return apply_filter(*this, name, v, args);
}

bool Interpreter::call_test(const std::string& name, const Value& v, CallArgs& args) {
  return apply_test(*this, name, v, args);
}

}  // namespace moe::jinja
