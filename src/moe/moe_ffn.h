// The MoE feed-forward layer as a sequence of named, separately tested steps:
//   router logits -> route (router.h) -> plan: counts, offsets, permutation, slot rows (dispatch.h)
//   -> gather activation rows into expert order (dispatch.h) -> expert GEMMs on (expert, row block) tiles over the
//   weights an ExpertStore hands out (expert_store.h) -> combine: weighted sum per token in slot order (dispatch.h).
// When the store cannot pin every routed expert at once, the GEMMs run in chunks of experts, each brought in once
// per batch. Training's forward (train/moe_layer_train.cpp) runs the same route, plan, gather and combine steps.
#pragma once
#include <cstdint>
#include <vector>

#include "core/scratch_vector.h"
#include "core/tensor_view.h"
#include "moe/dispatch.h"
#include "moe/expert_store.h"
#include "moe/moe_spec.h"
#include "moe/router.h"
#include "ops/exec.h"

namespace moe {

// The weights of a MoE layer: router (resident) and the expert tensors as bound from the file (what a store serves).
struct MoeWeights {
  Mat router;            // [n_expert (+ n_null) rows, n_embd cols]
  Vec router_bias;       // optional [n_expert]: added to the router logits (gpt-oss)
  Vec selection_bias;    // optional [n_expert]: added to scores for selection only
  ExpertMats gate, up;   // [n_expert][n_ff rows, n_embd cols]
  ExpertMats down;       // [n_expert][n_embd rows, n_ff cols]
  // Optional expert biases (gpt-oss), F32 and resident (small): gate/up [n_expert][n_ff], down [n_expert][n_embd].
  const float* gate_bias = nullptr;
  const float* up_bias = nullptr;
  const float* down_bias = nullptr;
  LayerExperts experts() const { return {gate, up, down}; }
};

// A layer's semantics: how it routes and what its experts compute, with the model's number of experts per token.
struct MoeLayerSpec {
  RouterSpec router;
  ExpertFfnSpec ffn;
  int model_k = 1;
};

// What one layer's routing decided for a batch; handed to observers (profiling, traces) before experts run.
struct RoutingEvent {
  int layer = 0;
  int n_tokens = 0;
  int n_expert = 0;         // routed experts (null experts excluded)
  int n_total = 0;          // n_expert + null experts: row length of logits/probs
  const float* logits;      // [n_tokens][n_total] raw router logits
  const float* probs;       // [n_tokens][n_total] gating probabilities
  const int32_t* ids;       // [n_tokens][slot_stride] selected ids, best first
  const float* weights;     // [n_tokens][slot_stride]
  const int32_t* n_used;    // [n_tokens] valid slots per token
  int slot_stride = 0;
  const float* input = nullptr;  // [n_tokens][n_embd] the router's input (normalised hidden states)
  int n_embd = 0;
};

class RoutingObserver {
 public:
  virtual ~RoutingObserver() = default;
  virtual void on_route(const RoutingEvent& ev) = 0;
  // Expert outputs (REAP saliency needs ||expert output||): when wants_expert_outputs(), called after the
  // experts ran with the unweighted output of slot j of token t in out[slot_row[t * slot_stride + j]]
  // ([n_embd] floats; slot_row is -1 for null experts). Costs nothing when not wanted.
  virtual bool wants_expert_outputs() const { return false; }
  virtual void on_expert_outputs(const RoutingEvent& /*ev*/, const int32_t* /*slot_row*/, const float* /*out*/,
                                 int /*n_embd*/) {}
};

// Called by the MoE layer once the first chunk of its experts is pinned: the moment to start loading the next
// layer's experts (they cannot evict this layer's any more).
class MoeLayerHooks {
 public:
  virtual ~MoeLayerHooks() = default;
  virtual void experts_pinned(int layer, int n_tokens) = 0;
};

// Buffers for one MoE layer call, allocated once for the largest batch and the largest expert count.
struct MoeScratch {
  int max_tokens = 0, slot_stride = 0, n_total = 0;
  ScratchVector<float> logits, probs, weights, route_scratch;
  std::vector<int32_t> ids, n_used;
  DispatchPlan plan;
  std::vector<ExpertWeights> expert_w;   // [n_expert] weights of the chunk being computed
  std::vector<ExpertWeights> chunk_w;    // [n_expert] ... while a mixed-layout chunk is reordered
  std::vector<int32_t> chunk_ids;        // [n_expert] the reordered chunk's expert ids
  ScratchVector<uint8_t> xq, xg, hq;     // quantized activations: all tokens, gathered rows, hidden rows
  ScratchVector<uint8_t> xq_up, xg_up;   // only when up wants another dot format than gate
  ScratchVector<float> gate_out, up_out, down_out;
  std::vector<int32_t> pending;          // [n_expert] gate/up tiles not yet finished (atomic_ref counters)
  void reserve(const MoeWeights& w, const RouterSpec& spec, int n_embd, int max_tokens, int max_k);
};

// Step 1: router logits for all tokens, [n_tokens][router rows] into s.logits (+ bias when present).
void moe_router_logits(const Exec& ex, const Mat& router, const float* xn, int n_tokens, int n_embd, MoeScratch& s,
                       const Vec& bias = Vec{});

// Step 2: routes every token of the batch from s.logits into s.ids / s.weights / s.n_used (and s.probs).
void moe_route(const MoeLayerSpec& spec, const RoutingControl& ctl, int layer, const Vec& selection_bias, int n_expert,
               int n_tokens, MoeScratch& s);

// y[t] = sum over the token's selected experts of weight * expert(xn[t]) (null experts add nothing).
// xn, y: [n_tokens][n_embd]. y is overwritten. pre_routed: steps 1-2 already ran into s (a router that reads the
// layer input before attention, SmallThinker); the observer is still told.
void moe_ffn_forward(const Exec& ex, const MoeWeights& w, ExpertStore& store, const MoeLayerSpec& spec,
                     const RoutingControl& ctl, int layer, const float* xn, int n_tokens, int n_embd, float* y,
                     MoeScratch& s, RoutingObserver* observer, MoeLayerHooks* hooks = nullptr,
                     bool pre_routed = false);

// The expert activation in place: g[i] = act(g[i], u[i]) for i < n, per spec (SwiGLU through the kernel table).
void expert_activation(const KernelSet& k, const ExpertFfnSpec& spec, float* g, const float* u, int64_t n);

// Dense SwiGLU FFN: y = down(silu(gate x) * up x), for shared experts and dense layers.
// scratch must hold what ffn_scratch_bytes() says.
size_t ffn_scratch_bytes(const Mat& gate, const Mat& down, int n_tokens);
void ffn_forward(const Exec& ex, const Mat& gate, const Mat& up, const Mat& down, const float* xn, int n_tokens,
                 float* y, uint8_t* scratch);

}  // namespace moe
