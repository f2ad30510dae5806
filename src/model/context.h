// Evaluation state on a Model: a KV cache with one slot per sequence, the attention block the architecture picks,
// the expert store, scratch buffers (allocated once for the largest step), routing controls and observers.
// Prompt batches, one-token decodes and steps that mix several sequences (continuous batching) run the same code.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/scratch_vector.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/attention.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "moe/expert_store.h"
#include "moe/moe_ffn.h"
#include "moe/router.h"
#include "ops/exec.h"

namespace moe {

class PackedWeights;

// The context length used when none is asked for: the trained context, at most 4096 positions.
inline int default_context_length(const ModelConfig& c) { return std::min(4096, c.n_ctx_train); }

struct ContextParams {
  int n_ctx = 0;                       // max positions per sequence (0: default_context_length)
  int n_batch = 256;                   // max tokens per forward step; longer single-sequence inputs are split
  const KernelSet* kernels = nullptr;  // null: SIMD kernels
  // Repack the weights whose type has a row-interleaved layout (Q8_0, Q4_0, MXFP4, Q4_K, Q6_K) into a private copy
  // for the GEMV/GEMM micro-kernels (costs that much memory; other types stay zero-copy in the mapped file).
  bool repack = true;
  // With repack and every expert resident: the first forward step runs the experts on their file layout (a first
  // token copies nothing it does not need) and each is packed when a later step uses it; same results either way.
  // false: every expert is packed at construction (benchmarks of steady-state speed).
  bool pack_experts_on_use = true;
  // Packed weights built by another Context on the same Model (see Context::packed_weights()), to share.
  std::shared_ptr<const PackedWeights> packed = nullptr;
  // Where the MoE layers get expert weights (null: every expert resident, from the file or its packed copy).
  std::shared_ptr<ExpertStore> experts = nullptr;
  int n_seq = 1;                       // sequence slots in the KV cache (parallel sequences)
  // With a store that loads experts (a memory budget): predict the next MoE layer's experts from the current
  // hidden state with that layer's router (router-ahead) and start loading them while this layer computes.
  bool prefetch = true;
  // What the KV cache stores (--cache-type): F32 (exact), F16 or Q8_0 (half / about a quarter of the memory).
  DType cache_type = DType::F32;
};

// One sequence's part of a multi-sequence forward step.
struct SeqInput {
  int seq = 0;                         // slot in [0, n_seq)
  std::span<const int32_t> tokens;     // appended at the sequence's current length
  bool logits = true;                  // produce logits for the last token
  bool all_logits = false;             // ... for every token (implies logits)
};

class Context {
 public:
  Context(const Model& model, ThreadPool& pool, ContextParams params = {});
  ~Context();

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  int n_ctx() const { return n_ctx_; }
  int n_seq() const { return cache_->n_seq(); }
  int n_batch() const { return n_batch_; }
  int n_past(int seq = 0) const { return cache_->n_past(seq); }
  // Forgets positions >= n (n <= n_past) of a sequence, e.g. to restart generation from a shared prompt.
  void truncate(int n) { truncate(0, n); }
  void truncate(int seq, int n);

  // Evaluates tokens of sequence 0 at positions [n_past, n_past + n) and appends them to the cache, in steps of
  // at most n_batch tokens. logits: [n][n_vocab] if all_logits, else [n_vocab] for the last token. Throws
  // UsageError for token ids outside the vocabulary or when the context would overflow (nothing is evaluated then).
  void decode(std::span<const int32_t> tokens, float* logits, bool all_logits);

  // One forward step over several sequences (at most n_batch tokens in all, each sequence at most once). Logit
  // rows are written in input order: every token's row for inputs with all_logits, the last token's for inputs
  // with logits, none for the others. Returns the number of rows written.
  int decode_step(std::span<const SeqInput> inputs, float* logits);

  // Routing steering and observation (experts tools). Setting controls re-sizes the routing buffers.
  void set_routing(const RoutingControl& ctl);
  const RoutingControl& routing() const { return routing_; }
  void set_observer(RoutingObserver* obs) { observer_ = obs; }

  // Accumulate wall time per kind of op into `times` (null: off, the default).
  void set_op_times(OpTimes* times) { ex_.times = times; }

  // The repacked weights in use (null when repacking is off), to share with further contexts on this model.
  std::shared_ptr<const PackedWeights> packed_weights() const { return packed_; }
  ExpertStore& expert_store() { return *store_; }
  size_t kv_cache_bytes() const { return cache_->bytes(); }

  // Average experts per token used by routed layers since the last reset (adaptive k reporting).
  double mean_experts_per_token() const;
  void reset_expert_stats();

 private:
  void check_tokens(std::span<const int32_t> tokens) const;
  void forward(std::span<const SeqRun> runs, int n);
  void ffn_block(int il, int n);
  void output_rows(const int32_t* rows, int n_rows, float* logits);
  void prefetch_ahead(int il, int n);
  void prefetch_routed(int il, int n, const MoeScratch& s);
  void route_early(int il, int n);

  // The MoE layer's hook: once layer il's experts are pinned, prefetch the next MoE layer's.
  struct Prefetcher final : MoeLayerHooks {
    Context* ctx = nullptr;
    void experts_pinned(int layer, int n_tokens) override { ctx->prefetch_ahead(layer, n_tokens); }
  };

  const Model& model_;
  ThreadPool& pool_;
  std::shared_ptr<const PackedWeights> packed_;
  Exec ex_;
  std::shared_ptr<ExpertStore> store_;
  MoeLayerSpec moe_spec_;
  int n_ctx_ = 0, n_batch_ = 0;
  RoutingControl routing_;
  RoutingObserver* observer_ = nullptr;
  int64_t routed_tokens_ = 0, routed_experts_ = 0;

  std::unique_ptr<AttentionBlock> attention_;
  std::unique_ptr<KvCache> cache_;
  // Scratch for one step.
  std::vector<int32_t> tokens_, pos_, out_rows_;
  std::vector<SeqRun> runs_;
  bool stepped_ = false;  // a step has run (the packed weights' deferred matrices are packed from the second on)
  ScratchVector<float> x_, xn_, out_, shexp_, shexp_gate_;
  ScratchVector<uint8_t> act_q_, ffn_scratch_;
  MoeScratch moe_scratch_;
  Prefetcher prefetcher_;
  bool prefetch_ = false;
  MoeScratch ahead_;                   // router-ahead: the next layer's logits and routes
  std::vector<float> ahead_xn_;
  std::vector<int32_t> ahead_ids_;
  std::vector<uint8_t> ahead_seen_;
};

}  // namespace moe
