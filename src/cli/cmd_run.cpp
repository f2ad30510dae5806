// `moe run`: generate from a prompt, streaming to stdout; a timing summary goes to stderr.
#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "core/error.h"
#include "model/generate.h"

namespace moe::cli {

int cmd_run(int argc, char** argv) {
  CLI::App app{"Generate text from a prompt with a GGUF model", "run"};
  std::string path, tokens, kernels = "simd";
  int n_predict = 128, threads = 0, n_ctx = 0;
  bool print_ids = false;
  SamplerParams sp;
  sp.seed = 0;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--tokens", tokens, "prompt as comma-separated token ids");
  app.add_option("-n,--n-predict", n_predict, "tokens to generate")->check(CLI::NonNegativeNumber);
  app.add_option("--temp", sp.temperature, "temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", sp.top_k, "sample from the k most likely tokens (0: off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", sp.top_p, "nucleus sampling threshold (1: off)");
  app.add_option("--min-p", sp.min_p, "drop tokens below min-p x the best probability (0: off)");
  app.add_option("--repeat-penalty", sp.repeat_penalty, "penalty for recent tokens (1: off)");
  app.add_option("--repeat-last-n", sp.repeat_last_n, "how many recent tokens the penalty sees");
  app.add_option("--seed", sp.seed, "random seed (same seed, same text)");
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--ctx", n_ctx, "context length limit (0: min(4096, trained))")->check(CLI::NonNegativeNumber);
  app.add_flag("--print-ids", print_ids, "print the generated token ids space-separated on one line instead of text");
  app.add_option("--kernels", kernels, "kernel set: simd or ref")->check(CLI::IsMember({"simd", "ref"}));
  return run_command(app, argc, argv, [&] {
    if (tokens.empty()) throw UsageError("give a prompt with --tokens");
    auto prompt = parse_id_list(tokens, "--tokens");
    auto model = Model::load(resolve_model_path(path));
    ThreadPool pool(resolve_threads(threads));
    Context ctx(*model, pool, {.n_ctx = n_ctx, .n_batch = 256, .kernels = &kernels_by_name(kernels.c_str())});
    if (static_cast<int>(prompt.size()) > ctx.n_ctx())
      throw UsageError("prompt of " + std::to_string(prompt.size()) + " tokens exceeds the context length " +
                       std::to_string(ctx.n_ctx()) + " (raise --ctx)");
    Sampler sampler(sp, model->config().n_vocab);
    std::vector<int32_t> history;
    std::vector<int32_t> out;
    auto st = generate(ctx, sampler, prompt, n_predict, history,
                       [&](int32_t id) {
                         out.push_back(id);
                         return true;
                       },
                       nullptr);
    if (print_ids) {
      for (size_t i = 0; i < out.size(); ++i) std::printf(i ? " %d" : "%d", out[i]);
      std::printf("\n");
    }
    std::fflush(stdout);
    std::fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s); generated: %d tokens in %.3f s (%.1f tok/s)\n",
                 st.n_prompt, st.prompt_seconds, st.n_prompt / std::max(st.prompt_seconds, 1e-9), st.n_generated,
                 st.gen_seconds, st.n_generated / std::max(st.gen_seconds, 1e-9));
    return 0;
  });
}

}  // namespace moe::cli
