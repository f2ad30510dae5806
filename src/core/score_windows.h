// Sliding-window scoring plan shared by `moe perplexity` (model/perplexity) and training's held-out evaluation
// (train/evaluate), so both score a text alike: every token of [1, n) is predicted exactly once, by the first
// window that holds it with the most context.
#pragma once
#include <cstdint>
#include <vector>

namespace moe {

struct ScoreWindow {
  int64_t begin;  // first input token; inputs are tokens [begin, begin + span)
  int64_t first;  // targets first..last (inclusive) are scored in this window; each is predicted from the
  int64_t last;   // inputs before it, so target t uses row t - 1 - begin
};

// Windows of `span` inputs that advance by `stride` (1 <= stride <= span) over n tokens (n >= 2: else none).
std::vector<ScoreWindow> score_windows(int64_t n, int64_t span, int64_t stride);

}  // namespace moe
