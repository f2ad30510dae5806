#include "model/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace moe {

GenerateStats generate(Context& ctx, Sampler& sampler, std::span<const int32_t> prompt, int n_predict,
                       std::vector<int32_t>& history, const std::function<bool(int32_t)>& on_token,
                       const std::function<bool(int32_t)>& is_eog) {
  using clock = std::chrono::steady_clock;
  GenerateStats st;
  if (prompt.empty()) throw UsageError("empty prompt: give at least one token");
  const int n_vocab = ctx.config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  bool cut = false;
  if (ctx.n_past() + static_cast<int64_t>(prompt.size()) + n_predict > ctx.n_ctx()) {
    n_predict = std::max<int>(0, ctx.n_ctx() - ctx.n_past() - static_cast<int>(prompt.size()));
    cut = true;
  }

  auto t0 = clock::now();
  ctx.decode(prompt, logits.data(), false);
  history.insert(history.end(), prompt.begin(), prompt.end());
  st.n_prompt = static_cast<int>(prompt.size());
  auto t1 = clock::now();
  st.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

  bool stopped_by_caller = false;
  for (int i = 0; i < n_predict; ++i) {
    const int32_t id = sampler.sample(logits, history);
    history.push_back(id);
    if (is_eog && is_eog(id)) {
      st.stopped_at_eog = true;
      ++st.n_generated;
      break;
    }
    ++st.n_generated;
    if (!on_token(id)) {
      stopped_by_caller = true;
      break;
    }
    if (i + 1 < n_predict) ctx.decode(std::span<const int32_t>(&id, 1), logits.data(), false);
  }
  st.stopped_at_context = cut && !st.stopped_at_eog && !stopped_by_caller;
  st.gen_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return st;
}

}  // namespace moe
