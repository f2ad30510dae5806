#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include "core/rope_angles.h"

namespace moe {

namespace {

// The rotary dim whose wavelength fits n_beta times into the original context (ggml's yarn_corr_dim).
float corr_dim(int n_rot, int n_ctx_orig, float n_beta, float base) {
  return static_cast<float>(n_rot) * std::log(static_cast<float>(n_ctx_orig) / (n_beta * 2.0f * static_cast<float>(M_PI))) /
         (2.0f * std::log(base));
}

float get_mscale(float scale, float mscale) { return scale <= 1.0f ? 1.0f : 0.1f * mscale * std::log(scale) + 1.0f; }

}  // namespace

void yarn_corr_dims(const ModelConfig& c, float dims[2]) {
  const float lo = std::floor(corr_dim(c.n_rot, c.yarn.n_ctx_orig, c.yarn.beta_fast, c.rope_theta));
  const float hi = std::ceil(corr_dim(c.n_rot, c.yarn.n_ctx_orig, c.yarn.beta_slow, c.rope_theta));
  dims[0] = std::max(0.0f, lo);
  dims[1] = std::min(static_cast<float>(c.n_rot - 1), hi);
}

float yarn_attn_factor(const ModelConfig& c, bool deepseek2) {
  const RopeYarn& y = c.yarn;
  float f = 1.0f;
  if (y.ext_factor != 0.0f) {
    const float factor = 1.0f / c.rope_freq_scale;
    if (y.log_mul != 0.0f) {
      // llama.cpp assumes mscale = 1, except DeepSeek-2 where mscale = mscale_all_dim (so the ratio is 1).
      const float mscale = deepseek2 && y.log_mul != 1.0f ? y.log_mul : 1.0f;
      f = get_mscale(factor, mscale) / get_mscale(factor, y.log_mul);
    } else {
      f = get_mscale(factor, 1.0f);
    }
    f *= 1.0f / (1.0f + 0.1f * std::log(factor));  // the rope multiplies this back
  }
  return f * y.rope_attn_factor;
}

void rope_cos_sin(const ModelConfig& c, const float* freq_factors, int64_t pos, float* cs) {
  const int half = c.n_rot / 2;
  const float theta_scale = std::pow(c.rope_theta, -2.0f / static_cast<float>(c.n_rot));
  float theta = static_cast<float>(pos);
  const RopeYarn& y = c.yarn;
  if (y.ext_factor == 0.0f) {
    rope_cos_sin_at(pos, c.n_rot, c.rope_theta, c.rope_freq_scale, freq_factors, cs, cs + c.n_rot / 2, 1);
    return;
  }
  float dims[2];
  yarn_corr_dims(c, dims);
  const float mscale = y.attn_factor * (1.0f + 0.1f * std::log(1.0f / c.rope_freq_scale));
  for (int i = 0; i < half; ++i) {
    const float extrap = theta / (freq_factors ? freq_factors[i] : 1.0f);
    const float interp = c.rope_freq_scale * extrap;
    // 1 for the fast-turning pairs below dims[0] (kept as trained), 0 from dims[1] on (interpolated).
    const float ramp = 1.0f - std::min(1.0f, std::max(0.0f, (static_cast<float>(i) - dims[0]) / std::max(0.001f, dims[1] - dims[0])));
    const float mix = ramp * y.ext_factor;
    const float th = interp * (1.0f - mix) + extrap * mix;
    cs[i] = std::cos(th) * mscale;
    cs[half + i] = std::sin(th) * mscale;
    theta *= theta_scale;
  }
}

}  // namespace moe
