// Readers for the llama.cpp reference outputs in testdata/reference (token lists, logits, greedy runs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe::test {

std::vector<int32_t> read_ids(const std::string& path);     // one line of space-separated ids
std::vector<float> read_f32(const std::string& path);       // raw little-endian float32
// Max |a-b| over row `row` of two [rows][n] arrays.
float max_abs_diff(const float* a, const float* b, size_t n);
// Indices of the k largest values, best first, ties to the lower index.
std::vector<int32_t> top_k(const float* x, size_t n, size_t k);

}  // namespace moe::test
