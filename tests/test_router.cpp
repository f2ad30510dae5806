// Router semantics: softmax/sigmoid, top-k with the lower-id tie rule, renormalisation, scaling, group-limited
// routing, null experts, and the run-time controls (ban, force, top-k override, adaptive k).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "moe/router.h"

using namespace moe;

namespace {

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> weights;
  std::vector<float> probs;
};

Routed route(const RouterSpec& spec, int k, std::vector<float> logits, const RoutingControl& ctl = {}, int layer = 0,
             const float* bias = nullptr) {
  const int n_expert = static_cast<int>(logits.size()) - spec.n_null;
  Routed r;
  r.probs.resize(logits.size());
  std::vector<float> scratch(logits.size() + 2 * spec.n_group + 8);
  std::vector<int32_t> ids(logits.size());
  std::vector<float> w(logits.size());
  int n = route_token(spec, k, n_expert, logits.data(), bias, ctl, layer, r.probs.data(), scratch.data(), ids.data(), w.data());
  r.ids.assign(ids.begin(), ids.begin() + n);
  r.weights.assign(w.begin(), w.begin() + n);
  return r;
}

}  // namespace

TEST(Router, SoftmaxTopKRenormalised) {
  RouterSpec s;
  auto r = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f});
  ASSERT_EQ(r.ids, (std::vector<int32_t>{1, 2}));
  float p1 = std::exp(2.0f), p2 = std::exp(1.0f);
  EXPECT_NEAR(r.weights[0], p1 / (p1 + p2), 1e-6);
  EXPECT_NEAR(r.weights[1], p2 / (p1 + p2), 1e-6);
  EXPECT_NEAR(std::accumulate(r.probs.begin(), r.probs.end(), 0.0), 1.0, 1e-6);
}

TEST(Router, WithoutRenormalisationWeightsAreProbabilities) {
  RouterSpec s;
  s.norm_topk = false;
  auto r = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f});
  EXPECT_FLOAT_EQ(r.weights[0], r.probs[1]);
  EXPECT_FLOAT_EQ(r.weights[1], r.probs[2]);
}

TEST(Router, TiesGoToTheLowerExpertId) {
  RouterSpec s;
  auto r = route(s, 3, {1.0f, 5.0f, 5.0f, 1.0f, 5.0f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{1, 2, 4}));
  r = route(s, 2, {3.0f, 3.0f, 3.0f, 3.0f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1}));
}

TEST(Router, ScaleAndSigmoid) {
  RouterSpec s;
  s.gating = Gating::Sigmoid;
  s.norm_topk = false;
  s.weights_scale = 2.5f;
  auto r = route(s, 1, {0.0f, 1.0f});
  EXPECT_EQ(r.ids[0], 1);
  EXPECT_NEAR(r.weights[0], 2.5f / (1.0f + std::exp(-1.0f)), 1e-6);
}

TEST(Router, SelectionBiasChangesChoiceNotWeight) {
  RouterSpec s;
  s.norm_topk = false;
  std::vector<float> bias = {0.0f, 0.0f, 1.0f};
  auto r = route(s, 1, {0.0f, 1.0f, 0.5f}, {}, 0, bias.data());
  EXPECT_EQ(r.ids[0], 2);
  EXPECT_FLOAT_EQ(r.weights[0], r.probs[2]);
}

TEST(Router, GroupLimitedRoutingKeepsTheBestGroups) {
  RouterSpec s;
  s.n_group = 2;
  s.n_group_used = 1;
  // group 0 = {0,1}, group 1 = {2,3}; expert 0 is the single best but group 1 has the better top-2 sum.
  auto r = route(s, 2, {3.0f, -5.0f, 2.5f, 2.5f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3}));
}

TEST(Router, BannedExpertIsNeverSelectedAndTheNextBestTakesItsPlace) {
  RouterSpec s;
  RoutingControl c;
  c.banned = {{0, 1, 0, 0}};
  auto r = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f}, c);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 0}));
  // Other layers are unaffected.
  auto r1 = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f}, c, 1);
  EXPECT_EQ(r1.ids, (std::vector<int32_t>{1, 2}));
}

TEST(Router, ForcedExpertIsAddedWithItsOwnRouterWeight) {
  RouterSpec s;
  s.norm_topk = false;
  RoutingControl c;
  c.forced = {{0, 0, 0, 1}};
  auto r = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f}, c);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FLOAT_EQ(r.weights[2], r.probs[3]);
  EXPECT_EQ(c.max_experts_per_token(4, 2), 3);
  // Forcing an expert that is already selected changes nothing.
  c.forced = {{0, 1, 0, 0}};
  EXPECT_EQ(route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f}, c).ids, (std::vector<int32_t>{1, 2}));
}

TEST(Router, TopKOverride) {
  RouterSpec s;
  RoutingControl c;
  c.top_k = 3;
  auto r = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f}, c);
  EXPECT_EQ(r.ids.size(), 3u);
  c.top_k = 1;
  r = route(s, 2, {0.1f, 2.0f, 1.0f, -1.0f}, c);
  ASSERT_EQ(r.ids.size(), 1u);
  EXPECT_FLOAT_EQ(r.weights[0], 1.0f);
}

TEST(Router, AdaptiveThresholdDropsWeakExpertsAndKeepsTheBest) {
  RouterSpec s;
  RoutingControl c;
  c.min_weight = 0.3f;
  // weights over the top-3 of {4, 2, 1.9}: ~0.79, 0.107, 0.097 -> only the best survives
  auto r = route(s, 3, {4.0f, 2.0f, 1.9f, -3.0f}, c);
  ASSERT_EQ(r.ids, (std::vector<int32_t>{0}));
  EXPECT_FLOAT_EQ(r.weights[0], 1.0f);
  // Confident and unconfident tokens get different counts.
  auto flat = route(s, 3, {1.0f, 1.0f, 1.0f, 1.0f}, c);
  EXPECT_EQ(flat.ids.size(), 3u);
}

TEST(Router, AdaptiveCumulativeProbability) {
  RouterSpec s;
  RoutingControl c;
  c.top_p = 0.5f;
  auto r = route(s, 4, {3.0f, 1.0f, 0.0f, 0.0f}, c);  // p0 ~ 0.84 >= 0.5
  EXPECT_EQ(r.ids.size(), 1u);
  c.top_p = 0.95f;
  r = route(s, 4, {3.0f, 1.0f, 0.0f, 0.0f}, c);  // needs p0 + p1 ~ 0.95
  EXPECT_GE(r.ids.size(), 2u);
}

TEST(Router, NullExpertsAreSelectableAndStayInTheNormalisation) {
  RouterSpec s;
  s.n_null = 2;
  // 3 real experts + 2 null; the best logit belongs to null expert id 3.
  auto r = route(s, 2, {1.0f, 0.0f, 0.0f, 2.0f, -1.0f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{3, 0}));
  EXPECT_NEAR(r.weights[0] + r.weights[1], 1.0f, 1e-6);
}

TEST(Router, BalancedGroupsTakeEqualExpertsFromEveryGroup) {
  RouterSpec s;
  s.n_group = 2;
  s.group_balanced = true;
  // group 0 = {0,1,2}, group 1 = {3,4,5}; plain top-2 would take 0 and 1, MoGE takes the best of each group.
  auto r = route(s, 2, {5.0f, 4.0f, 0.0f, 1.0f, 0.5f, 0.0f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 3}));
  r = route(s, 4, {5.0f, 4.0f, 0.0f, 1.0f, 0.5f, 0.0f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1, 3, 4}));
}
