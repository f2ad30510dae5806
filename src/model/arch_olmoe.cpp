// OLMoE (OLMoE-1B-7B): q/k RMSNorm over all heads (weights of n_head*head_dim), NEOX RoPE, optional qkv clip,
// softmax router -> top-k without renormalisation. The expert width is feed_forward_length.
#include "core/error.h"
#include "model/arch_common.h"

namespace moe {

static void olmoe_configure(const GgufFile& f, ModelConfig& c) {
  c.rope_type = RopeType::Neox;
  c.qk_norm = QkNorm::Full;
  c.router.norm_topk = false;
  if (c.n_expert <= 0) throw FormatError(f.path() + ": olmoe needs expert_count > 0");
  if (c.n_ff_exp <= 0) c.n_ff_exp = c.n_ff;
  if (c.n_ff_exp <= 0) throw FormatError(f.path() + ": olmoe needs feed_forward_length");
  read_router_overrides(f, c);
}

static void olmoe_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  if (c.layer_is_moe[static_cast<size_t>(il)]) bind_moe_ffn(b, c, il, lw);
  else bind_dense_ffn(b, c, il, lw);
}

extern const Architecture kArchOlmoe = {"olmoe", olmoe_configure, olmoe_bind_layer};

}  // namespace moe
