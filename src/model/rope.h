// Rotary position embedding tables: cos and sin per rotary pair for one position, computed as ggml does (theta
// advanced by repeated multiplication in float) so that results agree with llama.cpp to float rounding.
#pragma once
#include <cstdint>

#include "model/config.h"

namespace moe {

// cs: cos[n_rot / 2] then sin[n_rot / 2] for position pos. freq_factors: optional [n_rot / 2] divisors (rope_freqs).
void rope_cos_sin(const ModelConfig& c, const float* freq_factors, int64_t pos, float* cs);

}  // namespace moe
