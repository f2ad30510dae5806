// The semantics of a model's MoE layers: how the router turns logits into expert ids and weights, and what
// function an expert computes. Stored explicitly per model and read from the file where it says so, never
// hard-coded in a kernel. Lives in moe/ so that the MoE core, the model loader and the trainer share one definition.
#pragma once

namespace moe {

// Router scores from logits. SoftmaxTopK (gpt-oss, llama.cpp's SOFTMAX_WEIGHT): select by raw logit, then the
// weights are a softmax over the k selected logits only.
enum class Gating { Softmax, Sigmoid, SoftmaxTopK };

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
  SwiGLU,         // silu(g) * u
  ReGLU,          // relu(g) * u (SmallThinker)
  SwiGLUClamped,  // gpt-oss: x = min(g, limit), y = clamp(u, -limit, limit), x * sigmoid(alpha * x) * (y + 1)
};

struct ExpertFfnSpec {
  ExpertActivation act = ExpertActivation::SwiGLU;
  float alpha = 1.702f;  // SwiGLUClamped only (gpt-oss's constants; not stored in its GGUF files)
  float limit = 7.0f;
};

}  // namespace moe
