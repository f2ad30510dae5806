// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B, Qwen3-Coder): per-head q/k RMSNorm before NEOX RoPE,
// softmax router -> top-k -> renormalised weights (released checkpoints), no shared expert.
#include "core/error.h"
#include "model/arch_common.h"

namespace moe {

static void qwen3moe_configure(const GgufFile& f, ModelConfig& c) {
  c.rope_type = RopeType::Neox;
  c.qk_norm = QkNorm::PerHead;
  c.router.norm_topk = true;  // llama.cpp hard-codes this; files may state otherwise (read below)
  if (c.n_expert <= 0) throw FormatError(f.path() + ": qwen3moe needs expert_count > 0");
  if (c.n_ff_exp <= 0) c.n_ff_exp = c.n_ff > 0 ? c.n_ff / c.n_expert_used : 0;
  if (c.n_ff_exp <= 0) throw FormatError(f.path() + ": qwen3moe needs expert_feed_forward_length");
  c.shared_expert_gate = f.get_bool("moe.shared_expert_gate").value_or(false);
  read_router_overrides(f, c);
}

static void qwen3moe_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  if (c.layer_is_moe[static_cast<size_t>(il)]) {
    bind_moe_ffn(b, c, il, lw);
    bind_shared_expert(b, c, il, lw);  // only when the file states a shared expert width (our trainer's files)
  } else {
    bind_dense_ffn(b, c, il, lw);
  }
}

extern const Architecture kArchQwen3Moe = {"qwen3moe", qwen3moe_configure, qwen3moe_bind_layer};

}  // namespace moe
