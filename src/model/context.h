// One sequence being evaluated on a Model: KV cache, scratch buffers (allocated once for the largest batch),
// routing controls and observers. Prompt batches and one-token decode run the same code.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "moe/moe_ffn.h"
#include "moe/router.h"
#include "ops/exec.h"

namespace moe {

class PackedWeights;

// The context length used when none is asked for: the trained context, at most 4096 positions.
inline int default_context_length(const ModelConfig& c) { return std::min(4096, c.n_ctx_train); }

struct ContextParams {
  int n_ctx = 0;                       // max positions (0: default_context_length)
  int n_batch = 256;                   // max tokens per internal step; longer inputs are split
  const KernelSet* kernels = nullptr;  // null: SIMD kernels
  // Repack the weights whose type has a row-interleaved layout (Q8_0, Q4_0, Q4_K, Q6_K) into a private copy
  // for the GEMV/GEMM micro-kernels (costs that much memory; other types stay zero-copy in the mapped file).
  bool repack = true;
  // Packed weights built by another Context on the same Model (see Context::packed_weights()), to share.
  std::shared_ptr<const PackedWeights> packed = nullptr;
};

class Context {
 public:
  Context(const Model& model, ThreadPool& pool, ContextParams params = {});

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }
  // Forgets positions >= n (n <= n_past), e.g. to restart generation from a shared prompt.
  void truncate(int n);

  // Evaluates tokens at positions [n_past, n_past + n) and appends them to the cache.
  // logits: [n][n_vocab] if all_logits, else [n_vocab] for the last token. Throws UsageError for token ids
  // outside the vocabulary or when the context would overflow (nothing is evaluated then).
  void decode(std::span<const int32_t> tokens, float* logits, bool all_logits);

  // Routing steering and observation (experts tools). Setting controls re-sizes the routing buffers.
  void set_routing(const RoutingControl& ctl);
  const RoutingControl& routing() const { return routing_; }
  void set_observer(RoutingObserver* obs) { observer_ = obs; }

  // Accumulate wall time per kind of op into `times` (null: off, the default).
  void set_op_times(OpTimes* times) { ex_.times = times; }

  // The repacked weights in use (null when repacking is off), to share with further contexts on this model.
  std::shared_ptr<const PackedWeights> packed_weights() const { return packed_; }

  // Average experts per token used by routed layers since the last reset (adaptive k reporting).
  double mean_experts_per_token() const;
  void reset_expert_stats();

 private:
  void decode_batch(const int32_t* tokens, int n, float* logits, bool all_logits);
  void attention_block(int il, int n);
  void ffn_block(int il, int n);
  void rope_cache(int n);
  void qk_norm_rope(int il, int n);

  const Model& model_;
  ThreadPool& pool_;
  std::shared_ptr<const PackedWeights> packed_;
  Exec ex_;
  int n_ctx_ = 0, n_batch_ = 0, n_past_ = 0;
  RoutingControl routing_;
  RoutingObserver* observer_ = nullptr;
  int64_t routed_tokens_ = 0, routed_experts_ = 0;

  // KV cache, per layer and KV head (floats): K in blocks of 16 positions, each [head_dim][16] (attention_kt's
  // layout); V [n_ctx][head_dim].
  std::vector<std::vector<float>> k_cache_, v_cache_;
  // Scratch for one batch.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, out_, shexp_, rope_cs_, att_scratch_, shexp_gate_;
  std::vector<uint8_t> act_q_, act_q2_, ffn_scratch_;
  MoeScratch moe_scratch_;
};

}  // namespace moe
