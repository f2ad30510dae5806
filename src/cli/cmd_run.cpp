// `moe run`: generate from a prompt, streaming text to stdout; a timing summary goes to stderr.
#include <cstdio>
#include <optional>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "cli/routing_flags.h"
#include "cli/sampler_flags.h"
#include "core/error.h"
#include "experts/profiler.h"
#include "experts/steering.h"
#include "model/generate.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace moe::cli {

namespace {

// PreMoe task-adaptive retrieval: profile the prompt, pick the nearest stored task, keep its best experts.
void restrict_experts_for_prompt(Context& ctx, const std::string& stats_path, int keep, const std::vector<int32_t>& prompt,
                                 RoutingControl& ctl) {
  const Model& model = ctx.model();
  ExpertStatsFile stats = ExpertStatsFile::load(resolve_stats_path(stats_path));
  stats.check_model(model, stats_path);
  TaskStats query;
  ExpertProfiler prof(model.config(), query, stats.tcess_k, stats.tcess_r, stats.tcess_centered);
  // The match uses the first MoE layer's router logits, which no expert output reaches: profile the prompt with
  // every expert banned, so that no expert is read before the task's own are chosen.
  RoutingControl none;
  none.banned.assign(static_cast<size_t>(model.config().n_layer),
                     std::vector<uint8_t>(static_cast<size_t>(model.config().n_expert), 1));
  ctx.set_routing(none);
  profile_tokens(ctx, prof, prompt, ctx.n_ctx(), -1);
  ctx.set_routing(RoutingControl{});
  ctx.truncate(0);
  const TaskStats& task = nearest_task(stats, query);
  if (keep <= 0) keep = std::max(model.config().n_expert_used, model.config().n_expert / 2);
  restrict_to_task_experts(ctl, stats, task, keep);
  std::fprintf(stderr, "experts: prompt matches task '%s'; keeping %d of %d experts per layer\n", task.name.c_str(), keep,
               model.config().n_expert);
}

}  // namespace

