// `moe synth`: write a random-weight GGUF of any shape and weight type.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/common.h"
#include "core/error.h"
#include "model/model_info.h"
#include "core/thread_pool.h"
#include "experts/expert_stats.h"
#include "model/synth.h"
#include "model/synth_routing.h"

namespace moe::cli {

int cmd_synth(int argc, char** argv) {
  CLI::App app{"Write a random-weight GGUF model of any shape and type (for tests and benchmarks)", "synth"};
  SynthSpec s;
  std::string type = "f32", embd_type, out;
  int threads = 0;
  app.add_option("--arch", s.arch, "qwen3moe | qwen2moe | olmoe | llama | gpt-oss | smallthinker | deepseek2 | glm4moe")
      ->check(CLI::IsMember({"qwen3moe", "qwen2moe", "olmoe", "llama", "gpt-oss", "smallthinker", "deepseek2", "glm4moe"}));
  app.add_option("--window", s.window,
                 "gpt-oss: sliding window (required); smallthinker: > 0 writes the sliding_window switch (NoPE layers 0, 4, ...)")
      ->check(NonNegative);
  app.add_option("--swa-period", s.swa_period, "period of sliding-window layers (0: the architecture's default)")
      ->check(NonNegative);
  app.add_option("--sink-std", s.sink_std, "gpt-oss: standard deviation of the attention sink logits")
      ->check(NonNegative);
  app.add_option("--layers", s.layers, "transformer blocks")->check(Positive);
  app.add_option("--hidden", s.hidden, "hidden size")->check(Positive);
  app.add_option("--heads", s.heads, "attention heads")->check(Positive);
  app.add_option("--kv-heads", s.kv_heads, "key/value heads")->check(Positive);
  app.add_option("--head-dim", s.head_dim, "head size (0: hidden / heads)")->check(NonNegative);
  app.add_option("--experts", s.experts, "routed experts per layer (0: dense, llama only)")->check(NonNegative);
  app.add_option("--top-k", s.top_k, "experts per token")->check(Positive);
  app.add_option("--expert-ffn", s.expert_ffn, "expert FFN width")->check(Positive);
  app.add_option("--ffn", s.ffn, "dense FFN width (0: 4 x hidden)")->check(NonNegative);
  app.add_option("--shared-ffn", s.shared_ffn, "shared expert width for qwen2moe (0: expert FFN)")->check(NonNegative);
  app.add_option("--vocab", s.vocab, "synthetic byte-level BPE vocabulary size")->check(CLI::Range(259, 65795));
  app.add_option("--vocab-from", s.vocab_from, "copy the tokenizer from this GGUF instead");
  app.add_option("--ctx", s.ctx, "context length stored in the file")->check(Positive);
  app.add_option("--type", type, "weight type of attention and expert matrices (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, ...; mxfp4: experts, the rest q8_0)");
  app.add_option("--embd-type", embd_type, "type of token embedding and output head (default: as --type)");
  app.add_flag("--tied", s.tied, "no output.weight: the head reuses the embedding");
  app.add_option("--std", s.std, "standard deviation of the weights")->check(Positive);
  app.add_option("--rope-theta", s.rope_theta, "RoPE base")->check(Positive);
  app.add_option("--seed", s.seed, "random seed");
  // deepseek2 / glm4moe shape
  DeepseekSynth& d = s.ds;
  app.add_option("--q-lora", d.q_lora, "deepseek2: q low-rank (0: plain attn_q)")->check(CLI::NonNegativeNumber);
  app.add_option("--kv-lora", d.kv_lora, "deepseek2: KV latent rank")->check(CLI::PositiveNumber);
  app.add_option("--rope-dim", d.rope_dim, "deepseek2/glm4moe: rotary dims per head (0: 32 / half the head)")->check(CLI::NonNegativeNumber);
  app.add_option("--nope-dim", d.nope_dim, "deepseek2: non-rotary q/k dims per head")->check(CLI::PositiveNumber);
  app.add_option("--v-head-dim", d.v_head_dim, "deepseek2: value head size")->check(CLI::PositiveNumber);
  app.add_flag("--kv-b", d.kv_b, "deepseek2: legacy single attn_kv_b instead of attn_k_b/attn_v_b");
  app.add_option("--dense-layers", d.dense_layers, "deepseek2/glm4moe: leading dense blocks")->check(CLI::NonNegativeNumber);
  app.add_option("--shared-experts", d.shared_experts, "deepseek2/glm4moe: shared experts")->check(CLI::NonNegativeNumber);
  app.add_option("--expert-groups", d.groups, "deepseek2/glm4moe: expert groups (group-limited routing)")->check(CLI::PositiveNumber);
  app.add_option("--groups-used", d.groups_used, "deepseek2/glm4moe: groups each token may use")->check(CLI::PositiveNumber);
  app.add_option("--routed-scale", d.routed_scale, "deepseek2/glm4moe: routed expert weight scale")->check(CLI::PositiveNumber);
  app.add_option("--yarn-factor", d.yarn_factor, "deepseek2/gpt-oss: YaRN rope scaling factor (0: none)")->check(CLI::NonNegativeNumber);
  app.add_option("--yarn-orig-ctx", d.yarn_orig_ctx, "deepseek2/gpt-oss: YaRN original context (0: ctx / factor)")->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", threads, "threads (0: all)");
  std::string routing_from;
  int routing_rounds = 4, routing_tokens = 512;
  double routing_reuse = 0;
  app.add_option("--routing-from", routing_from,
                 "stats.json of `moe profile` on a trained model: routers reproduce its per-layer expert popularity")
      ->check(CLI::ExistingFile);
  app.add_option("--routing-rounds", routing_rounds, "calibration rounds for --routing-from")->capture_default_str()->check(CLI::Range(0, 20));
  app.add_option("--routing-tokens", routing_tokens, "random tokens per calibration round")->capture_default_str()->check(CLI::Range(16, 8192));
  app.add_option("--routing-reuse", routing_reuse, "with --routing-from: share of a token's experts that the "
                 "previous token also used (moe cache-sim reports it for a trace; 0: as the random model gives)")
      ->capture_default_str()->check(CLI::Range(0.0, 0.95));
  app.add_option("--routing-share", s.routing_share, "norm of the common routing direction in token embeddings, "
                 "relative to their random part")->capture_default_str()->check(CLI::Range(0.05, 10.0));
  app.add_option("-o,--out", out, "output GGUF file")->required();
  return run_command(app, argc, argv, [&] {
    auto parse_type = [](const std::string& name, const char* flag) {
      auto t = dtype_from_name(name);
      if (!t || !dtype_info(*t).computable || *t == DType::Q8_K)
        throw UsageError(std::string(flag) + ": unknown or unsupported weight type '" + name + "'");
      return *t;
    };
    s.type = parse_type(type, "--type");
    const DType embd_default = s.type == DType::MXFP4 ? DType::Q8_0 : s.type;  // MXFP4 is for experts only
    s.embd_type = embd_type.empty() ? embd_default : parse_type(embd_type, "--embd-type");
    if (!routing_from.empty()) {
      if (s.experts <= 0) throw UsageError("--routing-from needs a model with experts");
      const ExpertStatsFile stats = ExpertStatsFile::load(routing_from);
      std::vector<std::vector<double>> measured;  // MoE layers only, all tasks together
      for (size_t l = 0; l < stats.layer_is_moe.size(); ++l) {
        if (!stats.layer_is_moe[l]) continue;
        double tokens = 0;
        std::vector<double> count(static_cast<size_t>(stats.model.n_expert), 0.0);
        for (const TaskStats& t : stats.tasks) {
          if (l >= t.count.size()) continue;
          tokens += static_cast<double>(t.n_tokens);
          for (size_t e = 0; e < count.size() && e < t.count[l].size(); ++e) count[e] += t.count[l][e];
        }
        if (tokens <= 0) throw UsageError(routing_from + ": no tokens were profiled");
        for (double& c : count) c /= tokens;
        measured.push_back(std::move(count));
      }
      s.routing_target = resample_routing_target(measured, stats.top_k, s.layers, s.experts, s.top_k, s.seed);
    }
    const bool tty = isatty(fileno(stderr));
    const std::string written = s.routing_target.empty() ? out : out + ".routing.tmp";
    write_synth_model(s, written, [&](uint64_t done, uint64_t total) {
      if (tty) std::fprintf(stderr, "\rwriting %s: %s / %s", out.c_str(), human_bytes(done).c_str(), human_bytes(total).c_str());
    }, resolve_threads(threads));
    if (tty) std::fprintf(stderr, "\n");
    if (!s.routing_target.empty()) {
      try {
        ThreadPool pool(resolve_threads(threads));
        const RoutingFit fit = calibrate_synth_routing(s, written, pool, routing_rounds, routing_tokens, routing_reuse,
                                                      [&](int r, double err, double reuse) {
          std::fprintf(stderr, "routing calibration round %d: mean |share - target| = %.4f, reuse %.1f%%\n", r, err, 100 * reuse);
        });
        std::fprintf(stderr, "routing: %d tokens, mean |share - target| %.4f, max %.4f, consecutive-token expert reuse %.1f%% "
                     "(independent tokens would give %.1f%%)\n", fit.tokens, fit.mean_abs_error, fit.max_abs_error,
                     100.0 * fit.reuse, 100.0 * fit.reuse_floor);
        std::filesystem::rename(written, out);
      } catch (...) {
        std::error_code ec;
        std::filesystem::remove(written, ec);
        throw;
      }
    }
    std::fprintf(stderr, "wrote %s\n", out.c_str());
    return 0;
  });
}

}  // namespace moe::cli
