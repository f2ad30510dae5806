// `moe chat`: interactive multi-turn chat with the model's chat template. Each turn re-renders the whole
// conversation and reuses the KV cache for the longest common token prefix.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "cli/routing_flags.h"
#include "core/error.h"
#include "model/generate.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace moe::cli {

int cmd_chat(int argc, char** argv) {
  CLI::App app{"Chat with a model in the terminal (/reset starts over, /exit or end of input quits)", "chat"};
  std::string path, system;
  int n_predict = 512, threads = 0, n_ctx = 0;
  SamplerParams sp;
  sp.temperature = 0.7f;
  RoutingFlags rf;
  MemoryFlags mf;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--system", system, "system message");
  app.add_option("-n,--n-predict", n_predict, "max tokens per answer")->check(CLI::PositiveNumber);
  app.add_option("--temp", sp.temperature, "temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", sp.top_k, "top-k sampling (0: off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", sp.top_p, "nucleus sampling (1: off)");
  app.add_option("--min-p", sp.min_p, "min-p sampling (0: off)");
  app.add_option("--repeat-penalty", sp.repeat_penalty, "penalty for recent tokens (1: off)");
  app.add_option("--seed", sp.seed, "random seed");
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--ctx", n_ctx, "context length (0: min(4096, trained))")->check(CLI::NonNegativeNumber);
  rf.add_to(app);
  mf.add_to(app);
  return run_command(app, argc, argv, [&] {
    auto model = Model::load(resolve_model_path(path));
    if (!model->file().has("tokenizer.ggml.tokens")) throw UsageError("the model has no tokenizer");
    Tokenizer tok = Tokenizer::from_gguf(model->file());
    ChatFormatter fmt(tok);
    ThreadPool pool(resolve_threads(threads));
    const RoutingControl ctl = rf.build(*model);
    const auto store = mf.make_store(*model, ctl);
    Context ctx(*model, pool, {.n_ctx = n_ctx, .experts = store,
                 .prefetch = !mf.no_prefetch, .cache_type = mf.kv_type()});
    if (ctl.any()) ctx.set_routing(ctl);
    Sampler sampler(sp, model->config().n_vocab);
    const bool interactive = isatty(fileno(stdin));
    std::vector<ChatMessage> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    std::vector<int32_t> in_cache;  // tokens whose K/V are in ctx
    std::string line;
    for (;;) {
      if (interactive) std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line) || line == "/exit") break;
      if (line == "/reset") {
        msgs.resize(system.empty() ? 0 : 1);
        ctx.truncate(0);
        in_cache.clear();
        continue;
      }
      if (line.empty()) continue;
      msgs.push_back({"user", line});
      std::vector<int32_t> ids = fmt.tokenize(msgs, true);
      size_t common = 0;
      while (common < ids.size() && common < in_cache.size() && ids[common] == in_cache[common]) ++common;
      if (common == ids.size()) --common;  // at least one token must be evaluated to get logits
      ctx.truncate(static_cast<int>(common));
      in_cache.assign(ids.begin(), ids.begin() + static_cast<long>(common));
      std::vector<int32_t> history(in_cache);
      StreamDecoder stream(tok, true);
      std::string answer;
      std::span<const int32_t> fresh(ids.data() + common, ids.size() - common);
      if (ctx.n_past() + static_cast<int64_t>(fresh.size()) >= ctx.n_ctx())
        throw UsageError("the conversation no longer fits the context (" + std::to_string(ctx.n_ctx()) +
                         " tokens); /reset or raise --ctx");
      auto st = generate(ctx, sampler, fresh, n_predict, history,
                         [&](int32_t id) {
                           std::string s = stream.push(id);
                           answer += s;
                           std::fwrite(s.data(), 1, s.size(), stdout);
                           std::fflush(stdout);
                           return true;
                         },
                         [&](int32_t id) { return tok.is_eog(id); });
      std::string rest = stream.flush();
      answer += rest;
      std::fwrite(rest.data(), 1, rest.size(), stdout);
      std::printf("\n");
      std::fflush(stdout);
      // The cache now holds the prompt and every generated token except the last one sampled.
      in_cache.assign(history.begin(), history.begin() + ctx.n_past());
      msgs.push_back({"assistant", answer});
      if (interactive)
        std::fprintf(stderr, "[%d tokens, %.1f tok/s]\n", st.n_generated, st.n_generated / std::max(st.gen_seconds, 1e-9));
    }
    return 0;
  });
}

}  // namespace moe::cli
