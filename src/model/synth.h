// Random-weight GGUF models of any shape and weight type (`moe synth`), so that tests and benchmarks run on
// realistic shapes without downloading anything. Deterministic for a seed; written atomically, one tensor at
// a time (a 7 B-parameter file never sits in memory whole).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace moe {

class GgufWriter;

// Shape of the DeepSeek-style architectures: MLA (deepseek2 only), leading dense layers, shared experts, groups.
struct DeepseekSynth {
  int q_lora = 0;         // deepseek2: q low-rank (0: plain attn_q)
  int kv_lora = 32;       // deepseek2: KV latent rank
  int rope_dim = 0;       // rotary dims per head (0: deepseek2 32, glm4moe head_dim / 2)
  int nope_dim = 64;      // deepseek2: non-rotary q/k dims per head
  int v_head_dim = 32;    // deepseek2: value head size
  bool kv_b = false;      // deepseek2: legacy single attn_kv_b instead of attn_k_b / attn_v_b
  int dense_layers = 1;   // leading dense blocks
  int shared_experts = 1; // shared experts (fused width shared_experts * expert_ffn)
  int groups = 1;         // expert groups (1: no group-limited routing)
  int groups_used = 1;
  float routed_scale = 1.0f;
  float yarn_factor = 0.0f;  // > 1: YaRN rope scaling from yarn_orig_ctx (deepseek2, also gpt-oss)
  int yarn_orig_ctx = 0;     // 0: ctx / yarn_factor
};

struct SynthSpec {
  std::string arch = "qwen3moe";  // qwen3moe | qwen2moe | olmoe | llama | gpt-oss | smallthinker | deepseek2 | glm4moe
  int layers = 2;
  int hidden = 128;
  int heads = 4;
  int kv_heads = 4;
  int head_dim = 0;      // 0: hidden / heads
  int experts = 8;       // 0: dense (llama only)
  int top_k = 2;
  int expert_ffn = 64;
  int ffn = 0;           // dense FFN width (dense layers, llama); 0: 4 x hidden for dense models
  int shared_ffn = 0;    // shared expert width (qwen2moe; 0: = expert_ffn)
  int vocab = 512;       // synthetic byte-level BPE vocabulary size (>= 259)
  int ctx = 4096;
  DType type = DType::F32;        // attention and expert matrices (MXFP4: experts only, the others Q8_0)
  DType embd_type = DType::F32;   // token embedding and output head (F32 keeps logits easy to compare)
  bool tied = false;
  float std = 0.1f;
  float norm_noise = 0.1f;        // norm weights 1 + noise * N(0,1)
  float rope_theta = 10000.0f;
  uint64_t seed = 1;
  std::string vocab_from;         // copy tokenizer.* metadata (and vocab size) from this GGUF instead
  // Realistic routing (see synth_routing.h): the share of tokens that select each expert, [layer][expert],
  // summing to top_k per layer (empty: plain random routers, which route about uniformly). Every token
  // embedding then carries a common direction, and calibrate_synth_routing() sets the routers' response to it.
  std::vector<std::vector<double>> routing_target;
  float routing_share = 1.0f;     // norm of the common direction relative to a token embedding's own part
  // gpt-oss: sliding window size and the period of windowed layers (0: the loader's default, 2).
  // smallthinker: window > 0 writes the sliding_window switch, which makes every 4th layer (0, 4, ...) NoPE.
  int window = 0;
  int swa_period = 0;
  float sink_std = 1.0f;          // gpt-oss attention sinks
  DeepseekSynth ds;               // deepseek2 / glm4moe shape (synth_deepseek.cpp)
};

// Standard normal values from a stream seeded by (seed, tensor, row): rows can be generated in any order.
void synth_normal_row(uint64_t seed, uint64_t tensor, uint64_t row, float* out, int64_t n);

// The deepseek2 / glm4moe metadata keys (on top of the common ones) and their per-layer tensors, in llama.cpp's
// order. Used by write_synth_model.
struct SynthTensor {
  std::string name;
  std::vector<int64_t> ne;
  DType type;
  bool norm;  // 1 + noise * N(0,1) instead of std * N(0,1)
};
bool synth_is_deepseek_style(const std::string& arch);
void synth_deepseek_keys(const SynthSpec& spec, GgufWriter& w);
std::vector<SynthTensor> synth_deepseek_layers(const SynthSpec& spec);

// Writes the model; progress(bytes_done, bytes_total) is called as tensors are written. Throws UsageError on
// an impossible shape (e.g. rows not a multiple of the type's block size).
void write_synth_model(const SynthSpec& spec, const std::string& path,
                       const std::function<void(uint64_t, uint64_t)>& progress = nullptr, int n_threads = 1);

}  // namespace moe
