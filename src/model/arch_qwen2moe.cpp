// Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): q/k/v biases, NEOX RoPE, softmax router -> top-k without
// renormalisation, plus a shared expert whose output is scaled by sigmoid(w·x).
#include "core/error.h"
#include "model/arch_common.h"

namespace moe {

static void qwen2moe_configure(const GgufFile& f, ModelConfig& c) {
  c.rope_type = RopeType::Neox;
  c.router.norm_topk = false;  // norm_topk_prob = false in the released configs
  if (c.n_expert <= 0) throw FormatError(f.path() + ": qwen2moe needs expert_count > 0");
  if (c.n_ff_exp <= 0) c.n_ff_exp = c.n_ff > 0 ? c.n_ff / c.n_expert_used : 0;
  if (c.n_ff_exp <= 0) throw FormatError(f.path() + ": qwen2moe needs expert_feed_forward_length");
  c.shared_expert_gate = true;
  read_router_overrides(f, c);
}

static void qwen2moe_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  if (c.layer_is_moe[static_cast<size_t>(il)]) {
    bind_moe_ffn(b, c, il, lw);
    bind_shared_expert(b, c, il, lw);
  } else {
    bind_dense_ffn(b, c, il, lw);
  }
}

extern const Architecture kArchQwen2Moe = {"qwen2moe", qwen2moe_configure, qwen2moe_bind_layer};

}  // namespace moe
