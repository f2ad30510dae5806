#include "core/score_windows.h"

#include <algorithm>

#include "core/error.h"

namespace moe {

std::vector<ScoreWindow> score_windows(int64_t n, int64_t span, int64_t stride) {
  if (span < 1 || stride < 1 || stride > span) throw UsageError("evaluation stride must be in [1, window]");
  std::vector<ScoreWindow> w;
  int64_t scored = 0;  // targets [1, scored] are done
  for (int64_t begin = 0; scored < n - 1; begin += stride) {
    const int64_t last = std::min(begin + span, n - 1);
    w.push_back({begin, scored + 1, last});
    scored = last;
  }
  return w;
}

}  // namespace moe
