#include "model/sampling.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moe {

int32_t argmax(std::span<const float> x) {
  int32_t best = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = static_cast<int32_t>(i);
  return best;
}

Sampler::Sampler(const SamplerParams& p, int n_vocab) : p_(p), state_(p.seed ^ 0x9E3779B97F4A7C15ull) {
  if (!(p.temperature >= 0.f) || !std::isfinite(p.temperature)) throw UsageError("--temp must be >= 0");
  if (p.top_k < 0) throw UsageError("--top-k must be >= 0");
  if (!(p.top_p > 0.f && p.top_p <= 1.f)) throw UsageError("--top-p must be in (0, 1]");
  if (!(p.min_p >= 0.f && p.min_p < 1.f)) throw UsageError("--min-p must be in [0, 1)");
  if (!(p.repeat_penalty > 0.f)) throw UsageError("--repeat-penalty must be > 0");
  if (p.repeat_last_n < 0) throw UsageError("--repeat-last-n must be >= 0");
  cand_.reserve(static_cast<size_t>(n_vocab));
  work_.resize(static_cast<size_t>(n_vocab));
  probs_.reserve(static_cast<size_t>(n_vocab));
}

// splitmix64: small, well-mixed, and fully specified here.
double Sampler::uniform() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const size_t n = logits.size();
  std::copy(logits.begin(), logits.end(), work_.begin());
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    const size_t from = history.size() > static_cast<size_t>(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    // Each distinct recent token is penalised once.
    for (size_t i = from; i < history.size(); ++i) {
      const int32_t id = history[i];
      if (id < 0 || static_cast<size_t>(id) >= n) continue;
      bool seen = false;
      for (size_t j = from; j < i && !seen; ++j) seen = history[j] == id;
      if (seen) continue;
      float& l = work_[static_cast<size_t>(id)];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature == 0.0f) return argmax(std::span<const float>(work_.data(), n));

  cand_.clear();
  for (size_t i = 0; i < n; ++i) cand_.push_back({static_cast<int32_t>(i), work_[i]});
  auto better = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
    std::nth_element(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), better);
    cand_.resize(static_cast<size_t>(p_.top_k));
  }
  float l_max = cand_[0].logit;
  for (const Cand& c : cand_) l_max = std::max(l_max, c.logit);
  // top-p and min-p both keep a prefix of the candidates sorted by logit, so only that prefix needs sorting:
  // the whole vocabulary (top-k off, as OpenAI-style requests send) would cost a sort of ~10^5 entries per token.
  // top-p's probabilities are at temperature 1 over all candidates (as llama.cpp's samplers see them), so their
  // normaliser is summed before anything is dropped.
  double norm = 0;
  if (p_.top_p < 1.0f)
    for (const Cand& c : cand_) norm += std::exp(static_cast<double>(c.logit) - l_max);
  if (p_.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  l_i - l_max >= log(min_p). min-p runs after top-p, and both keep prefixes, so
    // applying it first changes nothing but the work.
    const double threshold = std::log(p_.min_p);
    auto cut = std::partition(cand_.begin(), cand_.end(),
                              [&](const Cand& c) { return static_cast<double>(c.logit) - l_max >= threshold; });
    cand_.resize(static_cast<size_t>(cut - cand_.begin()));
  }
  // Nothing truncates and top-k is off (OpenAI's defaults): draw over the whole vocabulary in id order, no sort.
  const bool no_truncation = p_.top_p >= 1.0f && p_.min_p <= 0.0f && cand_.size() == n;
  size_t sorted = no_truncation ? 0 : std::min<size_t>(cand_.size(), p_.top_p < 1.0f ? 64 : cand_.size());
  for (; !no_truncation;) {
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<long>(sorted), cand_.end(), better);
    if (p_.top_p >= 1.0f) break;
    double cum = 0;
    size_t k = 0;
    while (k < sorted && cum < p_.top_p) cum += std::exp(static_cast<double>(cand_[k++].logit) - l_max) / norm;
    if (cum >= p_.top_p || sorted == cand_.size()) {
      cand_.resize(k);
      break;
    }
    sorted = std::min(cand_.size(), sorted * 8);  // the prefix did not reach top_p yet: sort a longer one
  }
  std::vector<double>& pr = probs_;
  // Temperature, then draw.
  const double mx = no_truncation ? l_max : cand_[0].logit;
  double sum = 0;
  pr.resize(cand_.size());
  for (size_t i = 0; i < cand_.size(); ++i) sum += pr[i] = std::exp((cand_[i].logit - mx) / p_.temperature);
  double r = uniform() * sum;
  for (size_t i = 0; i < cand_.size(); ++i) {
    r -= pr[i];
    if (r < 0) return cand_[i].id;
  }
  return cand_.back().id;
}

}  // namespace moe
