// GgufValue constructors and display.
#include <cmath>
#include <sstream>

#include "format/gguf.h"

namespace moe {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "?";
}

GgufValue GgufValue::make_u32(uint32_t v) { GgufValue x; x.type = GgufType::UINT32; x.u = v; return x; }
GgufValue GgufValue::make_u64(uint64_t v) { GgufValue x; x.type = GgufType::UINT64; x.u = v; return x; }
GgufValue GgufValue::make_i32(int32_t v) { GgufValue x; x.type = GgufType::INT32; x.i = v; return x; }
GgufValue GgufValue::make_f32(float v) { GgufValue x; x.type = GgufType::FLOAT32; x.f = v; return x; }
GgufValue GgufValue::make_bool(bool v) { GgufValue x; x.type = GgufType::BOOL; x.i = v ? 1 : 0; return x; }
GgufValue GgufValue::make_string(std::string v) {
  GgufValue x;
  x.type = GgufType::STRING;
  x.s = std::move(v);
  return x;
}
GgufValue GgufValue::make_string_array(std::vector<std::string> v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem_type = GgufType::STRING;
  x.strs = std::move(v);
  return x;
}
GgufValue GgufValue::make_i32_array(const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem_type = GgufType::INT32;
  x.ints.assign(v.begin(), v.end());
  return x;
}
GgufValue GgufValue::make_u32_array(const std::vector<uint32_t>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem_type = GgufType::UINT32;
  x.ints.assign(v.begin(), v.end());
  return x;
}
GgufValue GgufValue::make_f32_array(const std::vector<float>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem_type = GgufType::FLOAT32;
  x.floats.assign(v.begin(), v.end());
  return x;
}
GgufValue GgufValue::make_bool_array(const std::vector<bool>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem_type = GgufType::BOOL;
  for (bool b : v) x.ints.push_back(b ? 1 : 0);
  return x;
}

size_t GgufValue::array_size() const {
  if (type != GgufType::ARRAY) return 0;
  if (elem_type == GgufType::STRING) return strs.size();
  if (elem_type == GgufType::FLOAT32 || elem_type == GgufType::FLOAT64) return floats.size();
  return ints.size();
}

static std::string scalar_string(GgufType t, uint64_t u, int64_t i, double f, const std::string& s) {
  std::ostringstream o;
  switch (t) {
    case GgufType::UINT8: case GgufType::UINT16: case GgufType::UINT32: case GgufType::UINT64: o << u; break;
    case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64: o << i; break;
    case GgufType::FLOAT32: case GgufType::FLOAT64: o << f; break;
    case GgufType::BOOL: o << (i ? "true" : "false"); break;
    case GgufType::STRING: {
      std::string shown = s.size() > 60 ? s.substr(0, 57) + "..." : s;
      for (char& c : shown)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      o << '\'' << shown << '\'';
      break;
    }
    case GgufType::ARRAY: break;
  }
  return o.str();
}

std::string GgufValue::to_string(size_t max_items) const {
  if (type != GgufType::ARRAY) return scalar_string(type, u, i, f, s);
  std::ostringstream o;
  size_t n = array_size();
  o << '[';
  for (size_t k = 0; k < n && k < max_items; ++k) {
    if (k) o << ", ";
    switch (elem_type) {
      case GgufType::STRING: o << scalar_string(elem_type, 0, 0, 0, strs[k]); break;
      case GgufType::FLOAT32: case GgufType::FLOAT64: o << floats[k]; break;
      case GgufType::UINT64: o << static_cast<uint64_t>(ints[k]); break;
      case GgufType::BOOL: o << (ints[k] ? "true" : "false"); break;
      default: o << ints[k]; break;
    }
  }
  if (n > max_items) o << ", ... (" << n << " items)";
  o << ']';
  return o.str();
}

std::string GgufTensorInfo::shape_string() const {
  std::ostringstream o;
  o << '[';
  for (int d = 0; d < n_dims; ++d) o << (d ? ", " : "") << ne[d];
  o << ']';
  return o.str();
}

}  // namespace moe
