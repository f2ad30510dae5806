// Non-owning views of weight tensors that live inside a mapped file: matrices, stacked experts, vectors.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

// A matrix of `rows` rows with `cols` elements each (ggml ne = {cols, rows}); row r at data + r * row_stride.
struct Mat {
  DType type = DType::F32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  size_t row_stride = 0;
  bool present() const { return data != nullptr; }
};

// Stacked experts (ggml ne = {cols, rows, n_expert}); expert e is one contiguous Mat.
struct ExpertMats {
  DType type = DType::F32;
  int64_t rows = 0, cols = 0, n_expert = 0;
  const uint8_t* data = nullptr;
  size_t row_stride = 0, expert_stride = 0;
  bool present() const { return data != nullptr; }
  Mat expert(int64_t e) const { return Mat{type, rows, cols, data + e * expert_stride, row_stride}; }
};

// A float vector (norm weights, biases): F32 only, as converters store them.
struct Vec {
  const float* data = nullptr;
  int64_t n = 0;
  bool present() const { return data != nullptr; }
};

}  // namespace moe
