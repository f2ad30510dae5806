#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "train/ops.h"
#include "train/vec_math.h"

namespace moe::train {

namespace {

MOE_VEC_CLONES double sum_sq(const float* g, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
  return s;
}

MOE_VEC_CLONES void adamw_span(float* p, const float* g, float* m, float* v, const uint8_t* decay, int64_t n,
                               float lr, float wd, float b1, float b2, float eps, float step_size, float bc2_sqrt,
                               float gs) {
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i];
    if (decay[i]) pi *= 1.0f - lr * wd;
    const float gi = gs == 1.0f ? g[i] : g[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
  }
}

}  // namespace

AdamW::AdamW(const ParamLayout& layout, const OptimConfig& cfg) : layout_(layout), cfg_(cfg) {
  m.assign(layout.total(), 0.f);
  v.assign(layout.total(), 0.f);
  decay_.assign(layout.total(), 0);
  for (const ParamTensor& t : layout.tensors())
    if (t.decay) std::fill(decay_.begin() + static_cast<int64_t>(t.offset), decay_.begin() + static_cast<int64_t>(t.offset + t.size), 1);
}

double AdamW::grad_norm(ThreadPool& pool, const float* grads) const {
  const int nt = pool.size();
  const int64_t n = static_cast<int64_t>(layout_.total());
  std::vector<double>& part = part_;
  part.assign(static_cast<size_t>(nt), 0.0);  // no reallocation after the first step
  pool.parallel_for(nt, [&](int64_t i, int) {
    int64_t b, e;
    split_range(n, nt, static_cast<int>(i), b, e);
    part[static_cast<size_t>(i)] = sum_sq(grads + b, e - b);
  });
  double s = 0.0;
  for (double x : part) s += x;
  return std::sqrt(s);
}

double AdamW::clip(ThreadPool& pool, float* grads, float max_norm) const {
  const double norm = grad_norm(pool, grads);
  if (max_norm > 0 && norm > max_norm) {
    const float c = clip_factor(norm, max_norm);
    const int64_t n = static_cast<int64_t>(layout_.total());
    pool.parallel_for(pool.size(), [&](int64_t i, int) {
      int64_t b, e;
      split_range(n, pool.size(), static_cast<int>(i), b, e);
      for (int64_t j = b; j < e; ++j) grads[j] *= c;
    });
  }
  return norm;
}

void AdamW::step(ThreadPool& pool, float* params, const float* grads, float lr, float grad_scale) {
  ++t;
  const double bc1 = 1.0 - std::pow(static_cast<double>(cfg_.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(cfg_.beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const int64_t n = static_cast<int64_t>(layout_.total());
  pool.parallel_for(pool.size(), [&](int64_t i, int) {
    int64_t b, e;
    split_range(n, pool.size(), static_cast<int>(i), b, e);
    adamw_span(params + b, grads + b, m.data() + b, v.data() + b, decay_.data() + b, e - b, lr, cfg_.weight_decay,
               cfg_.beta1, cfg_.beta2, cfg_.eps, step_size, bc2_sqrt, grad_scale);
  });
}

void update_selection_bias(std::vector<float>& bias, const std::vector<double>& load, float rate) {
  if (bias.empty()) return;
  double mean = 0.0;
  for (size_t i = 0; i < bias.size(); ++i) mean += load[i];
  mean /= static_cast<double>(bias.size());
  for (size_t i = 0; i < bias.size(); ++i) {
    const double diff = mean - load[i];
    bias[i] += diff > 0 ? rate : (diff < 0 ? -rate : 0.0f);
  }
}

}  // namespace moe::train
