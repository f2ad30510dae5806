#include "moe/moe_ffn.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <span>

#include "core/error.h"
#include "core/quant.h"
#include "kernels/packed.h"
#include "ops/matmul.h"

namespace moe {

namespace {

// Room for one activation row of k elements for weight type wt, packed or not.
size_t act_room(DType wt, int64_t k) {
  return std::max(act_row_bytes(wt, k), packable(wt) ? packed_act_bytes(wt, k) : size_t{0});
}

}  // namespace

void MoeScratch::reserve(const MoeWeights& w, const RouterSpec& spec, int n_embd, int tokens, int max_k) {
  max_tokens = tokens;
  slot_stride = max_k;
  n_total = static_cast<int>(w.router.rows);
  const size_t T = static_cast<size_t>(tokens), K = static_cast<size_t>(max_k);
  const size_t rows = T * K;
  const size_t n_ff = static_cast<size_t>(w.gate.rows), E = static_cast<size_t>(n_embd);
  logits.assign(T * n_total, 0.f);
  probs.assign(T * n_total, 0.f);
  route_scratch.assign(static_cast<size_t>(n_total) + 2 * static_cast<size_t>(spec.n_group) + 8, 0.f);
  weights.assign(T * K, 0.f);
  ids.assign(T * K, 0);
  n_used.assign(T, 0);
  plan.reserve(static_cast<int>(w.gate.n_expert), tokens, max_k);
  expert_w.assign(static_cast<size_t>(w.gate.n_expert), ExpertWeights{});
  chunk_w.assign(static_cast<size_t>(w.gate.n_expert), ExpertWeights{});
  chunk_ids.assign(static_cast<size_t>(w.gate.n_expert), 0);
  const size_t xb = std::max({act_room(w.gate.type, n_embd), act_room(w.router.type, n_embd), act_room(w.up.type, n_embd)});
  xq.assign(T * xb, 0);
  xg.assign(rows * act_room(w.gate.type, n_embd), 0);
  xq_up.clear();
  xg_up.clear();
  if (vec_dot_type(w.up.type) != vec_dot_type(w.gate.type) || packable(w.up.type) != packable(w.gate.type)) {
    xq_up.assign(T * act_room(w.up.type, n_embd), 0);
    xg_up.assign(rows * act_room(w.up.type, n_embd), 0);
  }
  hq.assign(rows * act_room(w.down.type, static_cast<int64_t>(n_ff)), 0);
  gate_out.assign(rows * n_ff, 0.f);
  up_out.assign(rows * n_ff, 0.f);
  down_out.assign(rows * E, 0.f);
  pending.assign(static_cast<size_t>(w.gate.n_expert), 0);
}

void moe_router_logits(const Exec& ex, const Mat& router_w, const float* xn, int n_tokens, int n_embd, MoeScratch& s,
                       const Vec& bias) {
  const WeightRef router = weight_ref(ex, router_w);
  const ActFormat f = act_format(router);
  const int n_total = static_cast<int>(router_w.rows);
  if (acts_are_floats(f)) {
    matmul(ex, router, reinterpret_cast<const uint8_t*>(xn), sizeof(float) * n_embd, n_tokens, s.logits.data(), n_total);
  } else {
    const size_t rb = act_bytes(f, n_embd);
    convert_acts(ex, f, xn, n_embd, n_tokens, n_embd, s.xq.data(), rb);
    matmul(ex, router, s.xq.data(), rb, n_tokens, s.logits.data(), n_total);
  }
  if (bias.present())
    for (int t = 0; t < n_tokens; ++t)
      for (int i = 0; i < n_total && i < bias.n; ++i) s.logits[static_cast<size_t>(t) * n_total + i] += bias.data[i];
}

void expert_activation(const KernelSet& k, const ExpertFfnSpec& spec, float* g, const float* u, int64_t n) {
  switch (spec.act) {
    case ExpertActivation::SwiGLU:
      k.swiglu(g, u, n, g);
      return;
    case ExpertActivation::ReGLU:
      for (int64_t i = 0; i < n; ++i) g[i] = g[i] > 0.0f ? g[i] * u[i] : 0.0f;
      return;
    case ExpertActivation::SwiGLUClamped:
      // Written as ggml's swiglu_oai computes it (x / (1 + exp(-alpha x)), then times (y + 1)) for parity.
      for (int64_t i = 0; i < n; ++i) {
        const float x = std::min(g[i], spec.limit);
        const float y = std::clamp(u[i], -spec.limit, spec.limit);
        g[i] = x / (1.0f + std::exp(spec.alpha * (-x))) * (y + 1.0f);
      }
      return;
  }
}

void moe_route(const MoeLayerSpec& spec, const RoutingControl& ctl, int layer, const Vec& selection_bias, int n_expert,
               int n_tokens, MoeScratch& s) {
  const int K = s.slot_stride, n_total = s.n_total;
  const float* bias = selection_bias.present() ? selection_bias.data : nullptr;
  for (int t = 0; t < n_tokens; ++t) {
    s.n_used[t] = route_token(spec.router, spec.model_k, n_expert, s.logits.data() + static_cast<size_t>(t) * n_total,
                              bias, ctl, layer, s.probs.data() + static_cast<size_t>(t) * n_total,
                              s.route_scratch.data(), s.ids.data() + static_cast<size_t>(t) * K,
                              s.weights.data() + static_cast<size_t>(t) * K);
    if (s.n_used[t] > K) throw Error("moe_route: routing produced more experts than reserved");
  }
}

namespace {

// Activation rows in the formats the experts' gate, up and down weights want; gate/up rows in expert order.
struct ExpertInputs {
  ActFormat gf, uf, df;
  const uint8_t* x_gate = nullptr;  // gathered (or the single token's) rows for gate
  const uint8_t* x_up = nullptr;    // ... for up (== x_gate when the formats agree)
  size_t xb = 0, ub = 0, hb = 0;    // row bytes of x_gate, x_up and the hidden rows
  bool gathered = false;            // false: one token, every expert reads its row directly
};

// Gather step in a weight's activation format: every token converted once, then its rows put in expert order.
const uint8_t* gather_acts(const Exec& ex, const ActFormat& f, const float* xn, int n_tokens, int n_embd,
                           const DispatchPlan& plan, uint8_t* xq, uint8_t* xg) {
  const size_t b = act_bytes(f, n_embd);
  convert_acts(ex, f, xn, n_embd, n_tokens, n_embd, xq, b);
  if (n_tokens == 1) return xq;
  gather_rows(plan, xq, b, 0, plan.n_rows, xg);
  return xg;
}

ExpertInputs prepare_inputs(const Exec& ex, const ExpertWeights& first, const float* xn, int n_tokens, int n_embd,
                            int64_t n_ff, MoeScratch& s) {
  ExpertInputs in;
  in.gf = act_format(first.gate);
  in.uf = act_format(first.up);
  in.df = act_format(first.down);
  in.xb = act_bytes(in.gf, n_embd);
  in.gathered = n_tokens > 1;
  in.x_gate = gather_acts(ex, in.gf, xn, n_tokens, n_embd, s.plan, s.xq.data(), s.xg.data());
  in.x_up = in.x_gate;
  in.ub = in.xb;
  if (!(in.uf == in.gf)) {  // mixed-type files: up gets its own rows
    if (s.xg_up.empty()) throw Error("moe_ffn_forward: scratch was reserved for other weight types");
    in.ub = act_bytes(in.uf, n_embd);
    in.x_up = gather_acts(ex, in.uf, xn, n_tokens, n_embd, s.plan, s.xq_up.data(), s.xg_up.data());
  }
  in.hb = act_bytes(in.df, n_ff);
  return in;
}

// Expert biases for columns [r0, r1) of n rows of width ld: a[t][r] += ba[e][r], b[t][r] += bb[e][r] (either
// bias may be null).
void add_expert_bias(const float* ba, const float* bb, int e, int64_t ld, int64_t r0, int64_t r1, int n, float* a,
                     float* b) {
  for (int t = 0; t < n; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      if (ba) a[t * ld + r] += ba[e * ld + r];
      if (bb) b[t * ld + r] += bb[e * ld + r];
    }
}

// Expert GEMMs, gate and up: tiles over (expert, row block) of the chunk; each tile applies the activation to its
// columns, and the last tile of an expert converts the expert's hidden rows for the down projection.
void expert_gate_up(const Exec& ex, std::span<const int32_t> chunk, const ExpertWeights* w, const ExpertInputs& in,
                    int64_t n_ff, const MoeWeights& mw, const ExpertFfnSpec& act, MoeScratch& s) {
  const DispatchPlan& plan = s.plan;
  // Row blocks sized for ~8 tiles per thread over all experts of the chunk (not per expert: with one token, 8
  // experts x 16 small tiles each would pay the per-tile start-up 128 times per layer).
  const int64_t n_chunk = static_cast<int64_t>(chunk.size());
  const int64_t blk = std::min(n_ff, row_block(n_ff * std::max<int64_t>(n_chunk, 1), ex.pool.size()));
  const int32_t tiles_per_expert = static_cast<int32_t>((n_ff + blk - 1) / blk);
  for (size_t i = 0; i < chunk.size(); ++i) s.pending[i] = tiles_per_expert;
  ex.pool.parallel_for(n_chunk * tiles_per_expert, [&](int64_t tile, int) {
    const size_t i = static_cast<size_t>(tile / tiles_per_expert);
    const int e = chunk[i];
    const int64_t r0 = (tile % tiles_per_expert) * blk, r1 = std::min(n_ff, r0 + blk);
    const int row0 = plan.offset[e], n = plan.count[e];
    const size_t xrow = in.gathered ? static_cast<size_t>(row0) : 0;
    float* g = s.gate_out.data() + static_cast<size_t>(row0) * n_ff;
    float* u = s.up_out.data() + static_cast<size_t>(row0) * n_ff;
    matmul_rows(ex.k, w[i].gate, r0, r1, in.x_gate + xrow * in.xb, in.xb, n, g, n_ff);
    matmul_rows(ex.k, w[i].up, r0, r1, in.x_up + xrow * in.ub, in.ub, n, u, n_ff);
    if (mw.gate_bias || mw.up_bias) add_expert_bias(mw.gate_bias, mw.up_bias, e, n_ff, r0, r1, n, g, u);
    for (int t = 0; t < n; ++t) expert_activation(ex.k, act, g + t * n_ff + r0, u + t * n_ff + r0, r1 - r0);
    if (std::atomic_ref<int32_t>(s.pending[i]).fetch_sub(1, std::memory_order_acq_rel) == 1) {
      uint8_t* h = s.hq.data() + static_cast<size_t>(row0) * in.hb;
      if (in.df.packed) ex.k.quantize_rows_packed(in.df.wt, g, n_ff, n, n_ff, h, in.hb);
      else ex.k.quantize_rows(vec_dot_type(in.df.wt), g, n_ff, n, n_ff, h, in.hb);
    }
  });
}

// Expert GEMMs, down: rows [r0, r1) of every expert of the chunk into its grouped output rows (each expert's
// weights are read once).
void expert_down_rows(const KernelSet& k, std::span<const int32_t> chunk, const ExpertWeights* w, const ExpertInputs& in,
                      int64_t n_embd, int64_t r0, int64_t r1, const float* down_bias, MoeScratch& s) {
  for (size_t i = 0; i < chunk.size(); ++i) {
    const int e = chunk[i];
    const int row0 = s.plan.offset[e];
    float* y = s.down_out.data() + static_cast<size_t>(row0) * n_embd;
    matmul_rows(k, w[i].down, r0, r1, s.hq.data() + static_cast<size_t>(row0) * in.hb, in.hb, s.plan.count[e], y,
                n_embd);
    // The bias belongs to the expert's output, so it is weighted with it in the combine (as llama.cpp).
    if (down_bias) add_expert_bias(down_bias, nullptr, e, n_embd, r0, r1, s.plan.count[e], y, nullptr);
  }
}

}  // namespace

void moe_ffn_forward(const Exec& ex, const MoeWeights& w, ExpertStore& store, const MoeLayerSpec& spec,
                     const RoutingControl& ctl, int layer, const float* xn, int n_tokens, int n_embd, float* y,
                     MoeScratch& s, RoutingObserver* observer, MoeLayerHooks* hooks, bool pre_routed) {
  if (n_tokens > s.max_tokens) throw Error("moe_ffn_forward: batch larger than reserved");
  const int n_expert = static_cast<int>(w.gate.n_expert);
  const int64_t n_ff = w.gate.rows;
  const int K = s.slot_stride;

  // 1-2. Router logits, route every token.
  OpTimer timer(ex.times, OpTimes::kRouter);
  if (!pre_routed) {
    moe_router_logits(ex, w.router, xn, n_tokens, n_embd, s, w.router_bias);
    timer.next(OpTimes::kRoute);
    moe_route(spec, ctl, layer, w.selection_bias, n_expert, n_tokens, s);
  }
  const RoutingEvent ev{layer, n_tokens, n_expert, s.n_total, s.logits.data(), s.probs.data(), s.ids.data(),
                        s.weights.data(), s.n_used.data(), K, xn, n_embd};
  if (observer) observer->on_route(ev);

  // 3. Plan: group assignments by expert.
  DispatchPlan& plan = s.plan;
  plan.build(s.ids.data(), s.n_used.data(), n_tokens, K, n_expert);
  const int64_t blk_dn = row_block(n_embd, ex.pool.size());
  const int64_t n_dn_tiles = (n_embd + blk_dn - 1) / blk_dn;
  auto combine = [&](int64_t tile) {
    const int64_t r0 = tile * blk_dn, r1 = std::min<int64_t>(n_embd, r0 + blk_dn);
    combine_rows(plan, s.weights.data(), s.n_used.data(), K, s.down_out.data(), n_embd, 0, n_tokens, r0, r1, y);
  };
  if (plan.active.empty()) {  // every token chose only null experts
    for (int64_t t = 0; t < n_dn_tiles; ++t) combine(t);
    return;
  }

  // 4-5. Chunks of experts as the store can pin them (one chunk holding them all unless memory is short). A chunk
  // may mix layouts (a store that packs experts on use, shared packed weights): its experts are grouped by layout, and each run
  // gets activation rows in its own format (converted again only when the format changes).
  ExpertInputs in;
  bool have_inputs = false, whole = false;
  for (size_t done = 0; done < plan.active.size();) {
    const std::span<const int32_t> rest(plan.active.data() + done, plan.active.size() - done);
    timer.next(OpTimes::kExpertWait);
    const int got = store.acquire(layer, rest, s.expert_w.data());
    if (got < 1 || got > static_cast<int>(rest.size())) throw Error("expert store returned no experts");
    if (done == 0 && hooks) hooks->experts_pinned(layer, n_tokens);
    std::span<const int32_t> chunk = rest.first(static_cast<size_t>(got));
    // Layout of an expert: which of its gate, up and down are packed (stable counting sort by it when mixed).
    auto layout = [&](size_t i) {
      const ExpertWeights& x = s.expert_w[i];
      return (x.gate.packed ? 1 : 0) | (x.up.packed ? 2 : 0) | (x.down.packed ? 4 : 0);
    };
    bool mixed = false;
    for (size_t i = 1; i < chunk.size(); ++i) mixed = mixed || layout(i) != layout(0);
    if (mixed) {
      size_t per_layout[9] = {};  // counts, then per_layout[k]: first slot of layout k
      for (size_t i = 0; i < chunk.size(); ++i) ++per_layout[layout(i) + 1];
      for (int k = 1; k < 9; ++k) per_layout[k] += per_layout[k - 1];
      for (size_t i = 0; i < chunk.size(); ++i) {
        const size_t to = per_layout[layout(i)]++;
        s.chunk_ids[to] = chunk[i];
        s.chunk_w[to] = s.expert_w[i];
      }
      std::copy(s.chunk_w.begin(), s.chunk_w.begin() + got, s.expert_w.begin());
      chunk = std::span<const int32_t>(s.chunk_ids.data(), chunk.size());
    }
    for (size_t r0 = 0; r0 < chunk.size();) {
      size_t r1 = r0 + 1;
      while (r1 < chunk.size() && layout(r1) == layout(r0)) ++r1;
      const std::span<const int32_t> run = chunk.subspan(r0, r1 - r0);
      const ExpertWeights* rw = s.expert_w.data() + r0;
      if (!have_inputs || !(act_format(rw->gate) == in.gf) || !(act_format(rw->up) == in.uf)) {
        in = prepare_inputs(ex, *rw, xn, n_tokens, n_embd, n_ff, s);
        have_inputs = true;
      }
      in.df = act_format(rw->down);
      in.hb = act_bytes(in.df, n_ff);
      whole = run.size() == plan.active.size();
      timer.next(OpTimes::kGateUp);
      expert_gate_up(ex, run, rw, in, n_ff, w, spec.ffn, s);
      timer.next(OpTimes::kDown);
      // 6. With every expert in one run, each down tile combines its own columns while they are hot in cache.
      ex.pool.parallel_for(n_dn_tiles, [&](int64_t tile, int) {
        const int64_t d0 = tile * blk_dn, d1 = std::min<int64_t>(n_embd, d0 + blk_dn);
        expert_down_rows(ex.k, run, rw, in, n_embd, d0, d1, w.down_bias, s);
        if (whole) combine(tile);
      });
      r0 = r1;
    }
    store.release(layer);
    done += chunk.size();
  }
  if (!whole) ex.pool.parallel_for(n_dn_tiles, [&](int64_t tile, int) { combine(tile); });
  if (observer && observer->wants_expert_outputs())
    observer->on_expert_outputs(ev, plan.slot_row.data(), s.down_out.data(), n_embd);
}

size_t ffn_scratch_bytes(const Mat& gate, const Mat& down, int n_tokens) {
  const size_t T = static_cast<size_t>(n_tokens);
  // xq for gate, xq for up (if its format differs; sized as the larger of the two formats), gate and up
  // outputs, the quantized hidden rows, and alignment slack. F32 rows bound every activation format.
  const size_t xq = T * std::max(act_row_bytes(gate.type, gate.cols), row_bytes(DType::F32, gate.cols));
  return 2 * xq + 2 * T * static_cast<size_t>(gate.rows) * sizeof(float) +
         T * std::max(act_row_bytes(down.type, down.cols), row_bytes(DType::F32, down.cols)) + 256;
}

static uint8_t* align64(uint8_t* p) { return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63}); }

