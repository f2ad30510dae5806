#include "moe/moe_ffn.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/quant.h"
#include "ops/matmul.h"

namespace moe {

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
  const size_t xb = std::max(act_row_bytes(w.gate.type, cfg.n_embd), act_row_bytes(w.router.type, cfg.n_embd));
  xq.assign(T * xb, 0);
  xg.assign(rows * act_row_bytes(w.gate.type, cfg.n_embd), 0);
  if (vec_dot_type(w.up.type) != vec_dot_type(w.gate.type)) {
    xq_up.assign(T * act_row_bytes(w.up.type, cfg.n_embd), 0);
    xg_up.assign(rows * act_row_bytes(w.up.type, cfg.n_embd), 0);
  }
  hq.assign(rows * act_row_bytes(w.down.type, static_cast<int64_t>(n_ff)), 0);
  gate_out.assign(rows * n_ff, 0.f);
  up_out.assign(rows * n_ff, 0.f);
  down_out.assign(rows * n_embd, 0.f);
  const size_t n_tiles_max = static_cast<size_t>(w.gate.n_expert) * (std::max(n_ff, n_embd) / 16 + 1);
  tiles.assign(2 * n_tiles_max, 0);
}

void moe_ffn_forward(const Exec& ex, const MoeWeights& w, const RouterSpec& spec, int model_k,
                     const RoutingControl& ctl, int layer, const float* xn, int n_tokens, int n_embd, float* y,
                     MoeScratch& s, RoutingObserver* observer) {
  if (n_tokens > s.max_tokens) throw Error("moe_ffn_forward: batch larger than reserved");
  const int n_total = static_cast<int>(w.router.rows);
  const int n_expert = static_cast<int>(w.gate.n_expert);
  const int64_t n_ff = w.gate.rows;
  const int K = s.slot_stride;

  // 1. Router logits.
  const size_t rb = act_row_bytes(w.router.type, n_embd);
  quantize_acts(ex, w.router.type, xn, n_embd, n_tokens, n_embd, s.xq.data(), rb);
  matmul_q(ex, w.router, s.xq.data(), rb, n_tokens, s.logits.data(), n_total);

  // 2. Route every token.
  const float* bias = w.selection_bias.present() ? w.selection_bias.data : nullptr;
  for (int t = 0; t < n_tokens; ++t) {
    s.n_used[t] = route_token(spec, model_k, n_expert, s.logits.data() + static_cast<size_t>(t) * n_total, bias, ctl,
                              layer, s.probs.data() + static_cast<size_t>(t) * n_total, s.route_scratch.data(),
                              s.ids.data() + static_cast<size_t>(t) * K, s.weights.data() + static_cast<size_t>(t) * K);
    if (s.n_used[t] > K) throw Error("moe_ffn_forward: routing produced more experts than reserved");
  }
  if (observer) {
    RoutingEvent ev{layer, n_tokens, n_expert, n_total, s.logits.data(), s.probs.data(), s.ids.data(),
                    s.weights.data(), s.n_used.data(), K};
    observer->on_route(ev);
  }

  // 3. Group assignments by expert.
  DispatchPlan& plan = s.plan;
  plan.build(s.ids.data(), s.n_used.data(), n_tokens, K, n_expert);
  std::fill(s.slot_row.begin(), s.slot_row.begin() + static_cast<size_t>(n_tokens) * K, -1);
  for (int r = 0; r < plan.n_rows; ++r) s.slot_row[plan.row_slot[r]] = r;

  // 4. Quantize each token once, gather its rows into expert order.
  const size_t xb = act_row_bytes(w.gate.type, n_embd);
  quantize_acts(ex, w.gate.type, xn, n_embd, n_tokens, n_embd, s.xq.data(), xb);
  for (int r = 0; r < plan.n_rows; ++r)
    std::memcpy(s.xg.data() + static_cast<size_t>(r) * xb, s.xq.data() + static_cast<size_t>(plan.row_token[r]) * xb, xb);
  // The up projection may want another dot format (mixed-type files): then it gets its own gathered rows.
  const bool up_own = vec_dot_type(w.up.type) != vec_dot_type(w.gate.type);
  const size_t ub = up_own ? act_row_bytes(w.up.type, n_embd) : xb;
  const uint8_t* xg_up = s.xg.data();
  if (up_own) {
    quantize_acts(ex, w.up.type, xn, n_embd, n_tokens, n_embd, s.xq_up.data(), ub);
    for (int r = 0; r < plan.n_rows; ++r)
      std::memcpy(s.xg_up.data() + static_cast<size_t>(r) * ub, s.xq_up.data() + static_cast<size_t>(plan.row_token[r]) * ub, ub);
    xg_up = s.xg_up.data();
  }

  // 5. gate and up projections, tiled over (expert, row block).
  auto make_tiles = [&](int64_t rows) {
    const int64_t blk = row_block(rows, ex.pool.size());
    int n = 0;
    for (int e : plan.active)
      for (int64_t r0 = 0; r0 < rows; r0 += blk) {
        s.tiles[2 * n] = e;
        s.tiles[2 * n + 1] = static_cast<int32_t>(r0);
        ++n;
      }
    return std::make_pair(n, blk);
  };
  auto [n_gu, blk_gu] = make_tiles(n_ff);
  ex.pool.parallel_for(n_gu, [&, blk = blk_gu](int64_t tile, int) {
    const int e = s.tiles[2 * tile];
    const int64_t r0 = s.tiles[2 * tile + 1], r1 = std::min(n_ff, r0 + blk);
    const int row0 = plan.offset[e], n = plan.count[e];
    const uint8_t* xe = s.xg.data() + static_cast<size_t>(row0) * xb;
    matmul_q_rows(ex.k, w.gate.expert(e), r0, r1, xe, xb, n, s.gate_out.data() + static_cast<size_t>(row0) * n_ff, n_ff);
    matmul_q_rows(ex.k, w.up.expert(e), r0, r1, xg_up + static_cast<size_t>(row0) * ub, ub, n,
                  s.up_out.data() + static_cast<size_t>(row0) * n_ff, n_ff);
  });

  // 6. SwiGLU, then the hidden rows in the down projection's dot format.
  const size_t hb = act_row_bytes(w.down.type, n_ff);
  ex.pool.parallel_for(plan.n_rows, [&](int64_t r, int) {
    float* g = s.gate_out.data() + static_cast<size_t>(r) * n_ff;
    ex.k.swiglu(g, s.up_out.data() + static_cast<size_t>(r) * n_ff, n_ff, g);
    ex.k.quantize_rows(vec_dot_type(w.down.type), g, n_ff, 1, n_ff, s.hq.data() + static_cast<size_t>(r) * hb, hb);
  });

  // 7. down projection, tiled over (expert, row block).
  auto [n_dn, blk_dn] = make_tiles(n_embd);
  ex.pool.parallel_for(n_dn, [&, blk = blk_dn](int64_t tile, int) {
    const int e = s.tiles[2 * tile];
    const int64_t r0 = s.tiles[2 * tile + 1], r1 = std::min<int64_t>(n_embd, r0 + blk);
    const int row0 = plan.offset[e], n = plan.count[e];
    matmul_q_rows(ex.k, w.down.expert(e), r0, r1, s.hq.data() + static_cast<size_t>(row0) * hb, hb, n,
                  s.down_out.data() + static_cast<size_t>(row0) * n_embd, n_embd);
  });

  // 8. Weighted sum per token, in slot order (as llama.cpp adds them), so results do not depend on threads.
  ex.pool.parallel_for(n_tokens, [&](int64_t t, int) {
    float* yt = y + t * n_embd;
    bool first = true;
    for (int j = 0; j < s.n_used[t]; ++j) {
      const int r = s.slot_row[t * K + j];
      if (r < 0) continue;  // null expert: contributes nothing
      const float wgt = s.weights[t * K + j];
      const float* o = s.down_out.data() + static_cast<size_t>(r) * n_embd;
      if (first) {
        for (int i = 0; i < n_embd; ++i) yt[i] = o[i] * wgt;
        first = false;
      } else {
        for (int i = 0; i < n_embd; ++i) yt[i] += o[i] * wgt;
      }
    }
    if (first) std::memset(yt, 0, sizeof(float) * static_cast<size_t>(n_embd));
  });
}

