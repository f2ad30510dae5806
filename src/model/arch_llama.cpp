// Llama, dense or with experts (Mixtral): NORM (GPT-J style) RoPE, no q/k norm; with experts, a softmax
// router -> top-k -> renormalised weights. Expert width is feed_forward_length unless stated separately.
#include "core/error.h"
#include "model/arch_common.h"

namespace moe {

static void llama_configure(const GgufFile& f, ModelConfig& c) {
  c.rope_type = RopeType::Norm;
  c.router.norm_topk = true;
  if (c.n_expert > 0 && c.n_ff_exp <= 0) c.n_ff_exp = c.n_ff;
  if (c.n_expert > 0 && c.n_ff_exp <= 0) throw FormatError(f.path() + ": llama with experts needs feed_forward_length");
  if (c.n_ff_shexp > 0) c.shared_expert_gate = false;
  read_router_overrides(f, c);
}

static void llama_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  if (c.layer_is_moe[static_cast<size_t>(il)]) {
    bind_moe_ffn(b, c, il, lw);
    bind_shared_expert(b, c, il, lw);
  } else {
    bind_dense_ffn(b, c, il, lw);
  }
}

extern const Architecture kArchLlama = {"llama", llama_configure, llama_bind_layer};

}  // namespace moe
