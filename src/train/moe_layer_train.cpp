#include "train/moe_layer_train.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moe/dispatch.h"
#include "moe/router.h"
#include "train/blas.h"
#include "train/rng.h"
#include "train/vec_math.h"

namespace moe::train {

namespace {

constexpr float kNormFloor = 6.103515625e-5f;  // the inference router's floor on the top-k weight sum
constexpr int64_t kRowBlock = 512;             // token rows per expert tile (large GEMMs run near peak)
constexpr int64_t kOutBlock = 256;             // weight-gradient rows per tile
constexpr int kMaxRouteParts = 256;            // routing is split into at most this many parts

size_t route_scratch_floats(const ModelShape& m) {
  return static_cast<size_t>(m.n_slots()) + 2 * static_cast<size_t>(m.routing.n_group) + 8;
}

// EvoMoE soft phase for one token: every slot whose Gumbel-softmax probability exceeds the threshold.
int dts_route(const ModelShape& m, const float* logits, float* probs, const RouteStep& rs, int64_t token, float tau,
              float* scratch, int32_t* ids, float* weights) {
  const int S = m.n_slots();
  router_softmax(logits, S, probs);
  // G = softmax((s + g) / tau)
  float gmx = -INFINITY;
  for (int i = 0; i < S; ++i) {
    scratch[i] = (logits[i] + dts_gumbel(rs.seed, rs.step, rs.micro, rs.layer, token, i)) / tau;
    gmx = std::max(gmx, scratch[i]);
  }
  double gsum = 0.0;
  for (int i = 0; i < S; ++i) {
    scratch[i] = std::exp(scratch[i] - gmx);
    gsum += scratch[i];
  }
  int n = 0;
  int best = 0;
  for (int i = 0; i < S; ++i) {
    if (scratch[i] > scratch[best]) best = i;
    if (scratch[i] / gsum > m.routing.dts_threshold) ids[n++] = i;
  }
  if (n == 0) ids[n++] = best;
  float wsum = 0.0f;
  for (int j = 0; j < n; ++j) {
    weights[j] = probs[ids[j]];
    wsum += weights[j];
  }
  if (m.routing.norm_topk) {
    wsum = std::max(wsum, kNormFloor);
    for (int j = 0; j < n; ++j) weights[j] /= wsum;
  }
  if (m.routing.weights_scale != 1.0f)
    for (int j = 0; j < n; ++j) weights[j] *= m.routing.weights_scale;
  return n;
}

MOE_VEC_CLONES float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

MOE_VEC_CLONES void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

MOE_VEC_CLONES void scaled_copy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i];
}

// (expert, start) tiles over each active expert's rows in blocks of blk.
int make_row_tiles(const MoeActs& a, int E, int64_t blk, std::vector<int32_t>& tiles) {
  int n = 0;
  for (int e = 0; e < E; ++e)
    for (int64_t r = 0; r < a.plan.count[static_cast<size_t>(e)]; r += blk) {
      tiles[2 * static_cast<size_t>(n)] = e;
      tiles[2 * static_cast<size_t>(n) + 1] = static_cast<int32_t>(r);
      ++n;
    }
  return n;
}

}  // namespace

RouterSpec router_spec(const ModelShape& m) {
  RouterSpec s;
  s.gating = m.routing.gating;
  s.norm_topk = m.routing.norm_topk;
  s.weights_scale = m.routing.weights_scale;
  s.n_group = m.routing.n_group;
  s.n_group_used = m.routing.n_group;
  s.group_balanced = m.routing.n_group > 1;
  s.n_null = m.routing.n_null;
  return s;
}

float dts_gumbel(uint64_t seed, int64_t step, int micro, int layer, int64_t token, int slot) {
  const double u = unit_open(mix_key(seed ^ 0xD75D75ull, static_cast<uint64_t>(step),
                                     static_cast<uint64_t>(micro) * 4096u + static_cast<uint64_t>(layer),
                                     static_cast<uint64_t>(token) * 65536u + static_cast<uint64_t>(slot)));
  return static_cast<float>(-std::log(-std::log(u)));
}

