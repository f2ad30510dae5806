// Attention as blocks an architecture picks: the interface every attention kind implements, and the description of
// a forward step's tokens by sequence that they all take. Each kind owns its scratch and decides what a cache
// position holds (KvLayerShape); the context only normalises, calls forward() and adds the residual.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "ops/exec.h"

namespace moe {

class Model;

// Tokens [first, first + n) of a forward step belong to sequence `seq`, at positions pos0, pos0 + 1, ...
struct SeqRun {
  int seq = 0;
  int first = 0;
  int n = 0;
  int pos0 = 0;
};

class AttentionBlock {
 public:
  virtual ~AttentionBlock() = default;
  // What one cache position holds in each layer.
  virtual std::vector<KvLayerShape> cache_shapes() const = 0;
  // Called once per forward step before the layers run: token t is at position pos[t] (e.g. to build RoPE tables).
  virtual void begin_step(const int32_t* pos, int n) = 0;
  // out[t] = the layer's attention output for token t, projected back to n_embd (output bias included), for the
  // normalised inputs xn [n][n_embd]. Appends the step's keys/values to `cache` (positions of each run).
  virtual void forward(int il, const float* xn, int n, std::span<const SeqRun> runs, KvCache& cache, float* out) = 0;
};

// Grouped-query attention (multi-head and multi-query as special cases), with the options the supported
// architectures use: q/k/v/o biases, q/k RMSNorm, clamped q/k/v, RoPE on a prefix of each head, sliding-window
// layers (cfg.n_swa, cfg.layer_swa), NoPE layers (cfg.layer_nope) and per-head attention sinks (attn_sinks).
// kv_type: what the KV cache stores (F32, or F16 / Q8_0 rows converted back per attention task).
std::unique_ptr<AttentionBlock> make_gqa_attention(const Model& model, const Exec& ex, int max_tokens, int n_ctx,
                                                   DType kv_type = DType::F32);

// Multi-head latent attention (DeepSeek-V2/V3): low-rank q, a compressed KV latent shared by all heads plus one
// rope part, cached as is (kv_lora_rank + n_rot floats per position and layer), attended in the absorbed form.
std::unique_ptr<AttentionBlock> make_mla_attention(const Model& model, const Exec& ex, int max_tokens, int n_ctx);

}  // namespace moe
