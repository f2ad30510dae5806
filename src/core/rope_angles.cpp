#include "core/rope_angles.h"

#include <cmath>

namespace moe {

void rope_cos_sin_at(int64_t pos, int n_rot, float theta_base, float freq_scale, const float* freq_factors,
                     float* cos_out, float* sin_out, int64_t stride) {
  const int half = n_rot / 2;
  const float theta_scale = std::pow(theta_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < half; ++i) {
    const float th = freq_scale * (theta / (freq_factors ? freq_factors[i] : 1.0f));
    cos_out[i * stride] = std::cos(th);
    sin_out[i * stride] = std::sin(th);
    theta *= theta_scale;
  }
}

}  // namespace moe
