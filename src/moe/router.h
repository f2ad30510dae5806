// Token routing: router logits -> expert ids and weights, following the model's RouterSpec, with the
// run-time controls of expert steering (ban / force), top-k override and adaptive expert count.
// Tie rule everywhere: on equal scores the lower expert id wins.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/moe_spec.h"

namespace moe {

// Run-time routing controls (all off by default = the model as trained).
struct RoutingControl {
  int top_k = 0;           // override the model's k (0 = keep)
  float min_weight = 0.f;  // adaptive: drop selected experts whose normalised weight is below this (top-1 kept)
  float top_p = 0.f;       // adaptive: keep the fewest experts whose cumulative probability reaches top_p (<= k)
  // Per layer, per expert flags; an empty outer vector means "none". banned experts are never selected (the
  // next best takes the slot); forced experts are always added, with their own router weight.
  std::vector<std::vector<uint8_t>> banned, forced;

  bool adaptive() const { return min_weight > 0.f || top_p > 0.f; }
  bool any() const { return top_k > 0 || adaptive() || !banned.empty() || !forced.empty(); }
  // Largest number of experts one token can use in a layer with n_expert experts and model k.
  int max_experts_per_token(int n_expert, int model_k) const;
};

// probs = softmax(logits) over n entries (may alias): the router's softmax, the reference kernel's, which the
// training forward uses too so that both route alike.
void router_softmax(const float* logits, int n, float* probs);

// Routes one token.
//   logits: n_total = n_expert + spec.n_null scores (null experts are the last spec.n_null ids).
//   selection_bias: optional per-expert bias added for selection only (aux-loss-free / DeepSeek-V3), or null.
//   probs_out: n_total floats, receives the gating probabilities (softmax or sigmoid).
//   scratch: n_total + 2 * spec.n_group floats.
//   ids / weights: room for max_experts_per_token(); returns how many were written. Null experts selected by
//   the router are kept in the list (their weight counts in the normalisation) and skipped by the caller.
int route_token(const RouterSpec& spec, int model_k, int n_expert, const float* logits, const float* selection_bias,
                const RoutingControl& ctl, int layer, float* probs_out, float* scratch, int32_t* ids, float* weights);

}  // namespace moe
