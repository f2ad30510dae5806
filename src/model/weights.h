// Views of weight tensors inside the mapped GGUF (never copied), and the binder that checks every tensor's
// shape and type against the architecture's hparams before the model is used.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor_view.h"

namespace moe {

class GgufFile;
struct GgufTensorInfo;

// Looks tensors up by name and checks them; every error names the file and the tensor.
class TensorBinder {
 public:
  explicit TensorBinder(const GgufFile& f) : f_(f) {}
  Mat mat(const std::string& name, int64_t cols, int64_t rows, bool required = true);
  ExpertMats experts(const std::string& name, int64_t cols, int64_t rows, int64_t n_expert, bool required = true);
  Vec vec(const std::string& name, int64_t n, bool required = true);
  bool has(const std::string& name) const;
  const GgufFile& file() const { return f_; }
  // Marks every tensor whose name starts with `prefix` as deliberately unused (e.g. NextN/MTP blocks).
  void ignore_prefix(const std::string& prefix);
  // Fails if the file has tensors that nothing bound (a model we would silently mis-compute).
  void check_all_used() const;

 private:
  const GgufTensorInfo* find(const std::string& name, bool required);
  [[noreturn]] void fail(const std::string& name, const std::string& what) const;
  const GgufFile& f_;
  std::vector<std::string> used_;
};

}  // namespace moe
