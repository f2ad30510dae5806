#include "model/weights.h"

#include <algorithm>

#include "core/error.h"
#include "format/gguf.h"

namespace moe {

void TensorBinder::fail(const std::string& name, const std::string& what) const {
  throw FormatError(f_.path() + ": tensor '" + name + "': " + what);
}

bool TensorBinder::has(const std::string& name) const { return f_.tensor(name) != nullptr; }

const GgufTensorInfo* TensorBinder::find(const std::string& name, bool required) {
  const GgufTensorInfo* t = f_.tensor(name);
  if (!t) {
    if (required) throw FormatError(f_.path() + ": missing tensor '" + name + "'");
    return nullptr;
  }
  if (!dtype_info(t->type).computable)
    fail(name, std::string("type ") + dtype_name(t->type) + " is not supported yet");
  used_.push_back(name);
  return t;
}

static std::string shape_str(std::initializer_list<int64_t> ne) {
  std::string s = "[";
  bool first = true;
  for (int64_t d : ne) {
    s += (first ? "" : ", ") + std::to_string(d);
    first = false;
  }
  return s + "]";
}

Mat TensorBinder::mat(const std::string& name, int64_t cols, int64_t rows, bool required) {
  const GgufTensorInfo* t = find(name, required);
  if (!t) return {};
  if (t->n_dims > 2 || t->ne[0] != cols || t->ne[1] != rows)
    fail(name, "shape " + t->shape_string() + ", expected " + shape_str({cols, rows}));
  return Mat{t->type, rows, cols, t->data, t->row_bytes()};
}

ExpertMats TensorBinder::experts(const std::string& name, int64_t cols, int64_t rows, int64_t n_expert, bool required) {
  const GgufTensorInfo* t = find(name, required);
  if (!t) return {};
  if (t->n_dims != 3 || t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != n_expert)
    fail(name, "shape " + t->shape_string() + ", expected " + shape_str({cols, rows, n_expert}));
  size_t rs = t->row_bytes();
  return ExpertMats{t->type, rows, cols, n_expert, t->data, rs, rs * static_cast<size_t>(rows)};
}

Vec TensorBinder::vec(const std::string& name, int64_t n, bool required) {
  const GgufTensorInfo* t = find(name, required);
  if (!t) return {};
  if (t->n_dims != 1 || t->ne[0] != n) fail(name, "shape " + t->shape_string() + ", expected " + shape_str({n}));
  if (t->type != DType::F32) fail(name, std::string("type ") + dtype_name(t->type) + ", expected f32");
  if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) fail(name, "data is not 4-byte aligned");
  return Vec{reinterpret_cast<const float*>(t->data), n};
}

void TensorBinder::ignore_prefix(const std::string& prefix) {
  for (const auto& t : f_.tensors())
    if (t.name.rfind(prefix, 0) == 0) used_.push_back(t.name);
}

void TensorBinder::check_all_used() const {
  for (const auto& t : f_.tensors())
    if (std::find(used_.begin(), used_.end(), t.name) == used_.end())
      throw FormatError(f_.path() + ": unexpected tensor '" + t.name + "' for architecture (not used by this model)");
}

}  // namespace moe