void MoeActs::reserve(const ModelShape& m, int64_t max_tokens) {
  const size_t N = static_cast<size_t>(max_tokens), S = static_cast<size_t>(m.n_slots());
  const size_t E = static_cast<size_t>(m.n_expert), d = static_cast<size_t>(m.n_embd);
  const size_t f = static_cast<size_t>(m.n_ff_exp), fs = static_cast<size_t>(m.n_ff_shexp);
  K = m.max_slots_per_token();
  const size_t R = N * static_cast<size_t>(K);
  logits.assign(N * S, 0.f);
  probs.assign(N * S, 0.f);
  ids.assign(R, 0);
  weights.assign(R, 0.f);
  n_used.assign(N, 0);
  plan.reserve(static_cast<int>(E), static_cast<int>(N), K);
  xg.assign(R * d, 0.f);
  hg.assign(R * f, 0.f);
  hu.assign(R * f, 0.f);
  act.assign(R * f, 0.f);
  out.assign(R * d, 0.f);
  if (fs > 0) {
    hg_s.assign(N * fs, 0.f);
    hu_s.assign(N * fs, 0.f);
    act_s.assign(N * fs, 0.f);
    out_s.assign(N * d, 0.f);
    sh_logit.assign(N, 0.f);
  }
  load.assign(S, 0.0);
  mean_q.assign(S, 0.0);
  lse.assign(N, 0.f);
  route_scratch.assign(kMaxRouteParts * route_scratch_floats(m), 0.f);
  tiles.assign(2 * (E + R / kRowBlock + 1), 0);
}

void MoeScratchTrain::reserve(const ModelShape& m, int64_t max_tokens) {
  const size_t N = static_cast<size_t>(max_tokens), S = static_cast<size_t>(m.n_slots());
  const size_t d = static_cast<size_t>(m.n_embd), f = static_cast<size_t>(m.n_ff_exp);
  const size_t fs = static_cast<size_t>(m.n_ff_shexp);
  const size_t K = static_cast<size_t>(m.max_slots_per_token()), R = N * K;
  auto fit = [](std::vector<float>& v, size_t n) {
    if (v.size() < n) v.assign(n, 0.f);
  };
  fit(dout_rows, R * d);
  fit(dact, R * f);
  fit(dhg, R * f);
  fit(dhu, R * f);
  fit(dxg, R * d);
  fit(dw, R);
  fit(dprobs, N * S);
  fit(dlogits, N * S);
  if (fs > 0) {
    fit(d_out_s, N * d);
    fit(dact_s, N * fs);
    fit(dhg_s, N * fs);
    fit(dhu_s, N * fs);
    fit(d_shlogit, N);
  }
  if (aux_coef.size() < S) aux_coef.assign(S, 0.0);
  const size_t E = static_cast<size_t>(m.n_expert);
  const size_t max_rows_tiles = E + R / kRowBlock + 1;
  const size_t max_w_tiles = E * ((std::max(d, f) + kOutBlock - 1) / kOutBlock) * 3;
  if (tiles.size() < 3 * std::max(max_rows_tiles, max_w_tiles)) tiles.assign(3 * std::max(max_rows_tiles, max_w_tiles), 0);
}

