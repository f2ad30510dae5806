#include "moe/router.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"

namespace moe {

int RoutingControl::max_experts_per_token(int n_expert, int model_k) const {
  int k = top_k > 0 ? top_k : model_k;
  int n_forced = 0;
  for (const auto& layer : forced) {
    int c = 0;
    for (uint8_t f : layer) c += f ? 1 : 0;
    n_forced = std::max(n_forced, c);
  }
  return std::min(n_expert, k + n_forced);
}

namespace {

// Indices of the `k` largest of score[0..n) into out, best first; ties go to the lower index. -inf never wins.
int top_k_indices(const float* score, int n, int k, int32_t* out) {
  int m = 0;
  for (int i = 0; i < n; ++i) {
    if (score[i] == -INFINITY || std::isnan(score[i])) continue;
    // insertion into the sorted prefix; strict > keeps the earlier (lower) index first on ties
    int pos = m < k ? m : k;
    while (pos > 0 && score[i] > score[out[pos - 1]]) --pos;
    if (pos >= k) continue;
    int last = std::min(m, k - 1);
    for (int j = last; j > pos; --j) out[j] = out[j - 1];
    out[pos] = i;
    if (m < k) ++m;
  }
  return m;
}

}  // namespace

void router_softmax(const float* logits, int n, float* probs) {
  if (probs != logits) std::copy(logits, logits + n, probs);
  reference_kernels().softmax(probs, n);
}

int route_token(const RouterSpec& spec, int model_k, int n_expert, const float* logits, const float* selection_bias,
                const RoutingControl& ctl, int layer, float* probs, float* scratch, int32_t* ids, float* weights) {
  const int n_total = n_expert + spec.n_null;
  const int k = std::min(n_total, ctl.top_k > 0 ? ctl.top_k : model_k);

  if (spec.gating == Gating::Softmax || spec.gating == Gating::SoftmaxTopK) {
    // The reference kernel: routing must not depend on the kernel set (ids are compared exactly).
    router_softmax(logits, n_total, probs);
  } else {
    for (int i = 0; i < n_total; ++i) probs[i] = 1.0f / (1.0f + std::exp(-logits[i]));
  }
  // SoftmaxTopK selects by raw logit (the order of the probabilities, without their rounding) and weighs by a
  // softmax over the selected logits; probs still holds the softmax over all experts, for observers and top-p.
  const float* score = spec.gating == Gating::SoftmaxTopK ? logits : probs;

  // Selection scores: probabilities (+ bias), with banned experts removed.
  float* sel = scratch;
  for (int i = 0; i < n_total; ++i) sel[i] = score[i] + (selection_bias && i < n_expert ? selection_bias[i] : 0.0f);
  const uint8_t* banned = (!ctl.banned.empty() && layer < static_cast<int>(ctl.banned.size()) && !ctl.banned[layer].empty())
                              ? ctl.banned[layer].data() : nullptr;
  const uint8_t* forced = (!ctl.forced.empty() && layer < static_cast<int>(ctl.forced.size()) && !ctl.forced[layer].empty())
                              ? ctl.forced[layer].data() : nullptr;
  if (banned)
    for (int i = 0; i < n_expert; ++i)
      if (banned[i]) sel[i] = -INFINITY;

  // Group-limited routing: a group's score is the sum of its two best experts; only the best groups stay.
  if (spec.n_group > 1 && spec.n_null == 0 && !spec.group_balanced) {
    const int per_group = n_expert / spec.n_group;
    float* gscore = scratch + n_total;
    int32_t* gbest = reinterpret_cast<int32_t*>(scratch + n_total + spec.n_group);
    int32_t top2[2];
    for (int g = 0; g < spec.n_group; ++g) {
      int m = top_k_indices(sel + g * per_group, per_group, 2, top2);
      float s = 0.0f;
      for (int j = 0; j < m; ++j) s += sel[g * per_group + top2[j]];
      gscore[g] = m > 0 ? s : -INFINITY;
    }
    int n_keep = top_k_indices(gscore, spec.n_group, spec.n_group_used, gbest);
    for (int g = 0; g < spec.n_group; ++g) {
      bool keep = false;
      for (int j = 0; j < n_keep; ++j) keep |= gbest[j] == g;
      if (!keep)
        for (int i = 0; i < per_group; ++i) sel[g * per_group + i] = -INFINITY;
    }
  }

  int n = 0;
  if (spec.group_balanced && spec.n_group > 1 && spec.n_null == 0 && k % spec.n_group == 0) {
    // MoGE: the best k / n_group experts of every group, groups in order; then best first overall.
    const int per_group = n_expert / spec.n_group, k_g = k / spec.n_group;
    for (int g = 0; g < spec.n_group; ++g) {
      int m = top_k_indices(sel + g * per_group, per_group, k_g, ids + n);
      for (int j = 0; j < m; ++j) ids[n + j] += g * per_group;
      n += m;
    }
    std::stable_sort(ids, ids + n, [&](int32_t a, int32_t b) { return sel[a] > sel[b]; });
  } else {
    n = top_k_indices(sel, n_total, k, ids);
  }

  // Adaptive count: the fewest experts (best first) whose cumulative probability reaches top_p.
  if (ctl.top_p > 0.f && n > 1) {
    double total = 0.0;
    for (int i = 0; i < n_total; ++i) total += probs[i];
    double cum = 0.0;
    int keep = n;
    for (int j = 0; j < n; ++j) {
      cum += probs[ids[j]];
      if (cum >= ctl.top_p * total) {
        keep = j + 1;
        break;
      }
    }
    n = keep;
  }

  if (forced) {
    for (int e = 0; e < n_expert; ++e) {
      if (!forced[e]) continue;
      bool present = false;
      for (int j = 0; j < n; ++j) present |= ids[j] == e;
      if (!present) ids[n++] = e;
    }
  }

  // SoftmaxTopK: the weights are a softmax over the selected logits (sum in double, as ggml's soft_max).
  auto softmax_selected = [&] {
    if (spec.gating != Gating::SoftmaxTopK || n == 0) return;
    for (int j = 0; j < n; ++j) weights[j] = logits[ids[j]];
    router_softmax(weights, n, weights);
  };
  for (int j = 0; j < n; ++j) weights[j] = probs[ids[j]];
  softmax_selected();
  auto normalise = [&] {
    if (!spec.norm_topk) return;
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) sum += weights[j];
    sum = std::max(sum, 6.103515625e-5f);  // as llama.cpp: avoid dividing by ~0
    for (int j = 0; j < n; ++j) weights[j] /= sum;
  };
  normalise();

  // Adaptive count: drop experts whose normalised weight is below the threshold (always keep the best one);
  // the survivors are renormalised when the model renormalises its top-k.
  if (ctl.min_weight > 0.f && n > 1) {
    int m = 1;
    for (int j = 1; j < n; ++j) {
      bool is_forced = forced && ids[j] < n_expert && forced[ids[j]];
      if (weights[j] >= ctl.min_weight || is_forced) {
        ids[m] = ids[j];
        weights[m] = probs[ids[j]];
        ++m;
      }
    }
    weights[0] = probs[ids[0]];
    n = m;
    softmax_selected();
    normalise();
  }

  if (spec.weights_scale != 1.0f)
    for (int j = 0; j < n; ++j) weights[j] *= spec.weights_scale;
  return n;
}

}  // namespace moe
