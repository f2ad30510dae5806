// One MoE feed-forward layer for training, forward and backward, as explicit steps:
// router GEMM -> route every token (the inference router, or the EvoMoE dense-to-sparse gate) -> balance
// statistics, aux and z losses -> count per expert, offsets, gather rows by expert -> per-expert SwiGLU GEMMs on
// (expert, row block) tiles -> weighted sum per token (+ shared expert).
// The backward runs the same steps in reverse; expert weight gradients are tiled over output rows, so every
// gradient element is summed by one thread in token order (deterministic for a given thread count).
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "moe/dispatch.h"
#include "moe/moe_spec.h"
#include "train/ops.h"
#include "train/train_config.h"

namespace moe::train {

struct MoeParams {
  const float* router = nullptr;  // [S][d], S = n_expert + n_null
  const float* gate = nullptr;    // [E][f][d]
  const float* up = nullptr;      // [E][f][d]
  const float* down = nullptr;    // [E][d][f]
  const float* gate_sh = nullptr; // [fs][d]   (optional shared expert)
  const float* up_sh = nullptr;   // [fs][d]
  const float* down_sh = nullptr; // [d][fs]
  const float* sh_gate = nullptr; // [d]       (optional sigmoid gate of the shared expert)
  const float* sel_bias = nullptr;  // [E] selection bias (aux-loss-free), not trained by gradients
};

struct MoeGrads {
  float *router = nullptr, *gate = nullptr, *up = nullptr, *down = nullptr;
  float *gate_sh = nullptr, *up_sh = nullptr, *down_sh = nullptr, *sh_gate = nullptr;
};

// Where in training a forward runs: selects the DTS phase and temperature and keys the Gumbel noise.
struct RouteStep {
  int64_t step = 0;
  int micro = 0;
  int layer = 0;
  uint64_t seed = 0;
  bool train = true;  // false: evaluation, routing exactly as at inference (no noise, ordinary top-k)
};

// Saved activations of one layer for one micro-batch; allocated once for the largest batch.
struct MoeActs {
  int64_t n_tokens = 0;
  int K = 0;                         // slot stride: max experts per token
  std::vector<float> logits, probs;  // [N][S]
  std::vector<int32_t> ids;          // [N][K] selected slots (null experts are ids >= E)
  std::vector<float> weights;        // [N][K] gate weights (normalised, scaled)
  std::vector<int32_t> n_used;       // [N]
  DispatchPlan plan;                 // rows per expert, offsets, token/slot of each gathered row, row of each slot
  int64_t n_rows = 0;
  std::vector<float> xg, hg, hu, act, out;   // [R][d], [R][f], [R][f], [R][f], [R][d]
  std::vector<float> hg_s, hu_s, act_s, out_s, sh_logit;  // shared expert: [N][fs] x3, [N][d], [N]
  // Balance statistics of this micro-batch.
  std::vector<double> load;          // [S] assignments per slot
  std::vector<double> mean_q;        // [S] mean normalised router probability
  double aux_loss = 0, z_loss = 0;   // already multiplied by their coefficients
  std::vector<float> lse;            // [N] router log-sum-exp (z-loss)
  std::vector<float> route_scratch;  // per routing part
  std::vector<int32_t> tiles;        // (expert, start) pairs of the forward

  void reserve(const ModelShape& m, int64_t max_tokens);
};

// Scratch shared by all layers' backward passes.
struct MoeScratchTrain {
  std::vector<float> dout_rows, dact, dhg, dhu, dxg;  // [R][d], [R][f] x3, [R][d]
  std::vector<float> dw, dprobs, dlogits;             // [N][K], [N][S], [N][S]
  std::vector<float> d_out_s, dact_s, dhg_s, dhu_s, d_shlogit;  // shared expert
  std::vector<double> aux_coef;                       // [S] d(aux)/dq
  std::vector<int32_t> tiles;                         // expert tiles of the backward
  void reserve(const ModelShape& m, int64_t max_tokens);
};

// The inference router's spec for a training shape (the trained model routes exactly like this at inference).
RouterSpec router_spec(const ModelShape& m);

// Gumbel noise g = -log(-log u) of the DTS gate for (step, micro, layer, token, slot); exposed for tests.
float dts_gumbel(uint64_t seed, int64_t step, int micro, int layer, int64_t token, int slot);

// y = MoE(xn) for xn [N][d]; y [N][d] is overwritten. Saves into a.
void moe_forward(ThreadPool& pool, const ModelShape& m, const MoeParams& p, const float* xn, int64_t N, float* y,
                 MoeActs& a, const RouteStep& rs);

// Given dy = dL/dy, writes dxn (overwritten) and adds parameter gradients. loss_scale multiplies the aux and
// z losses' gradients (1 / micro-batches per step).
void moe_backward(ThreadPool& pool, const ModelShape& m, const MoeParams& p, MoeGrads& g, const float* xn,
                  int64_t N, const float* dy, float* dxn, const MoeActs& a, MoeScratchTrain& s, float loss_scale);

}  // namespace moe::train
