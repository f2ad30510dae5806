// SmallThinker (PowerInfer SmallThinker-4B/21B): the router reads the layer input before attention (so the experts
// are known while attention runs), sigmoid gating renormalised over the top-k, ReGLU experts, no attention biases,
// NEOX RoPE, tied output allowed. Its attention.sliding_window key is a switch, not a size (as llama.cpp reads it):
// when present and > 0 the window becomes 4096 on every layer but each 4th (period 4, first layer dense), and
// those dense layers (il % 4 == 0) use no RoPE at all; without the key every layer is full and uses RoPE.
#include "core/error.h"
#include "format/gguf.h"
#include "model/arch_common.h"

namespace moe {

static void smallthinker_configure(const GgufFile& f, ModelConfig& c) {
  c.rope_type = RopeType::Neox;
  if (c.n_expert <= 0) throw FormatError(f.path() + ": smallthinker needs expert_count > 0");
  if (c.n_ff_exp <= 0) throw FormatError(f.path() + ": smallthinker needs expert_feed_forward_length");
  if (c.n_rot != c.head_dim) throw FormatError(f.path() + ": smallthinker rotates whole heads (rope.dimension_count)");
  // The gating is as stored (sigmoid in the released models); llama.cpp has no default for it.
  if (!f.get_uint(c.arch + ".expert_gating_func"))
    throw FormatError(f.path() + ": smallthinker needs metadata '" + c.arch + ".expert_gating_func'");
  c.router.norm_topk = true;  // hard-coded in the reference implementation
  c.expert_ffn.act = ExpertActivation::ReGLU;
  c.router_before_attention = true;
  const std::string key = c.arch + ".attention.sliding_window";
  if (auto w = f.get_uint(key); w && *w > 0) {
    constexpr int kWindow = 4096, kNoRopeStep = 4;
    c.n_swa = kWindow;
    read_swa_pattern(f, c, 4, true);
    c.layer_nope.assign(static_cast<size_t>(c.n_layer), false);
    for (int il = 0; il < c.n_layer; ++il) c.layer_nope[static_cast<size_t>(il)] = il % kNoRopeStep == 0;
  }
  read_router_overrides(f, c);
}

static void smallthinker_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  bind_attention(b, c, il, lw);
  if (!c.layer_is_moe[static_cast<size_t>(il)])
    throw FormatError("smallthinker: layer " + std::to_string(il) + " has no experts (every layer is MoE)");
  bind_moe_ffn(b, c, il, lw);
}

extern const Architecture kArchSmallThinker = {"smallthinker", smallthinker_configure, smallthinker_bind_layer};

}  // namespace moe
