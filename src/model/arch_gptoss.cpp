// gpt-oss (OpenAI gpt-oss-20b/120b): GQA with q/k/v/o biases and NEOX RoPE over the whole head, a learned sink logit
// per head, sliding-window attention on alternate layers (period 2 unless the file says otherwise: layers 0, 2, ...
// windowed), a post-attention norm feeding the MoE, a biased router whose top-k logits are softmaxed, and experts
// with biases and a clamped SwiGLU (alpha 1.702, limit 7; the constants are not in the file).
#include "core/error.h"
#include "format/gguf.h"
#include "model/arch_common.h"

namespace moe {

namespace {

// A 2-D F32 bias of the stacked experts ([n_expert][n], ne = {n, n_expert}).
const float* expert_bias(TensorBinder& b, const GgufFile& f, const std::string& name, int64_t n, int64_t n_expert) {
  const Mat m = b.mat(name, n, n_expert);
  if (m.type != DType::F32) throw FormatError(f.path() + ": tensor '" + name + "' must be f32");
  if (m.row_stride != static_cast<size_t>(n) * sizeof(float))
    throw FormatError(f.path() + ": tensor '" + name + "' is not contiguous");
  return reinterpret_cast<const float*>(m.data);
}

}  // namespace

static void gptoss_configure(const GgufFile& f, ModelConfig& c) {
  c.rope_type = RopeType::Neox;
  if (c.n_expert <= 0) throw FormatError(f.path() + ": gpt-oss needs expert_count > 0");
  if (c.n_ff_exp <= 0) throw FormatError(f.path() + ": gpt-oss needs expert_feed_forward_length");
  c.router.gating = Gating::SoftmaxTopK;
  c.router.norm_topk = false;
  c.expert_ffn.act = ExpertActivation::SwiGLUClamped;
  c.attn_sinks = true;
  const std::string key = c.arch + ".attention.sliding_window";
  auto w = f.get_uint(key);
  if (!w) throw FormatError(f.path() + ": gpt-oss needs metadata '" + key + "'");
  if (*w == 0 || *w > static_cast<uint64_t>(c.n_ctx_train))
    throw FormatError(f.path() + ": metadata '" + key + "' = " + std::to_string(*w) +
                      " must be in [1, context_length " + std::to_string(c.n_ctx_train) + "]");
  c.n_swa = static_cast<int>(*w);
  read_swa_pattern(f, c, 2, false);
  read_router_overrides(f, c);
}

static void gptoss_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  lw.attn_sinks = b.vec(layer_tensor(il, "attn_sinks.weight"), c.n_head);
  lw.ffn_norm = b.vec(layer_tensor(il, "post_attention_norm.weight"), c.n_embd);
  if (!c.layer_is_moe[static_cast<size_t>(il)])
    throw FormatError("gpt-oss: layer " + std::to_string(il) + " has no experts (every layer is MoE)");
  MoeWeights& m = lw.moe;
  m.router = b.mat(layer_tensor(il, "ffn_gate_inp.weight"), c.n_embd, c.n_expert);
  m.router_bias = b.vec(layer_tensor(il, "ffn_gate_inp.bias"), c.n_expert);
  m.gate = b.experts(layer_tensor(il, "ffn_gate_exps.weight"), c.n_embd, c.n_ff_exp, c.n_expert);
  m.up = b.experts(layer_tensor(il, "ffn_up_exps.weight"), c.n_embd, c.n_ff_exp, c.n_expert);
  m.down = b.experts(layer_tensor(il, "ffn_down_exps.weight"), c.n_ff_exp, c.n_embd, c.n_expert);
  const GgufFile& f = b.file();
  m.gate_bias = expert_bias(b, f, layer_tensor(il, "ffn_gate_exps.bias"), c.n_ff_exp, c.n_expert);
  m.up_bias = expert_bias(b, f, layer_tensor(il, "ffn_up_exps.bias"), c.n_ff_exp, c.n_expert);
  m.down_bias = expert_bias(b, f, layer_tensor(il, "ffn_down_exps.bias"), c.n_embd, c.n_expert);
}

extern const Architecture kArchGptOss = {"gpt-oss", gptoss_configure, gptoss_bind_layer};

}  // namespace moe
