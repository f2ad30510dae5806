// The semantics of a model's MoE layers: how the router turns logits into expert ids and weights, and what
// function an expert computes. Stored explicitly per model and read from the file where it says so, never
// hard-coded in a kernel. Lives in moe/ so that the MoE core, the model loader and the trainer share one definition.
#pragma once

namespace moe {

enum class Gating { Softmax, Sigmoid };  // router scores from logits

// Softmax/sigmoid, renormalise the k weights or not, scale them, optional group-limited top-k, null experts.
struct RouterSpec {
  Gating gating = Gating::Softmax;
  bool norm_topk = true;       // renormalise the selected weights to sum to 1
  float weights_scale = 1.0f;  // multiplied into the k weights (routed_scaling_factor)
  int n_group = 1;             // group-limited routing (DeepSeek-V3): experts in n_group groups,
  int n_group_used = 1;        //   only the best n_group_used groups are eligible
  bool group_balanced = false; // MoGE: every group contributes exactly k / n_group experts per token
  int n_null = 0;              // AdaMoE null experts after the real ones: selectable, zero output
};

// The function an expert FFN computes from its gate and up projections: act(gate·x) * (up·x) -> down.
enum class ExpertActivation {
  SwiGLU,  // silu(g) * u
};

struct ExpertFfnSpec {
  ExpertActivation act = ExpertActivation::SwiGLU;
};

}  // namespace moe
