// Perplexity and bits per byte of a token sequence, evaluated in sliding windows of the context length.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

namespace moe {

class Context;

struct PerplexityResult {
  double nll_nats = 0;     // total negative log-likelihood of the scored tokens
  int64_t n_scored = 0;    // tokens scored (every token after the first position)
  double ppl() const;      // exp(nll / n_scored)
  double bits_per_byte(int64_t n_bytes) const;  // nll / ln 2 / bytes
};

// Scores `tokens` (the first one is context only: usually BOS). Windows of `window` tokens advance by
// `stride`; each token is scored once, with up to window-1 tokens of context. progress(done, total).
PerplexityResult evaluate_perplexity(Context& ctx, std::span<const int32_t> tokens, int window, int stride,
                                     const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace moe
