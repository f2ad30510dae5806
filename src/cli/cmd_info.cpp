// `moe info FILE`: what a GGUF model is and what running it takes.
#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "model/context.h"
#include "model/model.h"
#include "model/model_info.h"

namespace moe::cli {

int cmd_info(int argc, char** argv) {
  CLI::App app{"Describe a GGUF model: architecture, experts, parameters, tensor types, memory", "info"};
  std::string path;
  int ctx = 0;
  int top_k = 0;
  bool metadata = false;
  app.add_option("model", path, "GGUF file (default: the bundled model)");
  app.add_option("-m,--model", path, "GGUF file (same as the positional argument)");
  app.add_option("--ctx", ctx, "context length used for the KV-cache estimate (0: min(4096, trained), as run uses)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", top_k, "report active parameters for this many experts per token")->check(CLI::NonNegativeNumber);
  app.add_flag("--metadata", metadata, "also list every metadata key");
  return run_command(app, argc, argv, [&] {
    auto model = Model::load(resolve_model_path(path));
    const ModelConfig& c = model->config();
    ModelStats s = model_stats(*model, top_k);
    const GgufFile& f = model->file();
    std::printf("file:          %s (GGUF v%u, %s)\n", f.path().c_str(), f.version(), human_bytes(f.file_size()).c_str());
    if (!c.name.empty()) std::printf("name:          %s\n", c.name.c_str());
    std::printf("architecture:  %s\n", c.arch.c_str());
    std::printf("layers:        %d (%d MoE, %d dense)\n", c.n_layer, c.n_moe_layers(), c.n_layer - c.n_moe_layers());
    std::printf("hidden:        %d; attention %d heads x %d, %d KV heads; RoPE %s theta %g over %d dims\n", c.n_embd,
                c.n_head, c.head_dim, c.n_head_kv, c.rope_type == RopeType::Neox ? "neox" : "norm", c.rope_theta, c.n_rot);
    if (c.kv_lora_rank > 0)
      std::printf("MLA:           q_lora %d, kv_lora %d, head k %d (nope %d + rope %d), v %d%s; caches %d values per "
                  "position and layer (%s per position)\n", c.q_lora_rank, c.kv_lora_rank, c.mla_head_k,
                  c.mla_head_k - c.n_rot, c.n_rot, c.mla_head_v, c.mla_kv_b ? ", legacy attn_kv_b split at load" : "",
                  c.kv_lora_rank + c.n_rot, human_bytes(static_cast<double>(s.kv_bytes_per_position)).c_str());
    if (c.yarn.ext_factor != 0.0f)
      std::printf("RoPE scaling:  YaRN x%g from %d positions (beta %g/%g)\n", 1.0 / c.rope_freq_scale, c.yarn.n_ctx_orig,
                  c.yarn.beta_fast, c.yarn.beta_slow);
    if (c.n_expert > 0) {
      const int k = top_k > 0 ? top_k : c.n_expert_used;
      std::printf("experts:       %d routed, top-%d%s, expert FFN %d", c.n_expert, k,
                  top_k > 0 ? " (override)" : "", c.n_ff_exp);
      if (c.n_ff_shexp > 0) std::printf(", shared expert FFN %d%s", c.n_ff_shexp, c.shared_expert_gate ? " (sigmoid gate)" : "");
      if (c.router.n_null > 0) std::printf(", %d null experts", c.router.n_null);
      std::printf("\n");
      std::printf("router:        %s, %s top-k weights", c.router.gating == Gating::Softmax ? "softmax" : "sigmoid",
                  c.router.norm_topk ? "renormalised" : "raw");
      if (c.router.weights_scale != 1.0f) std::printf(", scaled x%g", c.router.weights_scale);
      if (c.router.n_group > 1) std::printf(", %d groups (best %d)", c.router.n_group, c.router.n_group_used);
      for (const LayerWeights& lw : model->layers)
        if (lw.moe.selection_bias.present()) {
          std::printf(", selection bias (exp_probs_b)");
          break;
        }
      std::printf("\n");
    } else {
      std::printf("experts:       none (dense FFN %d)\n", c.n_ff);
    }
    std::printf("vocabulary:    %d tokens; output head %s\n", c.n_vocab, c.tied_output ? "tied to the embedding" : "separate");
    std::printf("context:       %d trained\n", c.n_ctx_train);
    std::printf("parameters:    %s total, %s active per token", human_count(s.params_total).c_str(),
                human_count(s.params_active).c_str());
    if (s.params_experts > 0) std::printf(" (experts %s)", human_count(s.params_experts).c_str());
    std::printf("\n");
    std::printf("tensor types: ");
    for (const auto& [name, v] : s.types) std::printf(" %s x%d (%s)", name.c_str(), v.first, human_bytes(v.second).c_str());
    std::printf("\n");
    std::string tok_model = f.get_string("tokenizer.ggml.model").value_or("none");
    std::string tok_pre = f.get_string("tokenizer.ggml.pre").value_or("default");
    std::printf("tokenizer:     %s%s%s; chat template %s\n", tok_model.c_str(),
                tok_model == "none" ? "" : ", pre-tokenizer ", tok_model == "none" ? "" : tok_pre.c_str(),
                f.has("tokenizer.chat_template") ? "yes" : "no");
    if (ctx == 0) ctx = default_context_length(c);  // what a plain `moe run` allocates
    const double kv = static_cast<double>(s.kv_bytes_per_position) * ctx;
    std::printf("memory:        weights %s (mapped) + KV cache %s at %d positions (f32)\n",
                human_bytes(s.bytes_total).c_str(), human_bytes(kv).c_str(), ctx);
    std::printf("per token:     %s of weights read per generated token\n", human_bytes(s.bytes_per_token).c_str());
    if (metadata)
      for (const auto& [key, v] : f.metadata()) std::printf("  %s = %s\n", key.c_str(), v.to_string().c_str());
    return 0;
  });
}

}  // namespace moe::cli
