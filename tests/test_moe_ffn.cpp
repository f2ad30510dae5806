// MoE layer equivalences (MegaBlocks-style steps tested one by one): dispatch plan, one expert == dense FFN,
// relabelling experts changes nothing, batch == single tokens, 1 thread == N threads.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <span>

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

// A store that pins at most `cap` experts at a time (as a cache under a small memory budget does), so the layer
// must run its expert GEMMs in chunks.
class SmallStore final : public ExpertStore {
 public:
  SmallStore(const MoeWeights& w, const Exec& ex, int cap) : inner_({w.experts()}, ex), cap_(cap) {}
  int acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) override {
    EXPECT_FALSE(pinned_) << "acquire without release";
    pinned_ = true;
    ++calls;
    return inner_.acquire(layer, experts.first(std::min<size_t>(experts.size(), static_cast<size_t>(cap_))), out);
  }
  void release(int) override { pinned_ = false; }
  int capacity_experts(int) const override { return cap_; }
  int calls = 0;

 private:
  ResidentExpertStore inner_;
  int cap_;
  bool pinned_ = false;
};

// cap > 0: a store that pins at most cap experts at once.
std::vector<float> run_moe(const RandomMoe& m, int k, const std::vector<float>& x, int n_tokens, int threads,
                           const RoutingControl& ctl = {}, const RouterSpec& spec = {}, int cap = 0,
                           const KernelSet* kernels = nullptr) {
  ThreadPool pool(threads);
  Exec ex{kernels ? *kernels : reference_kernels(), pool};
  MoeWeights w = m.weights();
  MoeScratch s;
  s.reserve(w, spec, m.n_embd, n_tokens, std::max(k, ctl.max_experts_per_token(m.n_expert, k)));
  std::vector<float> y(x.size());
  ResidentExpertStore resident({w.experts()}, ex);
  SmallStore small(w, ex, cap);
  ExpertStore& store = cap > 0 ? static_cast<ExpertStore&>(small) : resident;
  const MoeLayerSpec ls{spec, {}, k};
  moe_ffn_forward(ex, w, store, ls, ctl, 0, x.data(), n_tokens, m.n_embd, y.data(), s, nullptr);
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
  p.reserve(4, 3, 2);
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
  EXPECT_EQ(p.slot_row, (std::vector<int32_t>{3, 0, 1, -1, 4, 2}));
}

TEST(Dispatch, PlanInvariantsOnRandomRoutings) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int E = 1 + static_cast<int>(rng() % 9), K = 1 + static_cast<int>(rng() % 4), T = static_cast<int>(rng() % 13);
    std::vector<int32_t> ids(static_cast<size_t>(T * K)), used(static_cast<size_t>(T));
    for (int t = 0; t < T; ++t) {
      used[t] = static_cast<int32_t>(rng() % (K + 1));
      for (int j = 0; j < K; ++j) ids[t * K + j] = static_cast<int32_t>(rng() % (E + 2));  // some null ids
    }
    DispatchPlan p;
    p.reserve(E, 13, K);
    p.build(ids.data(), used.data(), T, K, E);
    int valid = 0;
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < K; ++j) {
        const int r = p.slot_row[t * K + j];
        const bool real = j < used[t] && ids[t * K + j] < E;
        valid += real;
        ASSERT_EQ(r >= 0, real);
        if (real) {
          ASSERT_EQ(p.row_slot[r], t * K + j);  // slot -> row -> slot
          ASSERT_EQ(p.row_token[r], t);
          ASSERT_GE(r, p.offset[ids[t * K + j]]);  // the row lies in its expert's range
          ASSERT_LT(r, p.offset[ids[t * K + j] + 1]);
        }
      }
    ASSERT_EQ(p.n_rows, valid);
    ASSERT_EQ(p.offset[0], 0);
    for (int e = 0; e < E; ++e) {
      ASSERT_EQ(p.offset[e + 1] - p.offset[e], p.count[e]);
      for (int r = p.offset[e] + 1; r < p.offset[e + 1]; ++r) ASSERT_LT(p.row_slot[r - 1], p.row_slot[r]);  // token order
    }
    for (size_t i = 0; i < p.active.size(); ++i) ASSERT_GT(p.count[p.active[i]], 0);
  }
}

TEST(Dispatch, GatherThenCombineWithUnitWeightsIsTheIdentity) {
  // One slot per token, weight 1: combine(gather(x)) == x for any routing.
  const int T = 7, E = 3, D = 5;
  std::vector<int32_t> ids = {2, 0, 1, 2, 2, 0, 1}, used(T, 1);
  std::vector<float> w(T, 1.0f), x(T * D);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.25f - 3.0f;
  DispatchPlan p;
  p.reserve(E, T, 1);
  p.build(ids.data(), used.data(), T, 1, E);
  std::vector<float> rows(T * D, -1.0f), y(T * D, 99.0f);
  gather_rows(p, reinterpret_cast<const uint8_t*>(x.data()), sizeof(float) * D, 0, p.n_rows,
              reinterpret_cast<uint8_t*>(rows.data()));
  combine_rows(p, w.data(), used.data(), 1, rows.data(), D, 0, T, 0, D, y.data());
  EXPECT_EQ(y, x);
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
  s.reserve(w, RouterSpec{}, 32, 3, 2);
  auto x = random_x(3, 32, 10);
  std::vector<float> y(x.size());
  ResidentExpertStore store({w.experts()}, ex);
  moe_ffn_forward(ex, w, store, MoeLayerSpec{{}, {}, 2}, RoutingControl{}, 0, x.data(), 3, 32, y.data(), s, &obs);
  EXPECT_EQ(obs.tokens, 3);
  EXPECT_EQ(obs.assignments, 6);
}

TEST(MoeFfn, ExpertsInChunksEqualAllAtOnce) {
  // A store that can pin only 1, 2 or 3 experts at a time gives bit-identical outputs (prefill under a budget).
  RandomMoe m(64, 32, 8, 13);
  const int T = 11;
  auto x = random_x(T, m.n_embd, 14);
  const auto whole = run_moe(m, 3, x, T, 2);
  for (int cap : {1, 2, 3}) EXPECT_EQ(run_moe(m, 3, x, T, 2, {}, {}, cap), whole) << "capacity " << cap;
  const auto whole_simd = run_moe(m, 3, x, T, 2, {}, {}, 0, &simd_kernels());
  EXPECT_EQ(run_moe(m, 3, x, T, 2, {}, {}, 2, &simd_kernels()), whole_simd);
}
