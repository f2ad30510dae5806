// A loaded model: the mapped GGUF, its validated config and views of every weight. Immutable after load,
// so any number of contexts (sequences) can run on it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor_view.h"
#include "format/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "moe/moe_ffn.h"

namespace moe {

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
};

class Model;

// What an architecture file provides: its config defaults and checks, and its tensors.
struct Architecture {
  const char* name;
  void (*configure)(const GgufFile& f, ModelConfig& cfg);             // arch defaults + checks
  void (*bind_layer)(TensorBinder& b, const ModelConfig& cfg, int il, LayerWeights& lw);
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
