// The MoE variants of gpt-oss and SmallThinker against a plain per-token reference written from their definitions:
// router bias, softmax over the selected top-k logits, expert biases, the clamped SwiGLU (gpt-oss); sigmoid gating
// renormalised, ReGLU (SmallThinker); and routing before the layer (pre_routed) changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "moe/moe_ffn.h"

using namespace moe;

namespace {

struct Layer {
  int d, f, e;
  std::vector<float> router, router_b, gate, up, down, gate_b, up_b, down_b;
  Layer(int d_, int f_, int e_, unsigned seed) : d(d_), f(f_), e(e_) {
    std::mt19937 rng(seed);
    auto fill = [&](std::vector<float>& v, size_t n, float sd) {
      std::normal_distribution<float> nd(0.f, sd);
      v.resize(n);
      for (float& x : v) x = nd(rng);
    };
    fill(router, static_cast<size_t>(e) * d, 0.3f);
    fill(router_b, e, 0.5f);
    // Wide gate/up so that the clamp at 7 is really reached.
    fill(gate, static_cast<size_t>(e) * f * d, 0.6f);
    fill(up, static_cast<size_t>(e) * f * d, 0.6f);
    fill(down, static_cast<size_t>(e) * d * f, 0.1f);
    fill(gate_b, static_cast<size_t>(e) * f, 0.5f);
    fill(up_b, static_cast<size_t>(e) * f, 0.5f);
    fill(down_b, static_cast<size_t>(e) * d, 0.5f);
  }
  MoeWeights weights(bool biases) const {
    auto u8 = [](const std::vector<float>& v) { return reinterpret_cast<const uint8_t*>(v.data()); };
    MoeWeights w;
    w.router = Mat{DType::F32, e, d, u8(router), sizeof(float) * d};
    const size_t gs = sizeof(float) * d, ds = sizeof(float) * f;
    w.gate = ExpertMats{DType::F32, f, d, e, u8(gate), gs, gs * f};
    w.up = ExpertMats{DType::F32, f, d, e, u8(up), gs, gs * f};
    w.down = ExpertMats{DType::F32, d, f, e, u8(down), ds, ds * d};
    if (biases) {
      w.router_bias = Vec{router_b.data(), e};
      w.gate_bias = gate_b.data();
      w.up_bias = up_b.data();
      w.down_bias = down_b.data();
    }
    return w;
  }

  // One token, straight from the definitions, in double.
  std::vector<float> reference(const float* x, int k, const RouterSpec& r, const ExpertFfnSpec& act, bool biases) const {
    std::vector<double> logit(e);
    for (int i = 0; i < e; ++i) {
      double s = biases ? router_b[i] : 0.0;
      for (int j = 0; j < d; ++j) s += static_cast<double>(router[i * d + j]) * x[j];
      logit[i] = s;
    }
    std::vector<double> score(logit);
    if (r.gating == Gating::Sigmoid)
      for (double& s : score) s = 1.0 / (1.0 + std::exp(-s));
    std::vector<int> ids(e);
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return score[a] > score[b]; });
    ids.resize(k);
    std::vector<double> w(k);
    for (int j = 0; j < k; ++j) w[j] = score[ids[j]];
    if (r.gating == Gating::SoftmaxTopK) {
      double mx = *std::max_element(w.begin(), w.end()), sum = 0;
      for (double& v : w) sum += (v = std::exp(v - mx));
      for (double& v : w) v /= sum;
    }
    if (r.norm_topk) {
      double sum = std::accumulate(w.begin(), w.end(), 0.0);
      for (double& v : w) v /= sum;
    }
    std::vector<double> y(d, 0.0), h(f);
    for (int j = 0; j < k; ++j) {
      const int ex = ids[j];
      for (int r2 = 0; r2 < f; ++r2) {
        double g = biases ? gate_b[ex * f + r2] : 0.0, u = biases ? up_b[ex * f + r2] : 0.0;
        for (int c = 0; c < d; ++c) {
          g += static_cast<double>(gate[(static_cast<size_t>(ex) * f + r2) * d + c]) * x[c];
          u += static_cast<double>(up[(static_cast<size_t>(ex) * f + r2) * d + c]) * x[c];
        }
        switch (act.act) {
          case ExpertActivation::SwiGLU: h[r2] = g / (1 + std::exp(-g)) * u; break;
          case ExpertActivation::ReGLU: h[r2] = std::max(g, 0.0) * u; break;
          case ExpertActivation::SwiGLUClamped: {
            const double xg = std::min<double>(g, act.limit), yu = std::clamp<double>(u, -act.limit, act.limit);
            h[r2] = xg / (1 + std::exp(-act.alpha * xg)) * (yu + 1);
            break;
          }
        }
      }
      for (int c = 0; c < d; ++c) {
        double o = biases ? down_b[ex * d + c] : 0.0;
        for (int r2 = 0; r2 < f; ++r2) o += static_cast<double>(down[(static_cast<size_t>(ex) * d + c) * f + r2]) * h[r2];
        y[c] += w[j] * o;
      }
    }
    return std::vector<float>(y.begin(), y.end());
  }
};