// Routing and balance statistics; separated from the GEMMs for readability.
static void route_all(ThreadPool& pool, const ModelShape& m, const MoeParams& p, int64_t N, MoeActs& a,
                      const RouteStep& rs) {
  const int S = m.n_slots(), E = m.n_expert, K = a.K;
  const RouterSpec spec = router_spec(m);
  const RoutingControl ctl;
  const bool soft = rs.train && m.routing.dts_soft(rs.step);
  const float tau = m.routing.dts_tau(rs.step);
  const size_t per_thread = route_scratch_floats(m);
  const int nt = std::min(pool.size(), kMaxRouteParts);
  pool.parallel_for(nt, [&](int64_t part, int) {
    int64_t b, e;
    split_range(N, nt, static_cast<int>(part), b, e);
    float* scratch = a.route_scratch.data() + static_cast<size_t>(part) * per_thread;
    for (int64_t t = b; t < e; ++t) {
      const float* lg = a.logits.data() + t * S;
      float* pr = a.probs.data() + t * S;
      int32_t* ids = a.ids.data() + t * K;
      float* w = a.weights.data() + t * K;
      a.n_used[static_cast<size_t>(t)] =
          soft ? dts_route(m, lg, pr, rs, t, tau, scratch, ids, w)
               : route_token(spec, m.n_expert_used, E, lg, p.sel_bias, ctl, rs.layer, pr, scratch, ids, w);
    }
  });

  // Balance statistics: assignments per slot, mean (normalised) router probability, router log-sum-exp.
  std::fill(a.load.begin(), a.load.end(), 0.0);
  std::fill(a.mean_q.begin(), a.mean_q.end(), 0.0);
  double z_sum = 0.0;
  for (int64_t t = 0; t < N; ++t) {
    for (int j = 0; j < a.n_used[static_cast<size_t>(t)]; ++j) a.load[static_cast<size_t>(a.ids[t * K + j])] += 1.0;
    const float* pr = a.probs.data() + t * S;
    double psum = 1.0;
    if (m.routing.gating == Gating::Sigmoid) {
      psum = 0.0;
      for (int i = 0; i < S; ++i) psum += pr[i];
    }
    for (int i = 0; i < S; ++i) a.mean_q[static_cast<size_t>(i)] += pr[i] / psum;
    if (m.routing.z_beta > 0) {
      const float* lg = a.logits.data() + t * S;
      float mx = lg[0];
      for (int i = 1; i < S; ++i) mx = std::max(mx, lg[i]);
      double s = 0.0;
      for (int i = 0; i < S; ++i) s += std::exp(static_cast<double>(lg[i] - mx));
      const float lse = mx + static_cast<float>(std::log(s));
      a.lse[static_cast<size_t>(t)] = lse;
      z_sum += static_cast<double>(lse) * lse;
    }
  }
  for (double& q : a.mean_q) q /= static_cast<double>(N);
  a.z_loss = m.routing.z_beta * z_sum / static_cast<double>(N);
  a.aux_loss = 0.0;
  if (m.routing.aux_alpha > 0) {
    double total = 0.0, null_load = 0.0;
    for (int i = 0; i < S; ++i) total += a.load[static_cast<size_t>(i)];
    for (int i = E; i < S; ++i) null_load += a.load[static_cast<size_t>(i)];
    double s = 0.0;
    for (int i = 0; i < S; ++i) {
      const double f = i < E ? a.load[static_cast<size_t>(i)] / total : null_load / total / (S - E);
      s += f * a.mean_q[static_cast<size_t>(i)];
    }
    a.aux_loss = m.routing.aux_alpha * S * s;
  }
}

void moe_forward(ThreadPool& pool, const ModelShape& m, const MoeParams& p, const float* xn, int64_t N, float* y,
                 MoeActs& a, const RouteStep& rs) {
  const int S = m.n_slots(), E = m.n_expert, K = a.K;
  const int64_t d = m.n_embd, f = m.n_ff_exp;
  a.n_tokens = N;

  // 1-2. Router logits, routing, balance statistics.
  linear_fwd(pool, xn, p.router, N, d, S, a.logits.data());
  route_all(pool, m, p, N, a, rs);

  // 3. Plan: rows per expert, offsets, rows in (expert, token, slot) order (the inference plan step).
  a.plan.build(a.ids.data(), a.n_used.data(), static_cast<int>(N), K, E);
  a.n_rows = a.plan.n_rows;

  // 4. Gather (the inference gather step on float rows), then per (expert, row block): gate and up GEMMs, SwiGLU,
  // down GEMM.
  const int64_t n_parts = std::min<int64_t>(a.n_rows, 4 * static_cast<int64_t>(pool.size()));
  pool.parallel_for(n_parts, [&](int64_t part, int) {
    int64_t b, e;
    split_range(a.n_rows, static_cast<int>(n_parts), static_cast<int>(part), b, e);
    gather_rows(a.plan, reinterpret_cast<const uint8_t*>(xn), sizeof(float) * static_cast<size_t>(d), static_cast<int>(b),
                static_cast<int>(e), reinterpret_cast<uint8_t*>(a.xg.data()));
  });
  std::vector<int32_t>& tiles = a.tiles;
  const int n_tiles = make_row_tiles(a, E, kRowBlock, tiles);
  pool.parallel_for(n_tiles, [&](int64_t ti, int) {
    const int e = tiles[2 * static_cast<size_t>(ti)];
    const int64_t r0 = a.plan.offset[static_cast<size_t>(e)] + tiles[2 * static_cast<size_t>(ti) + 1];
    const int64_t n = std::min<int64_t>(kRowBlock, a.plan.offset[static_cast<size_t>(e) + 1] - r0);
    const float* x = a.xg.data() + r0 * d;
    float* hg = a.hg.data() + r0 * f;
    float* hu = a.hu.data() + r0 * f;
    float* act = a.act.data() + r0 * f;
    sgemm(false, true, n, f, d, 1.0f, x, d, p.gate + e * f * d, d, 0.0f, hg, f);
    sgemm(false, true, n, f, d, 1.0f, x, d, p.up + e * f * d, d, 0.0f, hu, f);
    swiglu_fwd_serial(hg, hu, n * f, act);
    sgemm(false, true, n, d, f, 1.0f, act, f, p.down + e * d * f, f, 0.0f, a.out.data() + r0 * d, d);
  });

  // 5. Shared expert (dense, every token).
  const int64_t fs = m.n_ff_shexp;
  if (fs > 0) {
    linear_fwd(pool, xn, p.gate_sh, N, d, fs, a.hg_s.data());
    linear_fwd(pool, xn, p.up_sh, N, d, fs, a.hu_s.data());
    swiglu_fwd(pool, a.hg_s.data(), a.hu_s.data(), N * fs, a.act_s.data());
    linear_fwd(pool, a.act_s.data(), p.down_sh, N, fs, d, a.out_s.data());
    if (p.sh_gate)
      for (int64_t t = 0; t < N; ++t) a.sh_logit[static_cast<size_t>(t)] = dot(xn + t * d, p.sh_gate, d);
  }

  // 6. Weighted sum per token in slot order (the inference combine step; null experts add nothing), plus the
  // shared expert.
  pool.parallel_for(pool.size(), [&](int64_t part, int) {
    int64_t b, e;
    split_range(N, pool.size(), static_cast<int>(part), b, e);
    combine_rows(a.plan, a.weights.data(), a.n_used.data(), K, a.out.data(), d, static_cast<int>(b), static_cast<int>(e),
                 0, d, y);
    if (fs > 0)
      for (int64_t t = b; t < e; ++t) {
        const float gs = p.sh_gate ? 1.0f / (1.0f + std::exp(-a.sh_logit[static_cast<size_t>(t)])) : 1.0f;
        axpy(gs, a.out_s.data() + t * d, y + t * d, d);
      }
  });
}

