// MoE layer equivalences (MegaBlocks-style steps tested one by one): dispatch plan, one expert == dense FFN,
// relabelling experts changes nothing, batch == single tokens, 1 thread == N threads.
#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "moe/dispatch.h"
#include "moe/moe_ffn.h"

using namespace moe;

namespace {

struct RandomMoe {
  int n_embd, n_ff, n_expert;
  std::vector<float> router, gate, up, down;
  RandomMoe(int d, int f, int e, unsigned seed) : n_embd(d), n_ff(f), n_expert(e) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 0.3f);
    auto fill = [&](std::vector<float>& v, size_t n) {
      v.resize(n);
      for (float& x : v) x = nd(rng);
    };
    fill(router, static_cast<size_t>(e) * d);
    fill(gate, static_cast<size_t>(e) * f * d);
    fill(up, static_cast<size_t>(e) * f * d);
    fill(down, static_cast<size_t>(e) * d * f);
  }
  MoeWeights weights() const {
    auto u8 = [](const std::vector<float>& v) { return reinterpret_cast<const uint8_t*>(v.data()); };
    MoeWeights w;
    w.router = Mat{DType::F32, n_expert, n_embd, u8(router), sizeof(float) * n_embd};
    const size_t gs = sizeof(float) * n_embd, ds = sizeof(float) * n_ff;
    w.gate = ExpertMats{DType::F32, n_ff, n_embd, n_expert, u8(gate), gs, gs * n_ff};
    w.up = ExpertMats{DType::F32, n_ff, n_embd, n_expert, u8(up), gs, gs * n_ff};
    w.down = ExpertMats{DType::F32, n_embd, n_ff, n_expert, u8(down), ds, ds * n_embd};
    return w;
  }
  // Experts reordered by perm (new expert i = old expert perm[i]), router rows with them.
  RandomMoe permuted(const std::vector<int>& perm) const {
    RandomMoe r = *this;
    auto move = [&](const std::vector<float>& src, std::vector<float>& dst, size_t block) {
      for (size_t i = 0; i < perm.size(); ++i)
        std::copy(src.begin() + perm[i] * block, src.begin() + (perm[i] + 1) * block, dst.begin() + i * block);
    };
    move(router, r.router, n_embd);
    move(gate, r.gate, static_cast<size_t>(n_ff) * n_embd);
    move(up, r.up, static_cast<size_t>(n_ff) * n_embd);
    move(down, r.down, static_cast<size_t>(n_ff) * n_embd);
    return r;
  }
};

ModelConfig config_for(const RandomMoe& m, int k) {
  ModelConfig c;
  c.n_embd = m.n_embd;
  c.n_expert = m.n_expert;
  c.n_expert_used = k;
  c.n_ff_exp = m.n_ff;
  return c;
}

std::vector<float> run_moe(const RandomMoe& m, int k, const std::vector<float>& x, int n_tokens, int threads,
                           const RoutingControl& ctl = {}, const RouterSpec& spec = {}) {
  ThreadPool pool(threads);
  Exec ex{reference_kernels(), pool};
  MoeWeights w = m.weights();
  MoeScratch s;
  s.reserve(config_for(m, k), w, n_tokens, std::max(k, ctl.max_experts_per_token(m.n_expert, k)));
  std::vector<float> y(x.size());
  moe_ffn_forward(ex, w, spec, k, ctl, 0, x.data(), n_tokens, m.n_embd, y.data(), s, nullptr);
  return y;
}

std::vector<float> random_x(int n, int d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n) * d);
  for (float& v : x) v = nd(rng);
  return x;
}

}  // namespace

TEST(Dispatch, GroupsByExpertInTokenOrderAndSkipsNullExperts) {
  // 3 tokens, 2 slots each, 4 experts; id 5 is a null expert.
  std::vector<int32_t> ids = {2, 0, 0, 5, 2, 1};
  std::vector<int32_t> used = {2, 2, 2};
  DispatchPlan p;
  p.reserve(4, 6);
  p.build(ids.data(), used.data(), 3, 2, 4);
  EXPECT_EQ(p.n_rows, 5);
  EXPECT_EQ(p.count, (std::vector<int32_t>{2, 1, 2, 0}));
  EXPECT_EQ(p.offset, (std::vector<int32_t>{0, 2, 3, 5, 5}));
  EXPECT_EQ(p.active, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(std::vector<int32_t>(p.row_token.begin(), p.row_token.begin() + 5), (std::vector<int32_t>{0, 1, 2, 0, 2}));
  // gather then scatter is the identity on the (token, slot) assignments
  std::vector<int> seen(6, 0);
  for (int r = 0; r < p.n_rows; ++r) {
    EXPECT_EQ(p.row_slot[r] / 2, p.row_token[r]);
    seen[p.row_slot[r]]++;
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 1, 1, 0, 1, 1}));
}

