// GLM-4.5 (`glm4moe`): grouped-query attention with q/k/v biases, optional per-head q/k RMSNorm and NEOX RoPE on a
// prefix of each head (partial rotary); leading dense layers, then MoE layers routed like DeepSeek-V3 without
// groups (sigmoid scores, required selection bias exp_probs_b, renormalised, scaled) plus shared experts. The
// pre-FFN norm is called post_attention_norm. NextN/MTP blocks at the end are skipped.
#include "core/error.h"
#include "format/gguf.h"
#include "model/arch_common.h"
#include "model/arch_deepseek2.h"

namespace moe {

namespace {

void glm4moe_configure(const GgufFile& f, ModelConfig& c) {
  const std::string a = c.arch + ".";
  c.rope_type = RopeType::Neox;
  if (f.find(a + "rope.dimension_sections"))
    throw FormatError(f.path() + ": multimodal rope (" + a + "rope.dimension_sections) is not supported yet");
  if (c.head_dim != c.head_dim_v)
    throw FormatError(f.path() + ": glm4moe needs equal attention.key_length and value_length");
  // The q/k norms are optional (absent in some GLM-4.5 conversions); the first layer decides for all.
  c.qk_norm = f.tensor("blk.0.attn_q_norm.weight") ? QkNorm::PerHead : QkNorm::None;
  if (!f.get_uint(a + "expert_gating_func")) c.router.gating = Gating::Sigmoid;  // llama.cpp's default here
  c.router.norm_topk = false;
  drop_nextn_layers(f, c);
  read_dense_lead_and_shared(f, c);
  read_router_overrides(f, c);
}

void glm4moe_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  lw.ffn_norm = b.vec(layer_tensor(il, "post_attention_norm.weight"), c.n_embd);
  if (c.layer_is_moe[static_cast<size_t>(il)]) {
    lw.moe.router = b.mat(layer_tensor(il, "ffn_gate_inp.weight"), c.n_embd, c.n_expert);
    lw.moe.selection_bias = b.vec(layer_tensor(il, "exp_probs_b.bias"), c.n_expert);
    lw.moe.gate = b.experts(layer_tensor(il, "ffn_gate_exps.weight"), c.n_embd, c.n_ff_exp, c.n_expert);
    lw.moe.up = b.experts(layer_tensor(il, "ffn_up_exps.weight"), c.n_embd, c.n_ff_exp, c.n_expert);
    lw.moe.down = b.experts(layer_tensor(il, "ffn_down_exps.weight"), c.n_ff_exp, c.n_embd, c.n_expert);
    bind_shared_expert(b, c, il, lw);
  } else {
    if (c.n_ff <= 0) throw FormatError("layer " + std::to_string(il) + " is dense but feed_forward_length is missing");
    lw.ffn_gate = b.mat(layer_tensor(il, "ffn_gate.weight"), c.n_embd, c.n_ff);
    lw.ffn_up = b.mat(layer_tensor(il, "ffn_up.weight"), c.n_embd, c.n_ff);
    lw.ffn_down = b.mat(layer_tensor(il, "ffn_down.weight"), c.n_ff, c.n_embd);
  }
  skip_nextn_tensors(b, c, il);
}

}  // namespace

extern const Architecture kArchGlm4Moe = {"glm4moe", glm4moe_configure, glm4moe_bind_layer};

}  // namespace moe
