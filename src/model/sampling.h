// Token sampling: repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw, in llama.cpp's
// default order. The draw walks the kept candidates from the most likely down, or, when nothing truncates (top-k,
// top-p and min-p all off), the whole vocabulary in id order. temperature 0 is greedy (ties to the lower id). Same seed, same logits -> same tokens on
// every platform (the generator and the uniform draw are defined here, not by the standard library).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace moe {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;           // 0: off
  float top_p = 0.95f;      // 1: off
  float min_p = 0.05f;      // 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplerParams& p, int n_vocab);  // throws UsageError on out-of-range parameters
  // Picks the next token from logits (n_vocab values); `history` is the sequence so far (for penalties).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  const SamplerParams& params() const { return p_; }

 private:
  double uniform();  // [0, 1)
  SamplerParams p_;
  uint64_t state_;
  struct Cand {
    int32_t id;
    float logit;
  };
  std::vector<Cand> cand_;
  std::vector<float> work_;
  std::vector<double> probs_;
};

// Index of the largest value; the lowest index among equals.
int32_t argmax(std::span<const float> x);

}  // namespace moe
