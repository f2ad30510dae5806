// The sampler against a plain reference: the whole candidate list sorted, then top-k, top-p, min-p and the draw
// exactly as the header specifies them. The fast sampler sorts only the prefix the truncations keep; same seed,
// same logits must give the same token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "model/sampling.h"

namespace moe {
namespace {

struct Ref {
  SamplerParams p;
  uint64_t state;
  explicit Ref(const SamplerParams& q) : p(q), state(q.seed ^ 0x9E3779B97F4A7C15ull) {}
  double uniform() {  // splitmix64, as documented in sampling.cpp
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
  }
  int32_t sample(const std::vector<float>& logits) {
    std::vector<std::pair<float, int32_t>> c;
    for (size_t i = 0; i < logits.size(); ++i) c.push_back({logits[i], static_cast<int32_t>(i)});
    if (p.top_k == 0 && p.top_p >= 1.0f && p.min_p == 0.0f) return draw(c, *std::max_element(logits.begin(), logits.end()));
    std::sort(c.begin(), c.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < c.size()) c.resize(static_cast<size_t>(p.top_k));
    if (p.top_p < 1.0f) {
      double sum = 0, cum = 0;
      for (auto& x : c) sum += std::exp(static_cast<double>(x.first) - c[0].first);
      size_t k = c.size();
      for (size_t i = 0; i < c.size(); ++i)
        if ((cum += std::exp(static_cast<double>(c[i].first) - c[0].first) / sum) >= p.top_p) {
          k = i + 1;
          break;
        }
      c.resize(k);
    }
    if (p.min_p > 0.0f) {
      size_t k = 1;
      while (k < c.size() && static_cast<double>(c[k].first) - c[0].first >= std::log(p.min_p)) ++k;
      c.resize(k);
    }
    return draw(c, c[0].first);
  }
  // The candidates in the order given; mx: the largest logit.
  int32_t draw(const std::vector<std::pair<float, int32_t>>& c, double mx) {
    std::vector<double> pr;
    double sum = 0;
    for (auto& x : c) sum += pr.emplace_back(std::exp((x.first - mx) / p.temperature));
    double r = uniform() * sum;
    for (size_t i = 0; i < c.size(); ++i)
      if ((r -= pr[i]) < 0) return c[i].second;
    return c.back().second;
  }
};

TEST(Sampling, PrefixSortDrawsWhatTheFullSortDraws) {
  std::mt19937 rng(7);
  const int n_vocab = 5000;
  std::vector<float> logits(n_vocab);
  int cases = 0;
  for (int top_k : {0, 40})
    for (float top_p : {1.0f, 0.999f, 0.95f, 0.5f})
      for (float min_p : {0.0f, 0.05f})  // top-k 0, top-p 1, min-p 0: no truncation, drawn in id order
        for (float temp : {0.3f, 1.0f, 2.5f})
          for (float spread : {0.5f, 3.0f}) {  // flat logits: top-p 0.999 keeps thousands (the prefix grows)
            SamplerParams p{.temperature = temp, .top_k = top_k, .top_p = top_p, .min_p = min_p, .seed = 11u + cases};
            Sampler fast(p, n_vocab);
            Ref ref(p);
            std::normal_distribution<float> nd(0.f, spread);
            for (int draw = 0; draw < 20; ++draw) {
              for (float& l : logits) l = nd(rng);
              logits[static_cast<size_t>(draw * 37 % n_vocab)] = logits[0];  // a tie
              const int32_t want = ref.sample(logits);
              ASSERT_EQ(fast.sample(logits, {}), want)
                  << "top_k " << top_k << " top_p " << top_p << " min_p " << min_p << " temp " << temp;
            }
            ++cases;
          }
}

TEST(Sampling, GreedyAndPenaltiesAndBadParameters) {
  std::vector<float> logits = {0.1f, 2.0f, 2.0f, -1.0f};
  SamplerParams greedy{.temperature = 0.f};
  Sampler g(greedy, 4);
  EXPECT_EQ(g.sample(logits, {}), 1);  // ties go to the lower id
  SamplerParams pen{.temperature = 0.f, .repeat_penalty = 4.0f};
  Sampler s(pen, 4);
  const std::vector<int32_t> hist = {1, 1, 7};  // 7 is out of range: ignored
  EXPECT_EQ(s.sample(logits, hist), 2);
  EXPECT_THROW(Sampler(SamplerParams{.top_p = 0.f}, 4), std::exception);
  EXPECT_THROW(Sampler(SamplerParams{.min_p = 1.f}, 4), std::exception);
  EXPECT_THROW(Sampler(SamplerParams{.temperature = -1.f}, 4), std::exception);
}

}  // namespace
}  // namespace moe
