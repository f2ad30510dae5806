#include "model/rope.h"

#include "core/rope_angles.h"

namespace moe {

void rope_cos_sin(const ModelConfig& c, const float* freq_factors, int64_t pos, float* cs) {
  rope_cos_sin_at(pos, c.n_rot, c.rope_theta, c.rope_freq_scale, freq_factors, cs, cs + c.n_rot / 2, 1);
}

}  // namespace moe
