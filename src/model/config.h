// Model hyperparameters, read once from GGUF metadata and validated; passed by const reference everywhere.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe_spec.h"

namespace moe {

class GgufFile;

enum class RopeType { Norm, Neox };        // Norm: rotate pairs (2i, 2i+1); Neox: pairs (i, i + n_rot/2)
enum class QkNorm { None, PerHead, Full };  // RMSNorm of q and k: per head (Qwen3) or over all heads (OLMoE)

// YaRN: rotary frequencies between interpolated (x freq_scale) and extrapolated ones, ramped over the correction
// dims from beta_fast/beta_slow and the original context; cos/sin scaled by attn_factor * (1 + 0.1 ln(1/freq_scale)).
struct RopeYarn {
  float ext_factor = 0.0f;   // 0: plain (linear) rope
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int n_ctx_orig = 0;
  float log_mul = 0.0f;      // rope.scaling.yarn_log_multiplier (mscale_all_dim); DeepSeek-2 scales its KQ by it
  float rope_attn_factor = 1.0f;  // rope.scaling.attn_factor
};

struct ModelConfig {
  std::string arch;  // general.architecture
  std::string name;  // general.name (may be empty)
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;    // key/query head size
  int head_dim_v = 0;  // value head size
  int n_rot = 0;       // rotary dimensions per head
  int n_vocab = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear rope scaling factor
  RopeType rope_type = RopeType::Norm;
  float attn_scale = 0.0f;  // 0: 1/sqrt(head_dim)
  QkNorm qk_norm = QkNorm::None;
  float clamp_kqv = 0.0f;   // OLMoE clip_qkv; 0 = off

  int n_ff = 0;             // dense FFN width (dense layers)
  int n_expert = 0;         // routed experts per MoE layer
  int n_expert_used = 0;    // top-k
  int n_ff_exp = 0;         // routed expert FFN width
  int n_ff_shexp = 0;       // shared expert FFN width (0: none)
  bool shared_expert_gate = false;  // Qwen2-MoE: shared expert output scaled by sigmoid(w·x)
  RouterSpec router;
  std::vector<bool> layer_is_moe;   // per layer: MoE FFN or dense FFN

  bool tied_output = false;  // output head reuses token_embd

  // Attention variants (gpt-oss, SmallThinker). Empty per-layer vectors mean "every layer the plain way".
  int n_swa = 0;                    // sliding window (positions a query sees, itself included); 0: none
  std::vector<bool> layer_swa;      // per layer: windowed (true) or full attention
  std::vector<bool> layer_nope;     // per layer: no RoPE at all (SmallThinker's NoPE layers)
  bool attn_sinks = false;          // per-head learned sink logit in the softmax denominator (attn_sinks)
  // Where a MoE layer's router reads from: the FFN input (after attention, normalised; the usual) or the layer
  // input before attention (SmallThinker), which lets the experts be known, and loaded, while attention runs.
  bool router_before_attention = false;
  ExpertFfnSpec expert_ffn;         // what a routed expert computes (SwiGLU, ReGLU, gpt-oss's clamped SwiGLU)

  bool is_swa(int il) const { return n_swa > 0 && !layer_swa.empty() && layer_swa[static_cast<size_t>(il)]; }
  bool uses_rope(int il) const { return layer_nope.empty() || !layer_nope[static_cast<size_t>(il)]; }
  // YaRN rope scaling (rope.scaling.type = yarn): ext_factor 0 = off. See rope.h.
  RopeYarn yarn;
  // Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2; 0 ranks = not MLA). Per head the query is
  // [nope | rope] (mla_head_k = nope + n_rot wide), the value mla_head_v wide; keys and values come from a
  // kv_lora_rank latent shared by all heads plus one rope part of n_rot.
  int q_lora_rank = 0;   // 0: plain attn_q
  int kv_lora_rank = 0;
  int mla_head_k = 0;
  int mla_head_v = 0;
  bool mla_kv_b = false;  // legacy files: one attn_kv_b instead of attn_k_b / attn_v_b
  int n_layer_nextn = 0;  // NextN/MTP blocks after the last layer (in the file, skipped at inference)

  int n_moe_layers() const;
  std::string describe() const;  // one-paragraph summary for logs
};

// Reads the hparams every architecture shares ({arch}.block_count, embedding_length, attention.*, rope.*,
// expert_*). Architecture files then fill in their own defaults and checks.
ModelConfig read_common_config(const GgufFile& f);

}  // namespace moe
