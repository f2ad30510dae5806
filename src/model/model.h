// A loaded model: the mapped GGUF, its validated config and views of every weight. Immutable after load,
// so any number of contexts (sequences) can run on it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor_view.h"
#include "format/gguf.h"
#include "model/attention.h"
#include "model/config.h"
#include "model/weights.h"
#include "moe/moe_ffn.h"

namespace moe {

// Multi-head latent attention weights (DeepSeek-V2/V3). Per head, q = [nope | rope]; the latent c has kv_lora_rank
// values. A legacy attn_kv_b is split at load into k_b/v_b (owned below) so that one attention form serves both.
struct MlaWeights {
  Mat q_a;          // [q_lora_rank rows, n_embd cols] (absent when q_lora_rank = 0: LayerWeights::wq is used)
  Vec q_a_norm;     // [q_lora_rank]
  Mat q_b;          // [n_head*(nope+rope) rows, q_lora_rank cols]
  Mat kv_a;         // [kv_lora_rank + rope rows, n_embd cols]: latent then the shared k rope part
  Vec kv_a_norm;    // [kv_lora_rank]
  ExpertMats k_b;   // [n_head][kv_lora_rank rows, nope cols]: absorbs q_nope into the latent space
  ExpertMats v_b;   // [n_head][v rows, kv_lora_rank cols]: latent attention output -> head value
  std::vector<float> split_kv_b;  // storage of k_b/v_b when they come from a legacy attn_kv_b
  // File type of that legacy attn_kv_b (F32 otherwise). llama.cpp multiplies it with the latent in the type's
  // activation format (Q8_0 for Q8_0, ...), so the attention must see the latent rounded that way.
  DType kv_b_type = DType::F32;
};

struct LayerWeights {
  Vec attn_norm;              // [n_embd]
  Mat wq, wk, wv;             // [n_head*head_dim | n_head_kv*head_dim rows, n_embd cols]
  Vec bq, bk, bv;             // optional biases (Qwen2-MoE)
  Mat wo;                     // [n_embd rows, n_head*head_dim cols]
  Vec bo;                     // optional
  Vec attn_sinks;             // optional [n_head]: per-head sink logit (gpt-oss)
  Vec q_norm, k_norm;         // [head_dim] (per head) or [n_head*head_dim] (over all heads)
  Vec ffn_norm;               // [n_embd]
  Mat ffn_gate, ffn_up, ffn_down;  // dense FFN (dense layers only)
  MoeWeights moe;                  // routed experts (MoE layers only)
  Mat gate_shexp, up_shexp, down_shexp;  // shared expert (optional)
  Mat shexp_gate;                        // [1 row, n_embd]: sigmoid gate of the shared expert (optional)
  MlaWeights mla;                        // multi-head latent attention (MLA architectures only)
};

class Model;

// What an architecture file provides: its config defaults and checks, and its tensors.
struct Architecture {
  const char* name;
  void (*configure)(const GgufFile& f, ModelConfig& cfg);             // arch defaults + checks
  void (*bind_layer)(TensorBinder& b, const ModelConfig& cfg, int il, LayerWeights& lw);
  // The attention block this architecture runs (null: grouped-query attention, make_gqa_attention).
  std::unique_ptr<AttentionBlock> (*make_attention)(const Model& model, const Exec& ex, int max_tokens,
                                                    int n_ctx) = nullptr;
};

// The architecture registered under `name`, or nullptr.
const Architecture* find_architecture(const std::string& name);
std::vector<std::string> supported_architectures();

class Model {
 public:
  // Maps and validates `path`; throws FormatError naming the file and the problem.
  static std::unique_ptr<Model> load(const std::string& path);

  const ModelConfig& config() const { return cfg_; }
  const GgufFile& file() const { return *file_; }
  const Architecture& arch() const { return *arch_; }

  Mat tok_embd;                     // [n_vocab rows, n_embd cols]
  Vec output_norm;                  // [n_embd]
  Mat output;                       // [n_vocab rows, n_embd cols] (token_embd when tied)
  Vec rope_freqs;                   // optional [n_rot/2] frequency factors
  std::vector<LayerWeights> layers;

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  ModelConfig cfg_;
  const Architecture* arch_ = nullptr;
};

}  // namespace moe
