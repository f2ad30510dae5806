// The generation loop shared by `moe run`, `moe chat` and later the server: prompt in batches, then
// one-token decodes with sampling, streaming each token to a callback; timings for the summary line.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/context.h"
#include "model/sampling.h"

namespace moe {

struct GenerateStats {
  int n_prompt = 0, n_generated = 0;
  double prompt_seconds = 0, gen_seconds = 0;
  bool stopped_at_eog = false;
  bool stopped_at_context = false;  // n_predict was cut short because the context (n_ctx) was full
};

// Appends `prompt` to ctx, then samples up to n_predict tokens. on_token(id) is called for each generated token
// and may return false to stop. is_eog(id) marks end-of-generation tokens (not passed to on_token); null: none.
// `history` receives prompt + generated ids (it may already hold earlier turns: penalties see them).
GenerateStats generate(Context& ctx, Sampler& sampler, std::span<const int32_t> prompt, int n_predict,
                       std::vector<int32_t>& history, const std::function<bool(int32_t)>& on_token,
                       const std::function<bool(int32_t)>& is_eog);

}  // namespace moe