// dL/dlogits of one token from the gate-weight gradients, the aux loss and the z-loss.
static void router_token_bwd(const ModelShape& m, const MoeActs& a, int64_t t, int64_t N, const float* dw,
                             const std::vector<double>& aux_coef, float z_coef, float* dprobs, float* dlogits) {
  const int S = m.n_slots(), K = a.K;
  const RoutingOptions& r = m.routing;
  const float* pr = a.probs.data() + t * S;
  const int32_t* ids = a.ids.data() + t * K;
  const int n = a.n_used[static_cast<size_t>(t)];
  std::fill(dprobs, dprobs + S, 0.0f);
  // Gate weights w_j = scale * p_j / sum (norm_topk) or scale * p_j.
  if (r.norm_topk) {
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) sum += pr[ids[j]];
    if (sum >= kNormFloor) {
      float gw = 0.0f;
      for (int j = 0; j < n; ++j) gw += dw[j] * pr[ids[j]];
      gw /= sum;
      for (int j = 0; j < n; ++j) dprobs[ids[j]] += r.weights_scale * (dw[j] - gw) / sum;
    } else {
      for (int j = 0; j < n; ++j) dprobs[ids[j]] += r.weights_scale * dw[j] / kNormFloor;
    }
  } else {
    for (int j = 0; j < n; ++j) dprobs[ids[j]] += r.weights_scale * dw[j];
  }
  // Aux loss: d/dq_i = coef_i, through q = p / sum(p) for sigmoid scores.
  if (r.aux_alpha > 0) {
    if (r.gating == Gating::Sigmoid) {
      double psum = 0.0, qc = 0.0;
      for (int i = 0; i < S; ++i) psum += pr[i];
      for (int i = 0; i < S; ++i) qc += pr[i] / psum * aux_coef[static_cast<size_t>(i)];
      for (int i = 0; i < S; ++i) dprobs[i] += static_cast<float>((aux_coef[static_cast<size_t>(i)] - qc) / psum);
    } else {
      for (int i = 0; i < S; ++i) dprobs[i] += static_cast<float>(aux_coef[static_cast<size_t>(i)]);
    }
  }
  if (r.gating == Gating::Sigmoid) {
    for (int i = 0; i < S; ++i) dlogits[i] = dprobs[i] * pr[i] * (1.0f - pr[i]);
  } else {
    float s = 0.0f;
    for (int i = 0; i < S; ++i) s += pr[i] * dprobs[i];
    for (int i = 0; i < S; ++i) dlogits[i] = pr[i] * (dprobs[i] - s);
  }
  if (r.z_beta > 0) {
    const float* lg = a.logits.data() + t * S;
    const float lse = a.lse[static_cast<size_t>(t)];
    const float c = z_coef * 2.0f * lse / static_cast<float>(N);
    for (int i = 0; i < S; ++i) dlogits[i] += c * std::exp(lg[i] - lse);
  }
}