size_t ffn_scratch_bytes(const Mat& gate, const Mat& down, int n_tokens) {
  const size_t T = static_cast<size_t>(n_tokens);
  // xq for gate, xq for up (if its format differs; sized as the larger of the two formats), gate and up
  // outputs, the quantized hidden rows, and alignment slack.
  const size_t xq = T * std::max(act_row_bytes(gate.type, gate.cols), row_bytes(DType::F32, gate.cols));
  return 2 * xq + 2 * T * static_cast<size_t>(gate.rows) * sizeof(float) +
         T * std::max(act_row_bytes(down.type, down.cols), row_bytes(DType::F32, down.cols)) + 256;
}

static uint8_t* align64(uint8_t* p) { return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63}); }

void ffn_forward(const Exec& ex, const Mat& gate, const Mat& up, const Mat& down, const float* xn, int n_tokens,
                 float* y, uint8_t* scratch) {
  const int64_t n_embd = gate.cols, n_ff = gate.rows;
  const size_t T = static_cast<size_t>(n_tokens);
  const size_t xb = act_row_bytes(gate.type, n_embd), ub = act_row_bytes(up.type, n_embd);
  const size_t hb = act_row_bytes(down.type, n_ff);
  const size_t xq_room = T * std::max(act_row_bytes(gate.type, n_embd), row_bytes(DType::F32, n_embd));
  uint8_t* xq = align64(scratch);
  uint8_t* xq_up = xq + xq_room;
  float* g = reinterpret_cast<float*>(align64(xq_up + xq_room));
  float* u = g + T * n_ff;
  uint8_t* hq = reinterpret_cast<uint8_t*>(u + T * n_ff);
  quantize_acts(ex, gate.type, xn, n_embd, n_tokens, n_embd, xq, xb);
  matmul_q(ex, gate, xq, xb, n_tokens, g, n_ff);
  if (vec_dot_type(up.type) != vec_dot_type(gate.type)) {
    quantize_acts(ex, up.type, xn, n_embd, n_tokens, n_embd, xq_up, ub);
    matmul_q(ex, up, xq_up, ub, n_tokens, u, n_ff);
  } else {
    matmul_q(ex, up, xq, xb, n_tokens, u, n_ff);
  }
  for (int t = 0; t < n_tokens; ++t) ex.k.swiglu(g + t * n_ff, u + t * n_ff, n_ff, g + t * n_ff);
  quantize_acts(ex, down.type, g, n_ff, n_tokens, n_ff, hq, hb);
  matmul_q(ex, down, hq, hb, n_tokens, y, down.rows);
}

}  // namespace moe