int cmd_run(int argc, char** argv) {
  CLI::App app{"Generate text from a prompt with a GGUF model (default: the bundled model)", "run"};
  std::string path, prompt, prompt_file, tokens, system, kernels = "simd", experts_from;
  int n_predict = 128, threads = 0, n_ctx = 0, experts_keep = 0;
  bool print_ids = false, chat = false, no_special = false, ignore_eos = false;
  SamplerParams sp;
  RoutingFlags rf;
  MemoryFlags mf;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("-p,--prompt", prompt, "prompt text (-: read it from standard input)");
  app.add_option("-f,--file", prompt_file, "read the prompt from this file (-: standard input)");
  app.add_option("--tokens", tokens, "prompt as token ids separated by commas or spaces (instead of -p)");
  app.add_flag("--chat", chat, "wrap the prompt as a user message in the model's chat template");
  app.add_option("--system", system, "system message (with --chat)");
  app.add_option("-n,--n-predict", n_predict, "tokens to generate")->check(NonNegative);
  add_sampler_flags(app, sp);
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--ctx", n_ctx, "context length limit (0: min(4096, trained))")->check(NonNegative);
  app.add_flag("--print-ids", print_ids, "print the generated token ids space-separated on one line instead of text");
  app.add_flag("--no-parse-special", no_special, "treat special-token text in the prompt as plain text");
  app.add_flag("--ignore-eos", ignore_eos, "do not stop at end-of-generation tokens");
  app.add_option("--kernels", kernels, "kernel set: simd or ref")->check(CLI::IsMember({"simd", "ref"}));
  rf.add_to(app);
  mf.add_to(app);
  app.add_option("--experts-from", experts_from, "stats from moe profile: keep the experts of the task nearest to the prompt")
      ->group("Experts");
  app.add_option("--experts-keep", experts_keep, "with --experts-from: experts kept per layer (default: half)")->group("Experts");
  return run_command(app, argc, argv, [&] {
    prompt = resolve_prompt(prompt, prompt_file);
    if (prompt.empty() == tokens.empty())
      throw UsageError("give a prompt with -p TEXT, -f FILE or --tokens IDS (one of them)");
    if (chat && !tokens.empty()) throw UsageError("--chat needs a text prompt (-p)");
    auto model = Model::load(resolve_model_path(path));
    const bool has_vocab = model->file().has("tokenizer.ggml.tokens");
    std::optional<Tokenizer> tok;
    if (has_vocab) tok = Tokenizer::from_gguf(model->file());
    std::vector<int32_t> ids;
    if (!tokens.empty()) {
      ids = parse_id_list(tokens, "--tokens");
    } else {
      if (!tok) throw UsageError("the model has no tokenizer: give --tokens");
      if (chat) {
        std::vector<ChatMessage> msgs;
        if (!system.empty()) msgs.push_back({"system", system});
        msgs.push_back({"user", prompt});
        ids = ChatFormatter(*tok).tokenize(msgs, true);
      } else {
        ids = tok->encode(prompt, true, !no_special);
      }
    }
    if (ids.empty()) throw UsageError("the prompt encodes to no tokens");
    ThreadPool pool(resolve_threads(threads));
    RoutingControl ctl = rf.build(*model);
    const KernelSet& ks = kernels_by_name(kernels.c_str());
    const bool pack = &ks == &simd_kernels();
    std::shared_ptr<ExpertStore> store = mf.make_store(*model, ctl, pack);
    // Task-adaptive retrieval without a budget: experts are read on first use, so only the kept ones are read.
    if (!store && !experts_from.empty()) store = make_lazy_store(*model, pack);
    Context ctx(*model, pool, {.n_ctx = n_ctx, .n_batch = 256, .kernels = &ks, .pack_experts_on_use = mf.pack_experts_on_use(), .experts = store,
                 .prefetch = !mf.no_prefetch, .cache_type = mf.kv_type()});
    if (static_cast<int>(ids.size()) > ctx.n_ctx())
      throw UsageError("prompt of " + std::to_string(ids.size()) + " tokens exceeds the context length " +
                       std::to_string(ctx.n_ctx()) + " (raise --ctx)");
    if (!experts_from.empty()) restrict_experts_for_prompt(ctx, experts_from, experts_keep, ids, ctl);
    if (ctl.any()) ctx.set_routing(ctl);
    Sampler sampler(sp, model->config().n_vocab);
    std::vector<int32_t> history, out;
    std::optional<StreamDecoder> stream;
    if (tok && !print_ids) stream.emplace(*tok, true);
    auto st = generate(ctx, sampler, ids, n_predict, history,
                       [&](int32_t id) {
                         out.push_back(id);
                         if (stream) {
                           std::string s = stream->push(id);
                           std::fwrite(s.data(), 1, s.size(), stdout);
                           std::fflush(stdout);
                         }
                         return true;
                       },
                       (tok && !ignore_eos) ? std::function<bool(int32_t)>([&](int32_t id) { return tok->is_eog(id); })
                                            : std::function<bool(int32_t)>());
    if (stream) {
      std::string s = stream->flush();
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::printf("\n");
    }
    if (print_ids) {
      for (size_t i = 0; i < out.size(); ++i) std::printf(i ? " %d" : "%d", out[i]);
      std::printf("\n");
    }
    std::fflush(stdout);
    std::fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s); generated: %d tokens in %.3f s (%.1f tok/s)",
                 st.n_prompt, st.prompt_seconds, st.n_prompt / std::max(st.prompt_seconds, 1e-9), st.n_generated,
                 st.gen_seconds, st.n_generated / std::max(st.gen_seconds, 1e-9));
    if (model->config().n_expert > 0)
      std::fprintf(stderr, "; experts/token %.2f (model top-%d)", ctx.mean_experts_per_token(), model->config().n_expert_used);
    std::fprintf(stderr, "\n");
    if (st.stopped_at_context)
      std::fprintf(stderr, "stopped after %d of %d tokens: the context of %d tokens is full (raise --ctx)\n",
                   st.n_generated, n_predict, ctx.n_ctx());
    if (store) print_memory_summary(stderr, *store, st.n_prompt + st.n_generated);
    return 0;
  });
}

}  // namespace moe::cli
