// Rotary position embedding tables: cos and sin per rotary pair for one position, computed as ggml does (theta
// advanced by repeated multiplication in float) so that results agree with llama.cpp to float rounding.
#pragma once
#include <cstdint>

#include "model/config.h"

namespace moe {

// cs: cos[n_rot / 2] then sin[n_rot / 2] for position pos. freq_factors: optional [n_rot / 2] divisors (rope_freqs).
// With YaRN (c.yarn.ext_factor != 0) the angles ramp from extrapolated (pairs below the correction range) to
// interpolated ones, and cos/sin carry the magnitude c.yarn.attn_factor * (1 + 0.1 ln(1 / freq_scale)).
void rope_cos_sin(const ModelConfig& c, const float* freq_factors, int64_t pos, float* cs);

// YaRN correction range [lo, hi] in rotary pairs: the pairs that turn fewer than beta_fast (lo) and beta_slow (hi)
// times over the original context, clamped to [0, n_rot - 1].
void yarn_corr_dims(const ModelConfig& c, float dims[2]);

// The attn_factor handed to the rope for YaRN, as llama.cpp derives it: the magnitude the rope applies
// (1 + 0.1 ln s) cancelled, times get_mscale(s, 1) / get_mscale(s, log_mul) (DeepSeek-2: 1, its mscale goes to
// the KQ scale instead), times rope.scaling.attn_factor. s = 1 / freq_scale.
float yarn_attn_factor(const ModelConfig& c, bool deepseek2);

}  // namespace moe
