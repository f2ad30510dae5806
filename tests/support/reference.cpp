#include "support/reference.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "support/testdata.h"

namespace moe::test {

std::vector<int32_t> read_ids(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<int32_t> ids;
  int64_t v;
  while (in >> v) ids.push_back(static_cast<int32_t>(v));
  return ids;
}

std::vector<float> read_f32(const std::string& path) {
  std::string b = read_file(path);
  if (b.size() % 4) throw std::runtime_error(path + ": size not a multiple of 4");
  std::vector<float> v(b.size() / 4);
  std::copy(b.begin(), b.end(), reinterpret_cast<char*>(v.data()));
  return v;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::vector<int32_t> top_k(const float* x, size_t n, size_t k) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(k), idx.end(),
                    [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  idx.resize(k);
  return idx;
}

}  // namespace moe::test
