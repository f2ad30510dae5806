#include "moe/moe_ffn.h"

#include <algorithm>
#include <atomic>
#include <cstring>

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

// All experts of a stacked tensor as WeightRefs, with the packed copy looked up once.
struct ExpertsRef {
  const ExpertMats* m;
  const uint8_t* packed;
  size_t packed_stride;
  ExpertsRef(const Exec& ex, const ExpertMats& mats) : m(&mats) {
    const WeightRef e0 = expert_ref(ex, mats, 0);
    packed = e0.packed;
    packed_stride = packed ? packed_bytes(mats.type, mats.rows, mats.cols) : 0;
  }
  WeightRef operator[](int64_t e) const {
    return {m->expert(e), packed ? packed + packed_stride * static_cast<size_t>(e) : nullptr};
  }
  ActFormat format() const { return act_format((*this)[0]); }
};

}  // namespace

void MoeScratch::reserve(const ModelConfig& cfg, const MoeWeights& w, int tokens, int max_k) {
  max_tokens = tokens;
  slot_stride = max_k;
  n_total = static_cast<int>(w.router.rows);
  const size_t T = static_cast<size_t>(tokens), K = static_cast<size_t>(max_k);
  const size_t rows = T * K;
  const size_t n_ff = static_cast<size_t>(w.gate.rows), n_embd = static_cast<size_t>(cfg.n_embd);
  logits.assign(T * n_total, 0.f);
  probs.assign(T * n_total, 0.f);
  route_scratch.assign(static_cast<size_t>(n_total) + 2 * static_cast<size_t>(cfg.router.n_group) + 8, 0.f);
  weights.assign(T * K, 0.f);
  ids.assign(T * K, 0);
  n_used.assign(T, 0);
  slot_row.assign(T * K, -1);
  plan.reserve(static_cast<int>(w.gate.n_expert), static_cast<int>(rows));
  const size_t xb = std::max({act_room(w.gate.type, cfg.n_embd), act_room(w.router.type, cfg.n_embd),
                              act_room(w.up.type, cfg.n_embd)});
  xq.assign(T * xb, 0);
  xg.assign(rows * act_room(w.gate.type, cfg.n_embd), 0);
  xq_up.clear();
  xg_up.clear();
  if (vec_dot_type(w.up.type) != vec_dot_type(w.gate.type) || packable(w.up.type) != packable(w.gate.type)) {
    xq_up.assign(T * act_room(w.up.type, cfg.n_embd), 0);
    xg_up.assign(rows * act_room(w.up.type, cfg.n_embd), 0);
  }
  hq.assign(rows * act_room(w.down.type, static_cast<int64_t>(n_ff)), 0);
  gate_out.assign(rows * n_ff, 0.f);
  up_out.assign(rows * n_ff, 0.f);
  down_out.assign(rows * n_embd, 0.f);
  pending.assign(static_cast<size_t>(w.gate.n_expert), 0);
}

namespace {

// Router logits for all tokens: [n_tokens][n_total].
void router_logits(const Exec& ex, const MoeWeights& w, const float* xn, int n_tokens, int n_embd, MoeScratch& s) {
  const WeightRef router = weight_ref(ex, w.router);
  const ActFormat f = act_format(router);
  const int n_total = static_cast<int>(w.router.rows);
  if (acts_are_floats(f)) {
    matmul(ex, router, reinterpret_cast<const uint8_t*>(xn), sizeof(float) * n_embd, n_tokens, s.logits.data(), n_total);
    return;
  }
  const size_t rb = act_bytes(f, n_embd);
  convert_acts(ex, f, xn, n_embd, n_tokens, n_embd, s.xq.data(), rb);
  matmul(ex, router, s.xq.data(), rb, n_tokens, s.logits.data(), n_total);
}

// Activations of every token in `f`, gathered into expert order (row i = token plan.row_token[i]). With one
// token every expert reads the token's row directly (returns the stride 0 case as a flag).
bool gather_acts(const Exec& ex, const ActFormat& f, const float* xn, int n_tokens, int n_embd, const DispatchPlan& plan,
                 uint8_t* xq, uint8_t* xg) {
  const size_t b = act_bytes(f, n_embd);
  convert_acts(ex, f, xn, n_embd, n_tokens, n_embd, xq, b);
  if (n_tokens == 1) return false;
  for (int r = 0; r < plan.n_rows; ++r)
    std::memcpy(xg + static_cast<size_t>(r) * b, xq + static_cast<size_t>(plan.row_token[r]) * b, b);
  return true;
}

}  // namespace