void ffn_forward(const Exec& ex, const Mat& gate, const Mat& up, const Mat& down, const float* xn, int n_tokens,
                 float* y, uint8_t* scratch) {
  const int64_t n_embd = gate.cols, n_ff = gate.rows;
  const size_t T = static_cast<size_t>(n_tokens);
  const WeightRef g = weight_ref(ex, gate), u = weight_ref(ex, up), d = weight_ref(ex, down);
  const ActFormat gf = act_format(g), uf = act_format(u), df = act_format(d);
  const size_t xb = act_bytes(gf, n_embd), ub = act_bytes(uf, n_embd), hb = act_bytes(df, n_ff);
  const size_t xq_room = T * std::max(act_row_bytes(gate.type, n_embd), row_bytes(DType::F32, n_embd));
  uint8_t* xq = align64(scratch);
  uint8_t* xq_up = xq + xq_room;
  float* gb = reinterpret_cast<float*>(align64(xq_up + xq_room));
  float* ubuf = gb + T * n_ff;
  uint8_t* hq = reinterpret_cast<uint8_t*>(ubuf + T * n_ff);
  convert_acts(ex, gf, xn, n_embd, n_tokens, n_embd, xq, xb);
  if (uf == gf) {
    const MatmulJob jobs[2] = {{&g, gb, n_ff}, {&u, ubuf, n_ff}};
    matmul_many(ex, jobs, 2, xq, xb, n_tokens);
  } else {
    matmul(ex, g, xq, xb, n_tokens, gb, n_ff);
    convert_acts(ex, uf, xn, n_embd, n_tokens, n_embd, xq_up, ub);
    matmul(ex, u, xq_up, ub, n_tokens, ubuf, n_ff);
  }
  for (int t = 0; t < n_tokens; ++t) ex.k.swiglu(gb + t * n_ff, ubuf + t * n_ff, n_ff, gb + t * n_ff);
  convert_acts(ex, df, gb, n_ff, n_tokens, n_ff, hq, hb);
  matmul(ex, d, hq, hb, n_tokens, y, down.rows);
}

}  // namespace moe
