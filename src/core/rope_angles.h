// Rotary position embedding angles, shared by inference (model/rope) and training (train/ops) so that both
// rotate alike: theta_i = pos * base^(-2i / n_rot), advanced by repeated multiplication in float as ggml does,
// which keeps results equal to llama.cpp's to float rounding.
#pragma once
#include <cstdint>

namespace moe {

// For each rotary pair i in [0, n_rot / 2): angle = freq_scale * theta_i / (freq_factors ? freq_factors[i] : 1);
// cos_out[i * stride] = cos(angle), sin_out[i * stride] = sin(angle).
void rope_cos_sin_at(int64_t pos, int n_rot, float theta_base, float freq_scale, const float* freq_factors,
                     float* cos_out, float* sin_out, int64_t stride);

}  // namespace moe
