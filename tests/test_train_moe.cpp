// The MoE layer of the trainer, one test per routing option: forward and every gradient (input, router,
// experts, shared expert and its gate) against a double-precision reference written from the maths, with
// finite differences. The reference takes the selected experts from our forward (routing is discrete; the
// gradient is that of the routed function at fixed selection) and checks they are the ones its own double
// routing would pick. Loss = sum(c * y) + aux + z, with our aux/z statistics recomputed in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>

#include "moe/moe_ffn.h"
#include "moe/router.h"
#include "train/moe_layer_train.h"
#include "train/optimizer.h"

using namespace moe;
using namespace moe::train;

namespace {

using Vd = std::vector<double>;

std::vector<float> randn(size_t n, unsigned seed, float std = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, std);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

void expect_close(const std::string& what, const float* got, const Vd& want, double rel_tol) {
  double max_abs = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  const double rel = max_abs / std::max(scale, 1e-30);
  std::printf("[fd] %-34s max abs %.3e, max rel %.3e (scale %.3e)\n", what.c_str(), max_abs, rel, scale);
  EXPECT_LE(rel, rel_tol) << what;
}

// All inputs of the layer as doubles, in one struct so one function can perturb any of them.
struct Inputs {
  Vd xn, router, gate, up, down, gate_sh, up_sh, down_sh, sh_gate;
};

struct Fixed {  // what the float forward decided
  std::vector<int32_t> ids, n_used;
  int K = 0;
  Vd load;
};

double silu(double x) { return x / (1 + std::exp(-x)); }

// Loss of the MoE layer in double at fixed selection.
double moe_loss_ref(const ModelShape& m, const Inputs& in, const Fixed& fx, const Vd& c, int N, Vd* y_out = nullptr) {
  const int d = m.n_embd, f = m.n_ff_exp, E = m.n_expert, S = m.n_slots(), fs = m.n_ff_shexp;
  const RoutingOptions& r = m.routing;
  double loss = 0, z = 0;
  Vd meanq(S, 0.0);
  Vd y(static_cast<size_t>(N) * d, 0.0);
  for (int t = 0; t < N; ++t) {
    const double* x = in.xn.data() + static_cast<size_t>(t) * d;
    Vd s(S), p(S);
    for (int i = 0; i < S; ++i) {
      double acc = 0;
      for (int j = 0; j < d; ++j) acc += in.router[static_cast<size_t>(i) * d + j] * x[j];
      s[i] = acc;
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double zs = 0;
    for (int i = 0; i < S; ++i) zs += std::exp(s[i] - mx);
    const double lse = mx + std::log(zs);
    z += lse * lse;
    double psum = 0;
    for (int i = 0; i < S; ++i) {
      p[i] = r.gating == Gating::Softmax ? std::exp(s[i] - lse) : 1 / (1 + std::exp(-s[i]));
      psum += p[i];
    }
    for (int i = 0; i < S; ++i) meanq[i] += (r.gating == Gating::Softmax ? p[i] : p[i] / psum) / N;
    const int n = fx.n_used[static_cast<size_t>(t)];
    const int32_t* ids = fx.ids.data() + static_cast<size_t>(t) * fx.K;
    double wsum = 0;
    for (int j = 0; j < n; ++j) wsum += p[ids[j]];
    for (int j = 0; j < n; ++j) {
      const int e = ids[j];
      if (e >= E) continue;
      const double w = r.weights_scale * p[e] / (r.norm_topk ? wsum : 1.0);
      for (int o = 0; o < d; ++o) {
        double acc = 0;
        for (int h = 0; h < f; ++h) {
          double g = 0, u = 0;
          for (int i = 0; i < d; ++i) {
            g += in.gate[(static_cast<size_t>(e) * f + h) * d + i] * x[i];
            u += in.up[(static_cast<size_t>(e) * f + h) * d + i] * x[i];
          }
          acc += in.down[(static_cast<size_t>(e) * d + o) * f + h] * silu(g) * u;
        }
        y[static_cast<size_t>(t) * d + o] += w * acc;
      }
    }
    if (fs > 0) {
      double gate = 1;
      if (m.shared_gate) {
        double a = 0;
        for (int i = 0; i < d; ++i) a += in.sh_gate[i] * x[i];
        gate = 1 / (1 + std::exp(-a));
      }
      for (int o = 0; o < d; ++o) {
        double acc = 0;
        for (int h = 0; h < fs; ++h) {
          double g = 0, u = 0;
          for (int i = 0; i < d; ++i) {
            g += in.gate_sh[static_cast<size_t>(h) * d + i] * x[i];
            u += in.up_sh[static_cast<size_t>(h) * d + i] * x[i];
          }
          acc += in.down_sh[static_cast<size_t>(o) * fs + h] * silu(g) * u;
        }
        y[static_cast<size_t>(t) * d + o] += gate * acc;
      }
    }
  }
  for (size_t i = 0; i < y.size(); ++i) loss += c[i] * y[i];
  if (r.aux_alpha > 0) {
    double total = 0, null_load = 0, s = 0;
    for (int i = 0; i < S; ++i) total += fx.load[i];
    for (int i = E; i < S; ++i) null_load += fx.load[i];
    for (int i = 0; i < S; ++i) s += (i < E ? fx.load[i] / total : null_load / total / (S - E)) * meanq[i];
    loss += r.aux_alpha * S * s;
  }
  if (r.z_beta > 0) loss += r.z_beta * z / N;
  if (y_out) *y_out = y;
  return loss;
}

struct Case {
  Case(const char* n, const ModelShape& shape) : name(n), m(shape) {}
  const char* name;
  ModelShape m;
  int N = 6;
  RouteStep rs;
  bool random_bias = false;
};

ModelShape base_shape() {
  ModelShape m;
  m.n_embd = 8;
  m.n_ff_exp = 6;
  m.n_expert = 4;
  m.n_expert_used = 2;
  m.n_vocab = 10;
  m.n_ctx = 6;
  return m;
}

void run_case(const Case& cs) {
  const ModelShape& m = cs.m;
  const int N = cs.N, d = m.n_embd, f = m.n_ff_exp, E = m.n_expert, S = m.n_slots(), fs = m.n_ff_shexp;
  ThreadPool pool(2);
  auto xn = randn(static_cast<size_t>(N) * d, 1), router = randn(static_cast<size_t>(S) * d, 2, 0.8f);
  auto gate = randn(static_cast<size_t>(E) * f * d, 3, 0.5f), up = randn(static_cast<size_t>(E) * f * d, 4, 0.5f);
  auto down = randn(static_cast<size_t>(E) * d * f, 5, 0.5f);
  auto gate_sh = randn(static_cast<size_t>(fs) * d, 6, 0.5f), up_sh = randn(static_cast<size_t>(fs) * d, 7, 0.5f);
  auto down_sh = randn(static_cast<size_t>(d) * fs, 8, 0.5f), sh_gate = randn(static_cast<size_t>(d), 9, 0.5f);
  auto bias = randn(static_cast<size_t>(E), 10, 0.2f);
  auto c = randn(static_cast<size_t>(N) * d, 11);
  MoeParams p;
  p.router = router.data();
  p.gate = gate.data();
  p.up = up.data();
  p.down = down.data();
  if (fs > 0) {
    p.gate_sh = gate_sh.data();
    p.up_sh = up_sh.data();
    p.down_sh = down_sh.data();
    if (m.shared_gate) p.sh_gate = sh_gate.data();
  }
  if (cs.random_bias) p.sel_bias = bias.data();
  MoeActs a;
  a.reserve(m, N);
  MoeScratchTrain s;
  s.reserve(m, N);
  std::vector<float> y(static_cast<size_t>(N) * d), dxn(y.size());
  moe_forward(pool, m, p, xn.data(), N, y.data(), a, cs.rs);

  Fixed fx;
  fx.K = a.K;
  fx.ids = a.ids;
  fx.n_used = a.n_used;
  fx.load = a.load;
  // Our selection must be the one the inference router picks (outside the DTS soft phase).
  if (!(cs.rs.train && m.routing.dts_soft(cs.rs.step))) {
    RouterSpec spec;
    spec.gating = m.routing.gating;
    spec.norm_topk = m.routing.norm_topk;
    spec.weights_scale = m.routing.weights_scale;
    spec.n_group = spec.n_group_used = m.routing.n_group;
    spec.group_balanced = m.routing.n_group > 1;
    spec.n_null = m.routing.n_null;
    std::vector<float> probs(S), scratch(S + 16), w(a.K);
    std::vector<int32_t> ids(a.K);
    for (int t = 0; t < N; ++t) {
      const int n = route_token(spec, m.n_expert_used, E, a.logits.data() + t * S, p.sel_bias, RoutingControl{}, 0,
                                probs.data(), scratch.data(), ids.data(), w.data());
      ASSERT_EQ(n, a.n_used[t]);
      for (int j = 0; j < n; ++j) ASSERT_EQ(ids[j], a.ids[t * a.K + j]);
    }
  }
  Inputs in{Vd(xn.begin(), xn.end()),     Vd(router.begin(), router.end()), Vd(gate.begin(), gate.end()),
            Vd(up.begin(), up.end()),     Vd(down.begin(), down.end()),     Vd(gate_sh.begin(), gate_sh.end()),
            Vd(up_sh.begin(), up_sh.end()), Vd(down_sh.begin(), down_sh.end()), Vd(sh_gate.begin(), sh_gate.end())};
  const Vd cd(c.begin(), c.end());
  Vd y_ref;
  const double loss_ref = moe_loss_ref(m, in, fx, cd, N, &y_ref);
  expect_close(std::string(cs.name) + " y", y.data(), y_ref, 2e-6);
  EXPECT_NEAR(a.aux_loss + a.z_loss + [&] {
    double l = 0;
    for (size_t i = 0; i < y_ref.size(); ++i) l += cd[i] * y_ref[i];
    return l;
  }(), loss_ref, 1e-5 * (1 + std::fabs(loss_ref)));

  std::vector<float> g_router(router.size(), 0.f), g_gate(gate.size(), 0.f), g_up(up.size(), 0.f),
      g_down(down.size(), 0.f), g_gsh(gate_sh.size(), 0.f), g_ush(up_sh.size(), 0.f), g_dsh(down_sh.size(), 0.f),
      g_shg(sh_gate.size(), 0.f);
  MoeGrads g{g_router.data(), g_gate.data(), g_up.data(), g_down.data(), g_gsh.data(), g_ush.data(), g_dsh.data(),
             g_shg.data()};
  moe_backward(pool, m, p, g, xn.data(), N, c.data(), dxn.data(), a, s, 1.0f);

  auto num = [&](Vd Inputs::*field) {
    Inputs w = in;
    Vd& x = w.*field;
    Vd grad(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const double x0 = x[i], eps = 1e-6;
      x[i] = x0 + eps;
      const double lp = moe_loss_ref(m, w, fx, cd, N);
      x[i] = x0 - eps;
      const double lm = moe_loss_ref(m, w, fx, cd, N);
      x[i] = x0;
      grad[i] = (lp - lm) / (2 * eps);
    }
    return grad;
  };
  const std::string n = cs.name;
  const double tol = 2e-5;
  expect_close(n + " dxn", dxn.data(), num(&Inputs::xn), tol);
  expect_close(n + " drouter", g_router.data(), num(&Inputs::router), tol);
  expect_close(n + " dgate_exps", g_gate.data(), num(&Inputs::gate), tol);
  expect_close(n + " dup_exps", g_up.data(), num(&Inputs::up), tol);
  expect_close(n + " ddown_exps", g_down.data(), num(&Inputs::down), tol);
  if (fs > 0) {
    expect_close(n + " dgate_shexp", g_gsh.data(), num(&Inputs::gate_sh), tol);
    expect_close(n + " dup_shexp", g_ush.data(), num(&Inputs::up_sh), tol);
    expect_close(n + " ddown_shexp", g_dsh.data(), num(&Inputs::down_sh), tol);
    if (m.shared_gate) expect_close(n + " dgate_inp_shexp", g_shg.data(), num(&Inputs::sh_gate), tol);
  }
}

MoeParams experts_only(const float* router, const float* w) {
  MoeParams p;
  p.router = router;
  p.gate = p.up = p.down = w;
  return p;
}

}  // namespace

TEST(TrainMoe, SoftmaxTopKWithAuxAndZLoss) {
  Case c{"topk", base_shape()};
  c.m.routing.aux_alpha = 0.1f;
  c.m.routing.z_beta = 0.01f;
  run_case(c);
}

TEST(TrainMoe, TopKWithoutRenormalisationScaled) {
  Case c{"topk-nonorm-scale", base_shape()};
  c.m.routing.norm_topk = false;
  c.m.routing.weights_scale = 2.5f;
  c.m.routing.aux_alpha = 0.05f;
  run_case(c);
}

TEST(TrainMoe, AuxLossFreeSigmoidWithSelectionBias) {
  Case c{"auxfree-sigmoid-bias", base_shape()};
  c.m.routing.gating = Gating::Sigmoid;
  c.m.routing.bias_rate = 0.001f;
  c.m.routing.aux_alpha = 0.05f;  // DeepSeek-V3's small sequence-wise loss on normalised scores
  c.random_bias = true;
  run_case(c);
}

TEST(TrainMoe, GroupedTopKMoGE) {
  Case c{"moge", base_shape()};
  c.m.n_expert = 8;
  c.m.n_expert_used = 4;
  c.m.routing.n_group = 2;
  c.m.routing.aux_alpha = 0.1f;
  c.m.routing.z_beta = 0.01f;
  run_case(c);
}

TEST(TrainMoe, NullExpertsAdaMoE) {
  Case c{"null-experts", base_shape()};
  c.m.routing.n_null = 4;
  c.m.n_expert_used = 3;
  c.m.routing.aux_alpha = 0.1f;
  c.m.routing.z_beta = 0.01f;
  c.N = 10;
  run_case(c);
}

TEST(TrainMoe, DenseToSparseGateSoftPhase) {
  Case c{"dts-soft", base_shape()};
  c.m.routing.dts = true;
  c.m.routing.dts_hard_step = 100;
  c.m.routing.dts_decay_steps = 100;
  c.m.routing.dts_tau_max = 2.0f;
  c.m.routing.dts_tau_min = 0.5f;
  c.m.routing.dts_threshold = 0.2f;  // variable experts per token at this size
  c.m.routing.aux_alpha = 0.1f;
  c.m.routing.z_beta = 0.01f;
  c.rs.step = 60;
  c.rs.seed = 7;
  run_case(c);
}

TEST(TrainMoe, DenseToSparseGateHardPhaseIsTopK) {
  Case c{"dts-hard", base_shape()};
  c.m.routing.dts = true;
  c.m.routing.dts_hard_step = 10;
  c.rs.step = 10;
  run_case(c);
}

TEST(TrainMoe, SharedExpertWithGate) {
  Case c{"shared-gated", base_shape()};
  c.m.n_ff_shexp = 5;
  c.m.shared_gate = true;
  c.m.routing.aux_alpha = 0.1f;
  run_case(c);
}

TEST(TrainMoe, FineGrainedExperts) {
  Case c{"fine-grained", base_shape()};
  c.m.n_expert = 12;
  c.m.n_expert_used = 4;
  c.m.n_ff_exp = 2;
  c.m.n_ff_shexp = 4;
  c.m.routing.aux_alpha = 0.1f;
  run_case(c);
}

TEST(TrainMoe, OneExpertIsADenseFfn) {
  Case c{"dense", base_shape()};
  c.m.n_expert = 1;
  c.m.n_expert_used = 1;
  run_case(c);
}

TEST(TrainMoe, DtsSoftPhaseStartsDenseAndSparsifies) {
  ModelShape m = base_shape();
  m.n_expert = 8;
  m.routing.dts = true;
  m.routing.dts_hard_step = 1000;
  m.routing.dts_decay_steps = 500;
  m.routing.dts_tau_max = 100.0f;
  m.routing.dts_tau_min = 0.02f;
  ThreadPool pool(1);
  const int N = 64;
  auto xn = randn(static_cast<size_t>(N) * m.n_embd, 1);
  auto router = randn(static_cast<size_t>(m.n_expert) * m.n_embd, 2, 2.0f);
  auto w = randn(static_cast<size_t>(m.n_expert) * m.n_ff_exp * m.n_embd, 3);
  MoeParams p = experts_only(router.data(), w.data());
  MoeActs a;
  a.reserve(m, N);
  std::vector<float> y(static_cast<size_t>(N) * m.n_embd);
  auto mean_used = [&](int64_t step) {
    RouteStep rs;
    rs.step = step;
    moe_forward(pool, m, p, xn.data(), N, y.data(), a, rs);
    return std::accumulate(a.n_used.begin(), a.n_used.begin() + N, 0.0) / N;
  };
  EXPECT_EQ(mean_used(0), 8.0);          // tau 100: every expert passes the threshold
  EXPECT_LT(mean_used(999), 1.3);        // tau 0.02: nearly one expert per token
  RouteStep eval;
  eval.train = false;
  eval.step = 0;
  moe_forward(pool, m, p, xn.data(), N, y.data(), a, eval);
  for (int t = 0; t < N; ++t) EXPECT_EQ(a.n_used[t], m.n_expert_used);  // evaluation routes as inference
}

TEST(TrainMoe, AuxLossFreeBiasBalancesASkewedRouter) {
  // A fixed router that prefers expert 0: the bias update alone must drive the load towards uniform.
  ModelShape m = base_shape();
  m.n_expert = 4;
  m.n_expert_used = 1;
  m.routing.gating = Gating::Sigmoid;
  m.routing.bias_rate = 0.01f;
  ThreadPool pool(1);
  const int N = 256;
  auto xn = randn(static_cast<size_t>(N) * m.n_embd, 4);
  auto router = randn(static_cast<size_t>(m.n_expert) * m.n_embd, 5, 0.3f);
  for (int t = 0; t < N; ++t) xn[static_cast<size_t>(t) * m.n_embd] = 2.0f;  // a constant feature ...
  for (int e = 0; e < m.n_expert; ++e) router[static_cast<size_t>(e) * m.n_embd] = e == 0 ? 1.0f : 0.0f;  // ... expert 0 likes
  auto w = randn(static_cast<size_t>(m.n_expert) * m.n_ff_exp * m.n_embd, 6);
  std::vector<float> bias(m.n_expert, 0.f);
  MoeParams p = experts_only(router.data(), w.data());
  p.sel_bias = bias.data();
  MoeActs a;
  a.reserve(m, N);
  std::vector<float> y(static_cast<size_t>(N) * m.n_embd);
  auto max_over_mean = [&] {
    moe_forward(pool, m, p, xn.data(), N, y.data(), a, RouteStep{});
    double mx = *std::max_element(a.load.begin(), a.load.begin() + m.n_expert);
    return mx / (static_cast<double>(N) / m.n_expert);
  };
  const double before = max_over_mean();
  std::vector<float> probs_before(a.probs.begin(), a.probs.end());
  for (int it = 0; it < 200; ++it) {
    max_over_mean();
    update_selection_bias(bias, a.load, m.routing.bias_rate);
  }
  const double after = max_over_mean();
  std::printf("aux-loss-free bias: max/mean load %.2f -> %.2f\n", before, after);
  EXPECT_GT(before, 1.5);
  EXPECT_LT(after, 1.25);
  // Gate scores use the unbiased affinities: probabilities are unchanged.
  for (size_t i = 0; i < probs_before.size(); ++i) ASSERT_EQ(a.probs[i], probs_before[i]);
}

TEST(TrainMoe, MoGEGroupsCarryEqualLoad) {
  ModelShape m = base_shape();
  m.n_expert = 16;
  m.n_expert_used = 4;
  m.routing.n_group = 4;
  ThreadPool pool(2);
  const int N = 100;
  auto xn = randn(static_cast<size_t>(N) * m.n_embd, 8);
  auto router = randn(static_cast<size_t>(m.n_expert) * m.n_embd, 9);
  auto w = randn(static_cast<size_t>(m.n_expert) * m.n_ff_exp * m.n_embd, 10);
  MoeParams p = experts_only(router.data(), w.data());
  MoeActs a;
  a.reserve(m, N);
  std::vector<float> y(static_cast<size_t>(N) * m.n_embd);
  moe_forward(pool, m, p, xn.data(), N, y.data(), a, RouteStep{});
  for (int g = 0; g < 4; ++g) {
    double load = 0;
    for (int e = 4 * g; e < 4 * g + 4; ++e) load += a.load[e];
    EXPECT_EQ(load, N);  // imbalance score 0 by construction
  }
}

// The trainer's forward runs the MoE core's route, plan, gather and combine steps; with its own fp32 GEMMs it must
// equal the inference layer (moe_ffn_forward over the same float weights): same experts, outputs to float rounding.
TEST(TrainMoe, TrainingForwardEqualsInferenceForward) {
  struct Case { const char* name; RoutingOptions r; int n_expert, k; };
  RoutingOptions topk, sig, moge, null;
  sig.gating = Gating::Sigmoid;
  sig.norm_topk = false;
  sig.weights_scale = 2.5f;
  moge.n_group = 2;
  null.n_null = 2;
  for (const Case& c : {Case{"softmax top-k", topk, 6, 2}, Case{"sigmoid scaled", sig, 6, 3},
                        Case{"MoGE groups", moge, 8, 4}, Case{"null experts", null, 6, 2}}) {
    ModelShape m;
    m.n_embd = 48;
    m.n_ff_exp = 40;
    m.n_expert = c.n_expert;
    m.n_expert_used = c.k;
    m.routing = c.r;
    const int d = m.n_embd, f = m.n_ff_exp, E = m.n_expert, S = m.n_slots(), N = 13;
    const auto router = randn(static_cast<size_t>(S) * d, 1, 0.5f), gate = randn(static_cast<size_t>(E) * f * d, 2, 0.2f);
    const auto up = randn(static_cast<size_t>(E) * f * d, 3, 0.2f), down = randn(static_cast<size_t>(E) * d * f, 4, 0.2f);
    const auto x = randn(static_cast<size_t>(N) * d, 5);
    ThreadPool pool(2);
    MoeParams p;
    p.router = router.data();
    p.gate = gate.data();
    p.up = up.data();
    p.down = down.data();
    MoeActs acts;
    acts.reserve(m, N);
    std::vector<float> y_train(static_cast<size_t>(N) * d);
    RouteStep rs;
    rs.train = false;
    moe_forward(pool, m, p, x.data(), N, y_train.data(), acts, rs);

    auto u8 = [](const std::vector<float>& v) { return reinterpret_cast<const uint8_t*>(v.data()); };
    MoeWeights w;
    const size_t ds = sizeof(float) * d, fsz = sizeof(float) * f;
    w.router = Mat{DType::F32, S, d, u8(router), ds};
    w.gate = ExpertMats{DType::F32, f, d, E, u8(gate), ds, ds * f};
    w.up = ExpertMats{DType::F32, f, d, E, u8(up), ds, ds * f};
    w.down = ExpertMats{DType::F32, d, f, E, u8(down), fsz, fsz * d};
    Exec ex{reference_kernels(), pool};
    MoeScratch s;
    const RouterSpec spec = router_spec(m);
    s.reserve(w, spec, d, N, c.k);
    ResidentExpertStore store({w.experts()}, ex);
    std::vector<float> y_inf(static_cast<size_t>(N) * d);
    moe_ffn_forward(ex, w, store, MoeLayerSpec{spec, {}, c.k}, RoutingControl{}, 0, x.data(), N, d, y_inf.data(), s,
                    nullptr);
    for (int t = 0; t < N; ++t) {
      ASSERT_EQ(s.n_used[t], acts.n_used[t]) << c.name;
      for (int j = 0; j < s.n_used[t]; ++j) ASSERT_EQ(s.ids[t * c.k + j], acts.ids[t * acts.K + j]) << c.name;
    }
    double max_abs = 0, scale = 0;
    for (size_t i = 0; i < y_inf.size(); ++i) {
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(y_inf[i] - y_train[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(y_inf[i])));
    }
    std::printf("[train vs inference] %-14s max abs %.3e (scale %.3e)\n", c.name, max_abs, scale);
    EXPECT_LE(max_abs, 1e-5 * scale) << c.name;  // float GEMMs summed in another order
  }
}
