// AdamW (decoupled weight decay, PyTorch's update order and bias correction), global-norm gradient clipping,
// and the aux-loss-free bias update of DeepSeek-V3.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "train/params.h"
#include "train/train_config.h"

namespace moe::train {

class AdamW {
 public:
  AdamW(const ParamLayout& layout, const OptimConfig& cfg);

  // Global L2 norm of grads (double accumulation, per-thread partial sums added in thread order).
  double grad_norm(ThreadPool& pool, const float* grads) const;
  // Scales grads by clip / (norm + 1e-6) when norm > clip (torch.nn.utils.clip_grad_norm_). Returns the norm.
  double clip(ThreadPool& pool, float* grads, float max_norm) const;
  // The factor clip() would scale by, for a fused step(..., grad_scale).
  static float clip_factor(double norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
  }
  // One step at learning rate lr: t += 1, then for every tensor
  //   p *= 1 - lr * wd (decayed tensors only); m, v updated; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  // grad_scale multiplies every gradient first (a fused clip).
  void step(ThreadPool& pool, float* params, const float* grads, float lr, float grad_scale = 1.0f);

  int64_t t = 0;         // steps taken
  std::vector<float> m;  // first moments, layout order
  std::vector<float> v;  // second moments

 private:
  const ParamLayout& layout_;
  OptimConfig cfg_;
  std::vector<uint8_t> decay_;  // per float: weight decay applies (built once from the layout)
  mutable std::vector<double> part_;  // per-thread partial sums of the norm
};

// b_i += rate * sign(mean load - load_i) over the real experts (DeepSeek-V3 aux-loss-free balancing).
void update_selection_bias(std::vector<float>& bias, const std::vector<double>& load, float rate);

}  // namespace moe::train
