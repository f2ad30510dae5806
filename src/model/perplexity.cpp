#include "model/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/score_windows.h"
#include "model/context.h"

namespace moe {

double PerplexityResult::ppl() const { return n_scored ? std::exp(nll_nats / static_cast<double>(n_scored)) : 0.0; }

double PerplexityResult::bits_per_byte(int64_t n_bytes) const {
  return n_bytes > 0 ? nll_nats / std::log(2.0) / static_cast<double>(n_bytes) : 0.0;
}

PerplexityResult evaluate_perplexity(Context& ctx, std::span<const int32_t> tokens, int window, int stride,
                                     const std::function<void(int64_t, int64_t)>& progress) {
  if (window < 2) throw UsageError("perplexity window must be at least 2 tokens");
  if (stride < 1 || stride > window - 1) throw UsageError("perplexity stride must be in [1, window - 1]");
  if (window > ctx.n_ctx()) throw UsageError("perplexity window exceeds the context size");
  const int64_t N = static_cast<int64_t>(tokens.size());
  const size_t V = static_cast<size_t>(ctx.config().n_vocab);
  PerplexityResult r;
  if (N < 2) return r;
  std::vector<float> logits(static_cast<size_t>(window) * V);
  for (const ScoreWindow& w : score_windows(N, window - 1, stride)) {
    // The window's tokens end with its last target (decoded too, as before: batch shapes stay the same).
    const int64_t end = std::min<int64_t>(w.begin + window, N);
    ctx.truncate(0);
    ctx.decode(tokens.subspan(static_cast<size_t>(w.begin), static_cast<size_t>(end - w.begin)), logits.data(), true);
    for (int64_t i = w.first; i <= w.last; ++i) {
      const float* row = logits.data() + static_cast<size_t>(i - 1 - w.begin) * V;
      const float mx = *std::max_element(row, row + V);
      double z = 0;
      for (size_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(row[v] - mx));
      r.nll_nats += std::log(z) + mx - row[tokens[static_cast<size_t>(i)]];
      ++r.n_scored;
    }
    if (progress) progress(w.last + 1, N);
  }
  return r;
}

}  // namespace moe
