// `moe train`: train a qwen3moe MoE model from text on the CPU, resume it, or benchmark its throughput.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "train/blas.h"
#include "train/trainer.h"

namespace moe::cli {

namespace {

// OpenBLAS 0.3.21 does not know AMD Zen 5 and falls back to its AVX2 (Haswell) kernels; its AVX-512
// (SkylakeX) kernels run 2-3x faster there. The kernel is chosen when the library loads, so we re-execute
// ourselves once with OPENBLAS_CORETYPE set. MOE_NO_REEXEC=1 or an explicit OPENBLAS_CORETYPE opt out.
void prefer_avx512_blas(int argc, char** argv) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("MOE_NO_REEXEC")) return;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512cd"))
    return;
  const std::string core = train::blas_setup();
  if (core != "Haswell" && core != "Zen") return;
  ::setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  std::vector<char*> args;
  static char moe_name[] = "moe";
  args.push_back(moe_name);
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv("/proc/self/exe", args.data());
  ::unsetenv("OPENBLAS_CORETYPE");  // exec failed: carry on with what we have
#else
  (void)argc;
  (void)argv;
#endif
}

std::string join_command(int argc, char** argv) {
  std::string s = "moe";
  for (int i = 0; i < argc; ++i) {
    s += ' ';
    s += argv[i];
  }
  return s;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  prefer_avx512_blas(argc, argv);
  CLI::App app{"Train a Mixture-of-Experts language model (qwen3moe GGUF) on the CPU", "train"};
  train::TrainConfig cfg;
  train::ModelShape& m = cfg.model;
  train::OptimConfig& o = cfg.optim;
  train::RunOptions run;
  std::string router = "topk", gating = "softmax", resume, export_type = "f32";
  bool untied = false, bench = false;
  int bench_steps = 5, bench_vocab = 4096;
  train::RoutingOptions r;  // explicit routing flags land here and override the preset

  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: last wins
  app.add_option("--train", cfg.train_files, "training text files (read in place)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--vocab", cfg.vocab, "vocabulary GGUF from `moe train-tokenizer` (default: bytes)");
  app.add_option("--out", run.out_dir, "output folder: checkpoint.bin, loss.svg, metrics.jsonl, model.gguf");
  app.add_option("-o,--output", run.export_path, "GGUF file to write at the end (default: OUT/model.gguf)");
  app.add_option("--export-type", export_type, "matrix type of the GGUF: f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  app.add_option("--resume", resume, "continue the run of this checkpoint (its settings are used)");
  app.add_flag("--finish", run.finish_now, "with --resume: no more steps; evaluate and export the checkpoint as it is");
  app.add_option("--router", router, "routing preset: topk, auxfree, moge, null, dts, dense");
  // Model shape.
  app.add_option("--layers", m.n_layer, "transformer blocks");
  app.add_option("--hidden", m.n_embd, "hidden size");
  app.add_option("--heads", m.n_head, "attention heads");
  app.add_option("--kv-heads", m.n_head_kv, "key/value heads");
  app.add_option("--head-dim", m.head_dim, "head size");
  app.add_option("--experts", m.n_expert, "routed experts per layer");
  app.add_option("--top-k", m.n_expert_used, "experts per token");
  app.add_option("--expert-ffn", m.n_ff_exp, "routed expert FFN width");
  app.add_option("--shared-ffn", m.n_ff_shexp, "shared expert FFN width (0: none)");
  app.add_flag("--shared-gate", m.shared_gate, "sigmoid gate on the shared expert");
  app.add_flag("--untied", untied, "separate output head (default: tied to the embedding)");
  app.add_option("--ctx", m.n_ctx, "training sequence length");
  app.add_option("--rope-theta", m.rope_theta, "RoPE base");
  // Routing (override the preset).
  app.add_option("--gating", gating, "router scores: softmax or sigmoid")->check(CLI::IsMember({"softmax", "sigmoid"}));
  app.add_option("--norm-topk", r.norm_topk, "renormalise the selected weights (true/false)");
  app.add_option("--weights-scale", r.weights_scale, "scale of the selected weights");
  app.add_option("--groups", r.n_group, "MoGE: expert groups, top-k/groups experts chosen in each");
  app.add_option("--null-experts", r.n_null, "AdaMoE: null experts (zero output)");
  app.add_option("--aux-alpha", r.aux_alpha, "Switch load-balancing loss coefficient");
  app.add_option("--z-beta", r.z_beta, "router z-loss coefficient");
  app.add_option("--bias-rate", r.bias_rate, "aux-loss-free balancing: per-expert bias step");
  app.add_option("--dts-tau-max", r.dts_tau_max, "EvoMoE gate: starting temperature");
  app.add_option("--dts-tau-min", r.dts_tau_min, "EvoMoE gate: final temperature");
  app.add_option("--dts-decay", r.dts_decay_steps, "EvoMoE gate: steps of the linear temperature decay");
  app.add_option("--dts-hard-step", r.dts_hard_step, "EvoMoE gate: step from which routing is plain top-k");
  app.add_option("--dts-threshold", r.dts_threshold, "EvoMoE gate: activation threshold");
  // Optimisation.
  app.add_option("--steps", o.steps, "optimizer steps");
  app.add_option("--batch", o.batch, "sequences per micro-batch");
  app.add_option("--accum", o.accum, "micro-batches per step (gradient accumulation)");
  app.add_option("--lr", o.lr, "peak learning rate");
  app.add_option("--min-lr", o.min_lr, "final learning rate of the cosine");
  app.add_option("--warmup", o.warmup, "linear warmup steps");
  app.add_option("--wd", o.weight_decay, "AdamW weight decay (matrices only)");
  app.add_option("--beta1", o.beta1, "Adam beta1");
  app.add_option("--beta2", o.beta2, "Adam beta2");
  app.add_option("--clip", o.clip, "gradient-norm clip (0: off)");
  app.add_option("--init-std", o.init_std, "standard deviation of the initial weights");
  app.add_option("--seed", o.seed, "seed of the weights, data order and gate noise");
  // Evaluation, logging, checkpoints.
  app.add_option("--val-fraction", cfg.val_fraction, "held-out tail of every training file");
  app.add_option("--eval-every", cfg.eval_every, "held-out evaluation every N steps (0: only at the end)");
  app.add_option("--eval-tokens", cfg.eval_tokens, "held-out tokens per evaluation (0: all)");
  app.add_option("--eval-text", run.eval_text, "text to report bits per byte on at the end (e.g. WikiText-2 test)");
  app.add_option("--eval-stride", run.eval_stride, "sliding-window stride for --eval-text (0: ctx/2)");
  app.add_option("--log-every", cfg.log_every, "progress line every N steps");
  app.add_option("--save-every", cfg.save_every, "checkpoint every N steps (0: only at the end)");
  app.add_option("--stop-after", run.stop_after, "stop after N steps with a checkpoint, as if killed (for tests)");
  app.add_option("-t,--threads", cfg.threads, "threads (0: all cores)");
  app.add_flag("--quiet", run.quiet, "no progress lines");
  app.add_flag("--bench", bench, "measure training tokens/s on random tokens (no data needed)");
  app.add_option("--bench-steps", bench_steps, "timed steps of --bench");
  app.add_option("--vocab-size", bench_vocab, "vocabulary size of --bench");

  return run_command(app, argc, argv, [&] {
    m.tied = !untied;
    train::apply_router_preset(router, m, o.steps);
    train::RoutingOptions& mr = m.routing;
    auto given = [&](const char* flag) { return app.count(flag) > 0; };
    if (given("--gating")) mr.gating = gating == "sigmoid" ? Gating::Sigmoid : Gating::Softmax;
    if (given("--norm-topk")) mr.norm_topk = r.norm_topk;
    if (given("--weights-scale")) mr.weights_scale = r.weights_scale;
    if (given("--groups")) mr.n_group = r.n_group;
    if (given("--null-experts")) mr.n_null = r.n_null;
    if (given("--aux-alpha")) mr.aux_alpha = r.aux_alpha;
    if (given("--z-beta")) mr.z_beta = r.z_beta;
    if (given("--bias-rate")) mr.bias_rate = r.bias_rate;
    if (given("--dts-tau-max")) mr.dts_tau_max = r.dts_tau_max;
    if (given("--dts-tau-min")) mr.dts_tau_min = r.dts_tau_min;
    if (given("--dts-decay")) mr.dts_decay_steps = r.dts_decay_steps;
    if (given("--dts-hard-step")) mr.dts_hard_step = r.dts_hard_step;
    if (given("--dts-threshold")) mr.dts_threshold = r.dts_threshold;
    if (router == "null" && given("--experts") && !given("--null-experts")) mr.n_null = m.n_expert;
    if (router == "dense" && (given("--experts") || given("--top-k")))
      throw UsageError("--router dense uses one expert; set its width with --expert-ffn");
    run.export_type = export_type == "f16" ? DType::F16 : (export_type == "bf16" ? DType::BF16 : DType::F32);
    run.command_line = join_command(argc, argv);

    if (bench) {
      m.n_vocab = bench_vocab;
      cfg.train_files = {"(random tokens)"};
      const double tok_s = train::run_benchmark(cfg, 2, bench_steps, run.quiet);
      std::printf("%.1f\n", tok_s);
      return 0;
    }
    if (run.finish_now && resume.empty()) throw UsageError("--finish needs --resume CHECKPOINT");
    if (resume.empty()) {
      if (cfg.train_files.empty()) throw UsageError("give training text with --train FILE ... (or --resume CKPT)");
      m.n_vocab = 2;  // set from the vocabulary once it is loaded; validated there
    }
    const train::RunSummary s = train::run_training(cfg, resume, run);
    if (s.stopped_early) {
      std::printf("stopped after step %lld (checkpoint written)\n", static_cast<long long>(s.steps));
      return 0;
    }
    std::printf("steps %lld tokens %lld seconds %.1f train_loss %.4f val_loss %.4f val_bpb %.4f", static_cast<long long>(s.steps),
                static_cast<long long>(s.tokens), s.seconds, s.final_train_loss, s.val_loss, s.val_bpb);
    if (s.eval_text_bpb >= 0) std::printf(" eval_text_bpb %.4f", s.eval_text_bpb);
    std::printf("\n");
    return 0;
  });
}

}  // namespace moe::cli
