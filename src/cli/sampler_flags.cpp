#include "cli/sampler_flags.h"

#include "cli/command.h"

namespace moe::cli {

void add_sampler_flags(CLI::App& app, SamplerParams& sp) {
  const char* g = "Sampling";
  app.add_option("--temp", sp.temperature, "temperature (0: greedy)")->check(NonNegative)->group(g);
  app.add_option("--top-k", sp.top_k, "sample from the k most likely tokens (0: off)")->check(NonNegative)->group(g);
  app.add_option("--top-p", sp.top_p, "nucleus sampling threshold (1: off)")->check(CLI::Range(0.0, 1.0))->group(g);
  app.add_option("--min-p", sp.min_p, "drop tokens below min-p x the best probability (0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->group(g);
  app.add_option("--repeat-penalty", sp.repeat_penalty, "penalty for recent tokens (1: off)")->check(Positive)->group(g);
  app.add_option("--repeat-last-n", sp.repeat_last_n, "how many recent tokens the penalty sees")
      ->check(NonNegative)
      ->group(g);
  app.add_option("--seed", sp.seed, "random seed (same seed, same text)")->group(g);
}

}  // namespace moe::cli
