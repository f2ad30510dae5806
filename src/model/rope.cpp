#include "model/rope.h"

#include <cmath>

namespace moe {

void rope_cos_sin(const ModelConfig& c, const float* freq_factors, int64_t pos, float* cs) {
  const int half = c.n_rot / 2;
  const float theta_scale = std::pow(c.rope_theta, -2.0f / static_cast<float>(c.n_rot));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < half; ++i) {
    const float th = c.rope_freq_scale * (theta / (freq_factors ? freq_factors[i] : 1.0f));
    cs[i] = std::cos(th);
    cs[half + i] = std::sin(th);
    theta *= theta_scale;
  }
}

}  // namespace moe
