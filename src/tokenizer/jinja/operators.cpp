// Python's arithmetic operators over Value, including str/list repetition and Markup's escaping `+`.
#include <cmath>
#include <cstdint>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/py.h"

namespace moe::jinja {
namespace {

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  if (op == "+" && a.is_string() && !b.is_string())
    throw Fault("TypeError: can only concatenate str (not \"" + py::type_name(b) + "\") to str");
  if (op == "+" && a.is_list() && b.is_list())
    throw Fault("TypeError: can only concatenate " + py::type_name(a) + " (not \"" + py::type_name(b) + "\") to " +
                py::type_name(a));
  throw Fault("TypeError: unsupported operand type(s) for " + op + ": '" + py::type_name(a) + "' and '" +
              py::type_name(b) + "'");
}

[[noreturn]] void overflow() { throw Fault("unsupported: integer result does not fit in 64 bits"); }

Value repeat(const Value& seq, int64_t n) {
  const uint64_t unit = seq.is_string() ? seq.str().size() : seq.items().size() * sizeof(Value);
  if (n > 0 && unit > 0 && unit > py::kMaxBuiltBytes / static_cast<uint64_t>(n))
    py::check_built_size(py::kMaxBuiltBytes + 1, "repeating a " + py::type_name(seq) + " " + std::to_string(n) + " times");
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out), seq.markup());
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  // str % x formats x without asking it anything first, so an Undefined argument may be fine there.
  if (b.is_undefined() && !(op == "%" && a.is_string())) b.fail_undefined();
  const bool nums = a.is_numeric() && b.is_numeric();
  const bool ints = a.is_integral() && b.is_integral();
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) {
      // markupsafe: Markup + str escapes the plain side, and so does str + Markup.
      if (a.markup() || b.markup())
        return Value::string(py::escape(a).str() + py::escape(b).str(), true);
      return Value::string(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && !a.list_data().view && !b.list_data().view && a.is_tuple() == b.is_tuple()) {
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
    }
    unsupported(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_float() - b.as_float());
    unsupported(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_float() * b.as_float());
    auto is_seq = [](const Value& v) { return v.is_string() || (v.is_list() && !v.list_data().view); };
    if (is_seq(a) && b.is_integral()) return repeat(a, b.as_int());
    if (is_seq(b) && a.is_integral()) return repeat(b, a.as_int());
    unsupported(op, a, b);
  }
  if (op == "/") {
    if (!nums) unsupported(op, a, b);
    if (b.as_float() == 0) throw Fault("ZeroDivisionError: division by zero");
    return Value::number(a.as_float() / b.as_float());
  }
  if (op == "//") {
    if (!nums) unsupported(op, a, b);
    if (ints) {
      if (b.as_int() == 0) throw Fault("ZeroDivisionError: integer division or modulo by zero");
      if (a.as_int() == INT64_MIN && b.as_int() == -1) overflow();  // the one quotient past int64 (it traps)
      int64_t q = a.as_int() / b.as_int();
      if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;
      return Value::integer(q);
    }
    if (b.as_float() == 0) throw Fault("ZeroDivisionError: float floor division by zero");
    // CPython's float_floor_div.
    double x = a.as_float(), y = b.as_float();
    double mod = std::fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1.0;
    if (div == 0) return Value::number(std::copysign(0.0, x / y));
    double fl = std::floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return Value::number(fl);
  }
  if (op == "%") {
    if (a.is_string()) {
      if (!a.markup()) return Value::string(py::percent_format(a.str(), b));
      // Markup % args escapes every argument.
      Value args = b;
      if (b.is_tuple()) {
        std::vector<Value> esc;
        for (const auto& x : b.items()) esc.push_back(x.is_string() ? py::escape(x) : x);
        args = Value::tuple(std::move(esc));
      } else if (b.is_string()) {
        args = py::escape(b);
      }
      return Value::string(py::percent_format(a.str(), args), true);
    }
    if (!nums) unsupported(op, a, b);
    if (ints) {
      if (b.as_int() == 0) throw Fault("ZeroDivisionError: integer division or modulo by zero");
      if (b.as_int() == -1) return Value::integer(0);  // INT64_MIN % -1 traps in C++
      int64_t m = a.as_int() % b.as_int();
      if (m != 0 && ((m < 0) != (b.as_int() < 0))) m += b.as_int();
      return Value::integer(m);
    }
    if (b.as_float() == 0) throw Fault("ZeroDivisionError: float modulo");
    return Value::number(py_fmod(a.as_float(), b.as_float()));
  }
  if (op == "**") {
    if (!nums) unsupported(op, a, b);
    if (ints && b.as_int() >= 0) {  // by squaring: 1 ** 10**18 must not take 10**18 steps
      int64_t r = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) overflow();
        // Squaring overflows only for |base| >= 2, and then so would the result (e > 1 remains).
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value::integer(r);
    }
    if (a.as_float() == 0 && b.as_float() < 0)
      throw Fault("ZeroDivisionError: 0.0 cannot be raised to a negative power");
    return Value::number(std::pow(a.as_float(), b.as_float()));
  }
  throw Fault("internal error: unknown operator " + op);
}

Value unary_minus(const Value& v, bool negate) {
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_integral()) {
    if (!negate) return Value::integer(v.as_int());
    int64_t r = 0;
    if (__builtin_sub_overflow(int64_t{0}, v.as_int(), &r)) overflow();
    return Value::integer(r);
  }
  if (v.is_float()) return Value::number(negate ? -v.as_float() : v.as_float());
  throw Fault(std::string("TypeError: bad operand type for unary ") + (negate ? "-" : "+") + ": '" +
              py::type_name(v) + "'");
}

}  // namespace moe::jinja
