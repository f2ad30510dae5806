// What `moe train` trains and how: the model shape (a qwen3moe decoder), the routing scheme, the optimizer
// and the data. Plain structs, validated once (validate() throws UsageError with one line naming the flag),
// stored as JSON inside checkpoints so that a resumed run continues with exactly the same settings.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/moe_spec.h"

namespace moe::train {

// How a MoE layer routes tokens during training. Everything that changes the inference computation
// (gating, norm_topk, weights_scale, groups, null experts, selection bias) is exported to the GGUF.
struct RoutingOptions {
  Gating gating = Gating::Softmax;
  bool norm_topk = true;      // renormalise the selected weights to sum to 1
  float weights_scale = 1.0f; // multiplies the selected weights
  int n_group = 1;            // MoGE: experts in n_group groups, k / n_group chosen in each
  int n_null = 0;             // AdaMoE: null experts (zero output) after the real ones
  float aux_alpha = 0.0f;     // Switch/GShard load-balancing loss coefficient (0: off)
  float z_beta = 0.0f;        // ST-MoE router z-loss coefficient (0: off)
  float bias_rate = 0.0f;     // DeepSeek-V3 auxiliary-loss-free bias step gamma (0: off, no bias exported)
  // EvoMoE dense-to-sparse gate: while step < dts_hard_step, each token uses every expert whose
  // Gumbel-softmax probability softmax((s + g) / tau) exceeds dts_threshold; tau falls linearly from
  // dts_tau_max to dts_tau_min over dts_decay_steps. From dts_hard_step on: ordinary top-k.
  bool dts = false;
  float dts_tau_max = 2.0f, dts_tau_min = 0.5f, dts_threshold = 1e-3f;
  int dts_decay_steps = 0, dts_hard_step = 0;

  float dts_tau(int64_t step) const;
  bool dts_soft(int64_t step) const { return dts && step < dts_hard_step; }
};

struct ModelShape {
  int n_layer = 2;
  int n_embd = 64;
  int n_head = 4;
  int n_head_kv = 4;
  int head_dim = 16;
  int n_vocab = 0;       // from the tokenizer
  int n_ctx = 64;        // training sequence length (stored as context_length)
  int n_expert = 4;      // routed experts per layer (1 with top-1 = a dense FFN)
  int n_expert_used = 2; // top-k
  int n_ff_exp = 64;     // routed expert width
  int n_ff_shexp = 0;    // shared expert width (0: none)
  bool shared_gate = false;  // sigmoid gate on the shared expert (Qwen2-MoE style)
  bool tied = true;          // output head reuses token_embd
  float rope_theta = 10000.0f;
  float rms_eps = 1e-6f;
  RoutingOptions routing;

  int n_slots() const { return n_expert + routing.n_null; }  // router rows
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
  // Largest number of experts (real + null) one token can be sent to in a training step.
  int max_slots_per_token() const { return routing.dts ? n_slots() : n_expert_used; }
};

struct OptimConfig {
  int64_t steps = 100;
  int batch = 8;          // sequences per micro-batch
  int accum = 1;          // micro-batches per optimizer step
  float lr = 1e-3f;       // peak learning rate
  float min_lr = 1e-4f;   // end of the cosine
  int64_t warmup = 10;    // linear warmup steps
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;  // on matrices only (not norms)
  float clip = 1.0f;          // global gradient-norm clip (0: off)
  float init_std = 0.02f;
  uint64_t seed = 1;

  float lr_at(int64_t step) const;  // warmup + cosine, step counted from 0
};

struct TrainConfig {
  ModelShape model;
  OptimConfig optim;
  std::vector<std::string> train_files;
  std::string vocab;          // vocab GGUF (empty: byte-level stand-in, for tests)
  double val_fraction = 0.01; // held-out tail of every training file
  int64_t eval_every = 0, eval_tokens = 65536, log_every = 10, save_every = 0;
  int threads = 0;

  void validate() const;  // throws UsageError naming the offending setting
};

// The named presets of --router, applied before explicit flags.
// topk: softmax top-k + Switch aux loss 0.01 + z-loss 0.001. auxfree: sigmoid + per-expert bias (gamma 0.001).
// moge: topk with 2 groups. null: topk + as many null experts as real ones. dts: EvoMoE gate then top-k.
void apply_router_preset(const std::string& name, ModelShape& m, int64_t steps);

nlohmann::json to_json(const TrainConfig& c);
TrainConfig train_config_from_json(const nlohmann::json& j);

}  // namespace moe::train