void moe_backward(ThreadPool& pool, const ModelShape& m, const MoeParams& p, MoeGrads& g, const float* xn,
                  int64_t N, const float* dy, float* dxn, const MoeActs& a, MoeScratchTrain& s, float loss_scale) {
  const int S = m.n_slots(), E = m.n_expert, K = a.K;
  const int64_t d = m.n_embd, f = m.n_ff_exp, fs = m.n_ff_shexp;

  // 1. Shared expert first: it writes dxn, everything after accumulates.
  bool dxn_written = false;
  if (fs > 0) {
    float* dos = s.d_out_s.data();
    for (int64_t t = 0; t < N; ++t) {
      if (p.sh_gate) {
        const float gs = 1.0f / (1.0f + std::exp(-a.sh_logit[static_cast<size_t>(t)]));
        const float dgs = dot(dy + t * d, a.out_s.data() + t * d, d);
        s.d_shlogit[static_cast<size_t>(t)] = dgs * gs * (1.0f - gs);
        scaled_copy(gs, dy + t * d, dos + t * d, d);
      } else {
        std::memcpy(dos + t * d, dy + t * d, sizeof(float) * d);
      }
    }
    linear_bwd_x(pool, dos, p.down_sh, N, fs, d, s.dact_s.data(), false);
    linear_bwd_w(pool, dos, a.act_s.data(), N, fs, d, g.down_sh);
    swiglu_bwd(pool, s.dact_s.data(), a.hg_s.data(), a.hu_s.data(), N * fs, s.dhg_s.data(), s.dhu_s.data());
    linear_bwd_x(pool, s.dhg_s.data(), p.gate_sh, N, d, fs, dxn, false);
    linear_bwd_x(pool, s.dhu_s.data(), p.up_sh, N, d, fs, dxn, true);
    linear_bwd_w(pool, s.dhg_s.data(), xn, N, d, fs, g.gate_sh);
    linear_bwd_w(pool, s.dhu_s.data(), xn, N, d, fs, g.up_sh);
    if (p.sh_gate) {
      for (int64_t t = 0; t < N; ++t) {
        const float c = s.d_shlogit[static_cast<size_t>(t)];
        axpy(c, p.sh_gate, dxn + t * d, d);
        axpy(c, xn + t * d, g.sh_gate, d);
      }
    }
    dxn_written = true;
  }

  // 2. Gate-weight gradients and the gradient of each gathered row's output.
  std::fill(s.dw.begin(), s.dw.begin() + N * K, 0.0f);
  pool.parallel_for(a.n_rows, [&](int64_t r, int) {
    const int32_t slot = a.plan.row_slot[static_cast<size_t>(r)];
    const int64_t t = a.plan.row_token[static_cast<size_t>(r)];
    const float* dyt = dy + t * d;
    s.dw[static_cast<size_t>(slot)] = dot(dyt, a.out.data() + r * d, d);
    scaled_copy(a.weights[static_cast<size_t>(slot)], dyt, s.dout_rows.data() + r * d, d);
  });

  // 3. Per (expert, row block): dact = dO Wd, SwiGLU backward, dxg = dhg Wg + dhu Wu.
  std::vector<int32_t>& tiles = s.tiles;
  const int n_tiles = make_row_tiles(a, E, kRowBlock, tiles);
  pool.parallel_for(n_tiles, [&](int64_t ti, int) {
    const int e = tiles[2 * static_cast<size_t>(ti)];
    const int64_t r0 = a.plan.offset[static_cast<size_t>(e)] + tiles[2 * static_cast<size_t>(ti) + 1];
    const int64_t n = std::min<int64_t>(kRowBlock, a.plan.offset[static_cast<size_t>(e) + 1] - r0);
    float* dact = s.dact.data() + r0 * f;
    sgemm(false, false, n, f, d, 1.0f, s.dout_rows.data() + r0 * d, d, p.down + e * d * f, f, 0.0f, dact, f);
    swiglu_bwd_serial(dact, a.hg.data() + r0 * f, a.hu.data() + r0 * f, n * f, s.dhg.data() + r0 * f,
                      s.dhu.data() + r0 * f);
    float* dx = s.dxg.data() + r0 * d;
    sgemm(false, false, n, d, f, 1.0f, s.dhg.data() + r0 * f, f, p.gate + e * f * d, d, 0.0f, dx, d);
    sgemm(false, false, n, d, f, 1.0f, s.dhu.data() + r0 * f, f, p.up + e * f * d, d, 1.0f, dx, d);
  });

  // 4. Expert weight gradients, tiled over (expert, matrix, output rows): each summed over the expert's rows.
  int n_wt = 0;
  for (int e = 0; e < E; ++e) {
    if (a.plan.count[static_cast<size_t>(e)] == 0) continue;
    for (int kind = 0; kind < 3; ++kind) {
      const int64_t rows = kind == 2 ? d : f;
      for (int64_t r = 0; r < rows; r += kOutBlock) {
        tiles[3 * static_cast<size_t>(n_wt)] = e;
        tiles[3 * static_cast<size_t>(n_wt) + 1] = kind;
        tiles[3 * static_cast<size_t>(n_wt) + 2] = static_cast<int32_t>(r);
        ++n_wt;
      }
    }
  }
  pool.parallel_for(n_wt, [&](int64_t ti, int) {
    const int e = tiles[3 * static_cast<size_t>(ti)], kind = tiles[3 * static_cast<size_t>(ti) + 1];
    const int64_t o0 = tiles[3 * static_cast<size_t>(ti) + 2];
    const int64_t row0 = a.plan.offset[static_cast<size_t>(e)], n = a.plan.count[static_cast<size_t>(e)];
    if (kind == 2) {  // dWd[o0:o1][f] += dO[:, o0:o1]^T act
      const int64_t m_rows = std::min(kOutBlock, d - o0);
      sgemm(true, false, m_rows, f, n, 1.0f, s.dout_rows.data() + row0 * d + o0, d, a.act.data() + row0 * f, f, 1.0f,
            g.down + e * d * f + o0 * f, f);
    } else {  // dWg / dWu [o0:o1][d] += dh[:, o0:o1]^T xg
      const int64_t m_rows = std::min(kOutBlock, f - o0);
      const float* dh = (kind == 0 ? s.dhg.data() : s.dhu.data()) + row0 * f + o0;
      float* gw = (kind == 0 ? g.gate : g.up) + e * f * d + o0 * d;
      sgemm(true, false, m_rows, d, n, 1.0f, dh, f, a.xg.data() + row0 * d, d, 1.0f, gw, d);
    }
  });

  // 5. Scatter the gathered rows' gradients back to their tokens, in slot order.
  pool.parallel_for(pool.size(), [&](int64_t part, int) {
    int64_t b, e;
    split_range(N, pool.size(), static_cast<int>(part), b, e);
    for (int64_t t = b; t < e; ++t) {
      float* dx = dxn + t * d;
      if (!dxn_written) std::memset(dx, 0, sizeof(float) * d);
      for (int j = 0; j < a.n_used[static_cast<size_t>(t)]; ++j) {
        const int32_t r = a.plan.slot_row[static_cast<size_t>(t * K + j)];
        if (r >= 0) axpy(1.0f, s.dxg.data() + static_cast<int64_t>(r) * d, dx, d);
      }
    }
  });

  // 6. Router: dlogits per token, then dxn += dlogits R and dR += dlogits^T xn.
  std::vector<double>& aux_coef = s.aux_coef;
  std::fill(aux_coef.begin(), aux_coef.end(), 0.0);
  if (m.routing.aux_alpha > 0) {
    double total = 0.0, null_load = 0.0;
    for (int i = 0; i < S; ++i) total += a.load[static_cast<size_t>(i)];
    for (int i = E; i < S; ++i) null_load += a.load[static_cast<size_t>(i)];
    for (int i = 0; i < S; ++i) {
      const double f_i = i < E ? a.load[static_cast<size_t>(i)] / total : null_load / total / (S - E);
      aux_coef[static_cast<size_t>(i)] = loss_scale * m.routing.aux_alpha * S * f_i / static_cast<double>(N);
    }
  }
  const float z_coef = loss_scale * m.routing.z_beta;
  pool.parallel_for(pool.size(), [&](int64_t part, int) {
    int64_t b, e;
    split_range(N, pool.size(), static_cast<int>(part), b, e);
    for (int64_t t = b; t < e; ++t)
      router_token_bwd(m, a, t, N, s.dw.data() + t * K, aux_coef, z_coef, s.dprobs.data() + t * S,
                       s.dlogits.data() + t * S);
  });
  linear_bwd_x(pool, s.dlogits.data(), p.router, N, d, S, dxn, true);
  linear_bwd_w(pool, s.dlogits.data(), xn, N, d, S, g.router);
}

}  // namespace moe::train
