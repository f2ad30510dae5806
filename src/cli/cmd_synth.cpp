// `moe synth`: write a random-weight GGUF of any shape and weight type.
#include <unistd.h>

#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "core/error.h"
#include "model/model_info.h"
#include "model/synth.h"

namespace moe::cli {

int cmd_synth(int argc, char** argv) {
  CLI::App app{"Write a random-weight GGUF model of any shape and type (for tests and benchmarks)", "synth"};
  SynthSpec s;
  std::string type = "f32", embd_type, out;
  int threads = 0;
  app.add_option("--arch", s.arch, "qwen3moe | qwen2moe | olmoe | llama | deepseek2 | glm4moe")
      ->check(CLI::IsMember({"qwen3moe", "qwen2moe", "olmoe", "llama", "deepseek2", "glm4moe"}));
  app.add_option("--layers", s.layers, "transformer blocks")->check(CLI::PositiveNumber);
  app.add_option("--hidden", s.hidden, "hidden size")->check(CLI::PositiveNumber);
  app.add_option("--heads", s.heads, "attention heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", s.kv_heads, "key/value heads")->check(CLI::PositiveNumber);
  app.add_option("--head-dim", s.head_dim, "head size (0: hidden / heads)")->check(CLI::NonNegativeNumber);
  app.add_option("--experts", s.experts, "routed experts per layer (0: dense, llama only)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", s.top_k, "experts per token")->check(CLI::PositiveNumber);
  app.add_option("--expert-ffn", s.expert_ffn, "expert FFN width")->check(CLI::PositiveNumber);
  app.add_option("--ffn", s.ffn, "dense FFN width (0: 4 x hidden)")->check(CLI::NonNegativeNumber);
  app.add_option("--shared-ffn", s.shared_ffn, "shared expert width for qwen2moe (0: expert FFN)")->check(CLI::NonNegativeNumber);
  app.add_option("--vocab", s.vocab, "synthetic byte-level BPE vocabulary size")->check(CLI::Range(259, 65795));
  app.add_option("--vocab-from", s.vocab_from, "copy the tokenizer from this GGUF instead");
  app.add_option("--ctx", s.ctx, "context length stored in the file")->check(CLI::PositiveNumber);
  app.add_option("--type", type, "weight type of attention and expert matrices (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, ...)");
  app.add_option("--embd-type", embd_type, "type of token embedding and output head (default: as --type)");
  app.add_flag("--tied", s.tied, "no output.weight: the head reuses the embedding");
  app.add_option("--std", s.std, "standard deviation of the weights")->check(CLI::PositiveNumber);
  app.add_option("--rope-theta", s.rope_theta, "RoPE base")->check(CLI::PositiveNumber);
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
  app.add_option("--yarn-factor", d.yarn_factor, "deepseek2: YaRN rope scaling factor (0: none)")->check(CLI::NonNegativeNumber);
  app.add_option("--yarn-orig-ctx", d.yarn_orig_ctx, "deepseek2: YaRN original context (0: ctx / factor)")->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("-o,--out", out, "output GGUF file")->required();
  return run_command(app, argc, argv, [&] {
    auto parse_type = [](const std::string& name, const char* flag) {
      auto t = dtype_from_name(name);
      if (!t || !dtype_info(*t).computable || *t == DType::Q8_K)
        throw UsageError(std::string(flag) + ": unknown or unsupported weight type '" + name + "'");
      return *t;
    };
    s.type = parse_type(type, "--type");
    s.embd_type = embd_type.empty() ? s.type : parse_type(embd_type, "--embd-type");
    const bool tty = isatty(fileno(stderr));
    write_synth_model(s, out, [&](uint64_t done, uint64_t total) {
      if (tty) std::fprintf(stderr, "\rwriting %s: %s / %s", out.c_str(), human_bytes(done).c_str(), human_bytes(total).c_str());
    }, resolve_threads(threads));
    if (tty) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "wrote %s\n", out.c_str());
    return 0;
  });
}

}  // namespace moe::cli