TEST(MoeFfn, OneExpertEqualsDenseFfn) {
  RandomMoe m(64, 48, 1, 1);
  const int T = 5;
  auto x = random_x(T, m.n_embd, 2);
  auto y = run_moe(m, 1, x, T, 1);
  ThreadPool pool(1);
  Exec ex{reference_kernels(), pool};
  MoeWeights w = m.weights();
  std::vector<uint8_t> scratch(ffn_scratch_bytes(w.gate.expert(0), w.down.expert(0), T));
  std::vector<float> dense(x.size());
  ffn_forward(ex, w.gate.expert(0), w.up.expert(0), w.down.expert(0), x.data(), T, dense.data(), scratch.data());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y[i], dense[i]);
}

TEST(MoeFfn, RelabellingExpertsChangesNothing) {
  RandomMoe m(64, 32, 8, 3);
  const int T = 7;
  auto x = random_x(T, m.n_embd, 4);
  auto y = run_moe(m, 3, x, T, 1);
  auto yp = run_moe(m.permuted({5, 2, 7, 0, 1, 6, 3, 4}), 3, x, T, 1);
  // Same experts chosen, same sums in the same slot order: bit-identical.
  EXPECT_EQ(y, yp);
}

TEST(MoeFfn, BatchEqualsSingleTokensAndThreadsDoNotMatter) {
  RandomMoe m(64, 32, 8, 5);
  const int T = 9;
  auto x = random_x(T, m.n_embd, 6);
  auto batch = run_moe(m, 2, x, T, 1);
  auto threaded = run_moe(m, 2, x, T, 4);
  EXPECT_EQ(batch, threaded);
  for (int t = 0; t < T; ++t) {
    std::vector<float> xt(x.begin() + t * m.n_embd, x.begin() + (t + 1) * m.n_embd);
    auto yt = run_moe(m, 2, xt, 1, 2);
    for (int i = 0; i < m.n_embd; ++i) EXPECT_EQ(yt[i], batch[t * m.n_embd + i]) << "token " << t;
  }
}

TEST(MoeFfn, BanningEveryExpertButOneRoutesEverythingThere) {
  RandomMoe m(32, 16, 4, 7);
  const int T = 4;
  auto x = random_x(T, m.n_embd, 8);
  RoutingControl ban;
  ban.banned = {{1, 1, 0, 1}};
  RouterSpec spec;
  auto y = run_moe(m, 2, x, T, 1, ban, spec);
  // Only expert 2 can be chosen (k=2 finds one candidate); with renormalisation its weight is 1.
  RandomMoe only = m.permuted({2});
  only.n_expert = 1;
  auto y1 = run_moe(only, 1, x, T, 1);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y[i], y1[i]);
}

TEST(MoeFfn, ObserverSeesEveryRoutingDecision) {
  struct Counter : RoutingObserver {
    int tokens = 0, assignments = 0;
    void on_route(const RoutingEvent& ev) override {
      tokens += ev.n_tokens;
      for (int t = 0; t < ev.n_tokens; ++t) assignments += ev.n_used[t];
    }
  } obs;
  RandomMoe m(32, 16, 4, 9);
  ThreadPool pool(1);
  Exec ex{reference_kernels(), pool};
  MoeWeights w = m.weights();
  MoeScratch s;
  s.reserve(config_for(m, 2), w, 3, 2);
  auto x = random_x(3, 32, 10);
  std::vector<float> y(x.size());
  moe_ffn_forward(ex, w, RouterSpec{}, 2, RoutingControl{}, 0, x.data(), 3, 32, y.data(), s, &obs);
  EXPECT_EQ(obs.tokens, 3);
  EXPECT_EQ(obs.assignments, 6);
}