std::vector<float> random_x(int n, int d, unsigned seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<float> x(static_cast<size_t>(n) * d);
  for (float& v : x) v = nd(rng);
  return x;
}

struct Variant {
  const char* name;
  RouterSpec router;
  ExpertFfnSpec act;
  bool biases;
};

std::vector<Variant> variants() {
  RouterSpec oss;
  oss.gating = Gating::SoftmaxTopK;
  oss.norm_topk = false;
  ExpertFfnSpec clamped;
  clamped.act = ExpertActivation::SwiGLUClamped;
  RouterSpec st;
  st.gating = Gating::Sigmoid;
  st.norm_topk = true;
  ExpertFfnSpec reglu;
  reglu.act = ExpertActivation::ReGLU;
  return {{"gpt-oss", oss, clamped, true}, {"smallthinker", st, reglu, false}};
}

std::vector<float> run_layer(const Layer& L, const Variant& v, int k, const std::vector<float>& x, int n,
                             const KernelSet& kernels, bool pre_routed) {
  ThreadPool pool(2);
  Exec ex{kernels, pool};
  const MoeWeights w = L.weights(v.biases);
  MoeScratch s;
  s.reserve(w, v.router, L.d, n, k);
  ResidentExpertStore store({w.experts()}, ex);
  const MoeLayerSpec spec{v.router, v.act, k};
  if (pre_routed) {
    moe_router_logits(ex, w.router, x.data(), n, L.d, s, w.router_bias);
    moe_route(spec, RoutingControl{}, 0, w.selection_bias, L.e, n, s);
  }
  std::vector<float> y(x.size());
  moe_ffn_forward(ex, w, store, spec, RoutingControl{}, 0, x.data(), n, L.d, y.data(), s, nullptr, nullptr,
                  pre_routed);
  return y;
}

}  // namespace

TEST(MoeVariants, MatchPlainReferencePerToken) {
  const int d = 40, f = 24, e = 9, k = 3, n = 7;
  const Layer L(d, f, e, 11);
  const auto x = random_x(n, d, 5, 1.5f);
  for (const Variant& v : variants()) {
    for (const KernelSet* ks : {&reference_kernels(), &simd_kernels()}) {
      const auto y = run_layer(L, v, k, x, n, *ks, false);
      double worst = 0, scale = 0;
      for (int t = 0; t < n; ++t) {
        const auto r = L.reference(x.data() + t * d, k, v.router, v.act, v.biases);
        for (int c = 0; c < d; ++c) {
          worst = std::max(worst, std::abs(static_cast<double>(y[t * d + c]) - r[c]));
          scale = std::max(scale, std::abs(static_cast<double>(r[c])));
        }
      }
      // float GEMMs of width <= 40 against double: a few ulps of the largest output.
      EXPECT_LE(worst, 1e-5 * std::max(1.0, scale)) << v.name << " " << ks->name;
    }
  }
}

TEST(MoeVariants, ClampIsReached) {
  // The test above is only meaningful if gate values above the limit and up values outside it occur.
  const Layer L(40, 24, 9, 11);
  const auto x = random_x(1, 40, 5, 1.5f);
  int over = 0;
  for (int r = 0; r < 24 * 9; ++r) {
    double g = L.gate_b[r];
    for (int c = 0; c < 40; ++c) g += static_cast<double>(L.gate[static_cast<size_t>(r) * 40 + c]) * x[c];
    over += g > 7.0;
  }
  EXPECT_GT(over, 0);
}

TEST(MoeVariants, RoutingBeforeTheLayerChangesNothing) {
  const int d = 40, f = 24, e = 9, k = 3, n = 5;
  const Layer L(d, f, e, 12);
  const auto x = random_x(n, d, 6, 1.0f);
  for (const Variant& v : variants()) {
    const auto a = run_layer(L, v, k, x, n, simd_kernels(), false);
    const auto b = run_layer(L, v, k, x, n, simd_kernels(), true);
    EXPECT_EQ(a, b) << v.name;
  }
}

TEST(MoeVariants, SoftmaxTopKWeightsSumToOneAndFollowLogits) {
  RouterSpec r;
  r.gating = Gating::SoftmaxTopK;
  r.norm_topk = false;
  const float logits[6] = {0.5f, -1.0f, 2.0f, 2.0f, 0.1f, -3.0f};
  float probs[6], scratch[16], w[3];
  int32_t ids[3];
  const int n = route_token(r, 3, 6, logits, nullptr, RoutingControl{}, 0, probs, scratch, ids, w);
  ASSERT_EQ(n, 3);
  EXPECT_EQ(ids[0], 2);  // tie: lower id first
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(ids[2], 0);
  const double z = 2 * std::exp(0.0) + std::exp(-1.5);
  EXPECT_NEAR(w[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(w[1], 1.0 / z, 1e-6);
  EXPECT_NEAR(w[2], std::exp(-1.5) / z, 1e-6);
  // probs: the softmax over every expert (what observers and --expert-top-p see).
  double sum = 0;
  for (float p : probs) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_NEAR(probs[2] / probs[0], std::exp(1.5), 1e-4);
}
