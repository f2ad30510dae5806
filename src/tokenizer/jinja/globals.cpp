// The global names of the transformers environment: Jinja2's defaults (range, dict, namespace, cycler,
// joiner) and transformers' raise_exception and strftime_now.
#include <chrono>
#include <ctime>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/py.h"

namespace moe::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // SandboxedEnvironment's MAX_RANGE

int64_t as_index(const Value& v) {
  if (!v.is_integral())
    throw Fault("TypeError: '" + py::type_name(v) + "' object cannot be interpreted as an integer");
  return v.as_int();
}

Value range(CallArgs& a) {
  if (!a.kwargs.empty()) throw Fault("TypeError: range() takes no keyword arguments");
  if (a.args.empty() || a.args.size() > 3)
    throw Fault("TypeError: range expected at most 3 arguments, got " + std::to_string(a.args.size()));
  int64_t start = 0, stop, step = 1;
  if (a.args.size() == 1) {
    stop = as_index(a.args[0]);
  } else {
    start = as_index(a.args[0]);
    stop = as_index(a.args[1]);
    if (a.args.size() == 3) step = as_index(a.args[2]);
  }
  if (step == 0) throw Fault("ValueError: range() arg 3 must not be zero");
  // In 128 bits: stop - start and -step overflow int64 at the ends of its range.
  const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  const __int128 stride = step > 0 ? static_cast<__int128>(step) : -static_cast<__int128>(step);
  const __int128 n = span > 0 ? (span + stride - 1) / stride : 0;
  if (n > kMaxRange)
    throw Fault("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)  // i * step alone may pass int64 where start + i * step does not
    out.push_back(Value::integer(static_cast<int64_t>(start + static_cast<__int128>(i) * step)));
  return Value::list(std::move(out));
}

// dict(*args, **kwargs) as Python builds it.
DictData make_dict(CallArgs& a, const char* fname) {
  if (a.args.size() > 1)
    throw Fault(std::string("TypeError: ") + fname + " expected at most 1 argument, got " + std::to_string(a.args.size()));
  DictData d;
  if (!a.args.empty()) {
    const Value& src = a.args[0];
    if (src.is_undefined()) src.fail_undefined();  // dict() probes src.keys, which Undefined refuses
    if (src.is_dict()) {
      for (const auto& [k, v] : src.dict().items()) d.set(k, v);
    } else {
      for (const auto& pair : py::to_list(src)) {
        std::vector<Value> kv = py::to_list(pair);
        if (kv.size() != 2)
          throw Fault("ValueError: dictionary update sequence element has length " + std::to_string(kv.size()) +
                      "; 2 is required");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : a.kwargs) d.set(Value::string(k), v);
  return d;
}

Value make_cycler(CallArgs& a) {
  if (!a.kwargs.empty()) throw Fault("TypeError: cycler() takes no keyword arguments");
  if (a.args.empty()) throw Fault("RuntimeError: at least one item has to be provided");
  struct State {
    std::vector<Value> items;
    size_t pos = 0;
  };
  auto st = std::make_shared<State>();
  st->items = a.args;
  auto obj = std::make_shared<ObjectData>();
  obj->type_name = "Cycler";
  obj->get_attr = [st](const std::string& name) -> std::optional<Value> {
    if (name == "current") return st->items[st->pos];
    if (name == "items") return Value::list(st->items);
    if (name == "next")
      return Value::callable("next", [st](CallArgs&) {
        Value v = st->items[st->pos];
        st->pos = (st->pos + 1) % st->items.size();
        return v;
      });
    if (name == "reset")
      return Value::callable("reset", [st](CallArgs&) {
        st->pos = 0;
        return Value::none();
      });
    return std::nullopt;
  };
  return Value::object(obj);
}

Value make_joiner(CallArgs& a) {
  auto v = bind_args("joiner", a, {"sep"}, 0);
  std::string sep = v[0] ? py::str(*v[0]) : ", ";
  auto used = std::make_shared<bool>(false);
  return Value::callable("joiner", [sep, used](CallArgs&) {
    if (!*used) {
      *used = true;
      return Value::string("");
    }
    return Value::string(sep);
  });
}

// datetime.strftime: Python expands %f, %z and %Z itself (empty for a naive datetime) and hands the rest
// to the C library's strftime, in the C locale.
std::string python_strftime(const std::string& fmt, const std::tm& tm, long micros) {
  std::string c_fmt;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%' || i + 1 >= fmt.size()) {
      c_fmt.push_back(fmt[i]);
      continue;
    }
    char ch = fmt[++i];
    if (ch == 'f') {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%06ld", micros);
      c_fmt += buf;
    } else if (ch != 'z' && ch != 'Z') {
      c_fmt.push_back('%');
      c_fmt.push_back(ch);
    }
  }
  if (c_fmt.empty()) return "";
  for (size_t cap = 256; cap <= (1u << 20); cap *= 2) {
    std::string buf(cap, '\0');
    size_t n = std::strftime(buf.data(), cap, c_fmt.c_str(), &tm);
    if (n > 0 || cap > 16 * c_fmt.size()) return buf.substr(0, n);
  }
  return "";
}

Value strftime_now(CallArgs& a, const RenderOptions& opt) {
  auto v = bind_args("strftime_now", a, {"format"}, 1);
  if (!v[0]->is_string()) throw Fault("TypeError: strftime() argument 1 must be str, not " + py::type_name(*v[0]));
  std::tm tm{};
  long micros = 0;
  if (opt.now_date) {
    int y = 0, m = 0, d = 0;
    char extra = 0;
    if (std::sscanf(opt.now_date->c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 || d < 1 ||
        d > 31)
      throw Fault("the --now date must be YYYY-MM-DD, got '" + *opt.now_date + "'");
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_isdst = -1;
    std::tm copy = tm;
    timegm(&copy);  // fills in the weekday and the day of the year without local-time surprises
    tm.tm_wday = copy.tm_wday;
    tm.tm_yday = copy.tm_yday;
  } else {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    localtime_r(&t, &tm);
    micros = static_cast<long>(
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000);
    tm.tm_isdst = -1;
  }
  return Value::string(python_strftime(v[0]->str(), tm, micros));
}

}  // namespace

void install_globals(Scope& root, Interpreter& interp) {
  root.vars["range"] = Value::callable("range", range);
  root.vars["dict"] = Value::callable("dict", [](CallArgs& a) { return Value::dict(make_dict(a, "dict")); });
  root.vars["namespace"] = Value::callable("namespace", [](CallArgs& a) {
    auto ns = std::make_shared<NamespaceData>();
    DictData attrs = make_dict(a, "Namespace");
    for (const auto& [k, v] : attrs.items()) ns->set(py::str(k), v);
    return Value::ns(ns);
  });
  root.vars["cycler"] = Value::callable("cycler", make_cycler);
  root.vars["joiner"] = Value::callable("joiner", make_joiner);
  root.vars["lipsum"] = Value::callable("lipsum", [](CallArgs&) -> Value {
    throw Fault("unsupported: lipsum() (random text)");
  });
  root.vars["raise_exception"] = Value::callable("raise_exception", [](CallArgs& a) -> Value {
    auto v = bind_args("raise_exception", a, {"message"}, 1);
    throw RaiseException(py::str(*v[0]));
  });
  const RenderOptions* opt = &interp.options();
  root.vars["strftime_now"] = Value::callable("strftime_now", [opt](CallArgs& a) { return strftime_now(a, *opt); });
}

}  // namespace moe::jinja