void moe_ffn_forward(const Exec& ex, const MoeWeights& w, const RouterSpec& spec, int model_k,
                     const RoutingControl& ctl, int layer, const float* xn, int n_tokens, int n_embd, float* y,
                     MoeScratch& s, RoutingObserver* observer) {
  if (n_tokens > s.max_tokens) throw Error("moe_ffn_forward: batch larger than reserved");
  const int n_total = static_cast<int>(w.router.rows);
  const int n_expert = static_cast<int>(w.gate.n_expert);
  const int64_t n_ff = w.gate.rows;
  const int K = s.slot_stride;

  // 1. Router logits.
  OpTimer timer(ex.times, OpTimes::kRouter);
  router_logits(ex, w, xn, n_tokens, n_embd, s);
  timer.next(OpTimes::kRoute);

  // 2. Route every token.
  const float* bias = w.selection_bias.present() ? w.selection_bias.data : nullptr;
  for (int t = 0; t < n_tokens; ++t) {
    s.n_used[t] = route_token(spec, model_k, n_expert, s.logits.data() + static_cast<size_t>(t) * n_total, bias, ctl,
                              layer, s.probs.data() + static_cast<size_t>(t) * n_total, s.route_scratch.data(),
                              s.ids.data() + static_cast<size_t>(t) * K, s.weights.data() + static_cast<size_t>(t) * K);
    if (s.n_used[t] > K) throw Error("moe_ffn_forward: routing produced more experts than reserved");
  }
  const RoutingEvent ev{layer, n_tokens, n_expert, n_total, s.logits.data(), s.probs.data(), s.ids.data(),
                        s.weights.data(), s.n_used.data(), K};
  if (observer) observer->on_route(ev);

  // 3. Group assignments by expert.
  DispatchPlan& plan = s.plan;
  plan.build(s.ids.data(), s.n_used.data(), n_tokens, K, n_expert);
  std::fill(s.slot_row.begin(), s.slot_row.begin() + static_cast<size_t>(n_tokens) * K, -1);
  for (int r = 0; r < plan.n_rows; ++r) s.slot_row[plan.row_slot[r]] = r;

  // 4. Quantize each token once, gather its rows into expert order. The up projection may want another
  // activation format (mixed-type files): then it gets its own gathered rows.
  const ExpertsRef gate(ex, w.gate), up(ex, w.up), down(ex, w.down);
  const ActFormat gf = gate.format(), uf = up.format(), df = down.format();
  const size_t xb = act_bytes(gf, n_embd);
  const bool gathered = gather_acts(ex, gf, xn, n_tokens, n_embd, plan, s.xq.data(), s.xg.data());
  const bool up_own = !(uf == gf);
  const size_t ub = up_own ? act_bytes(uf, n_embd) : xb;
  const uint8_t* x_gate = gathered ? s.xg.data() : s.xq.data();
  const uint8_t* x_up = x_gate;
  if (up_own) {
    if (s.xg_up.empty()) throw Error("moe_ffn_forward: scratch was reserved for other weight types");
    x_up = gather_acts(ex, uf, xn, n_tokens, n_embd, plan, s.xq_up.data(), s.xg_up.data()) ? s.xg_up.data()
                                                                                           : s.xq_up.data();
  }

  // 5. gate and up projections, tiled over (expert, row block); each tile applies SwiGLU to its columns, and
  // the last tile of an expert converts the expert's hidden rows for the down projection.
  timer.next(OpTimes::kGateUp);
  const size_t hb = act_bytes(df, n_ff);
  // Row blocks sized for ~8 tiles per thread over all active experts (not per expert: with one token, 8 experts
  // x 16 small tiles each would pay the per-tile start-up 128 times per layer).
  const int64_t n_active = static_cast<int64_t>(plan.active.size());
  const int64_t blk_gu = std::min(n_ff, row_block(n_ff * std::max<int64_t>(n_active, 1), ex.pool.size()));
  const int32_t tiles_per_expert = static_cast<int32_t>((n_ff + blk_gu - 1) / blk_gu);
  for (int e : plan.active) s.pending[e] = tiles_per_expert;
  const int64_t n_gu = static_cast<int64_t>(plan.active.size()) * tiles_per_expert;
  ex.pool.parallel_for(n_gu, [&](int64_t tile, int) {
    const int e = plan.active[static_cast<size_t>(tile / tiles_per_expert)];
    const int64_t r0 = (tile % tiles_per_expert) * blk_gu, r1 = std::min(n_ff, r0 + blk_gu);
    const int row0 = plan.offset[e], n = plan.count[e];
    const size_t xrow = gathered ? static_cast<size_t>(row0) : 0;
    float* g = s.gate_out.data() + static_cast<size_t>(row0) * n_ff;
    float* u = s.up_out.data() + static_cast<size_t>(row0) * n_ff;
    matmul_rows(ex.k, gate[e], r0, r1, x_gate + xrow * xb, xb, n, g, n_ff);
    matmul_rows(ex.k, up[e], r0, r1, x_up + xrow * ub, ub, n, u, n_ff);
    for (int i = 0; i < n; ++i) ex.k.swiglu(g + i * n_ff + r0, u + i * n_ff + r0, r1 - r0, g + i * n_ff + r0);
    if (std::atomic_ref<int32_t>(s.pending[e]).fetch_sub(1, std::memory_order_acq_rel) == 1) {
      uint8_t* h = s.hq.data() + static_cast<size_t>(row0) * hb;
      if (df.packed) ex.k.quantize_rows_packed(df.wt, g, n_ff, n, n_ff, h, hb);
      else ex.k.quantize_rows(vec_dot_type(df.wt), g, n_ff, n, n_ff, h, hb);
    }
  });

  // 6. down projection, tiled over output row blocks across all active experts (each expert's weights are
  // read once), then the weighted sum per token in slot order (as llama.cpp adds them) for the tile's rows,
  // so results do not depend on the number of threads.
  timer.next(OpTimes::kDown);
  const int64_t blk_dn = row_block(n_embd, ex.pool.size());
  ex.pool.parallel_for((n_embd + blk_dn - 1) / blk_dn, [&](int64_t tile, int) {
    const int64_t r0 = tile * blk_dn, r1 = std::min<int64_t>(n_embd, r0 + blk_dn);
    for (int e : plan.active) {
      const int row0 = plan.offset[e];
      matmul_rows(ex.k, down[e], r0, r1, s.hq.data() + static_cast<size_t>(row0) * hb, hb, plan.count[e],
                  s.down_out.data() + static_cast<size_t>(row0) * n_embd, n_embd);
    }
    for (int t = 0; t < n_tokens; ++t) {
      float* yt = y + static_cast<int64_t>(t) * n_embd;
      bool first = true;
      for (int j = 0; j < s.n_used[t]; ++j) {
        const int r = s.slot_row[t * K + j];
        if (r < 0) continue;  // null expert: contributes nothing
        const float wgt = s.weights[t * K + j];
        const float* o = s.down_out.data() + static_cast<size_t>(r) * n_embd;
        if (first) {
          for (int64_t i = r0; i < r1; ++i) yt[i] = o[i] * wgt;
          first = false;
        } else {
          for (int64_t i = r0; i < r1; ++i) yt[i] += o[i] * wgt;
        }
      }
      if (first) std::memset(yt + r0, 0, sizeof(float) * static_cast<size_t>(r1 - r0));
    }
  });
  if (observer && observer->wants_expert_outputs())
    observer->on_expert_outputs(ev, s.slot_row.data(), s.down_out.data(), n_embd);
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
