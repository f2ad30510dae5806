// `moe info FILE`: what a GGUF model is and what running it takes.
#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "format/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "model/model_info.h"

namespace moe::cli {

namespace {

// A vocabulary-only GGUF (train-tokenizer's output, llama.cpp's ggml-vocab-*.gguf) has no weights to load.
void print_tokenizer_only(const GgufFile& f) {
  const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  std::printf("file:          %s (GGUF v%u, %s)\n", f.path().c_str(), f.version(), human_bytes(f.file_size()).c_str());
  std::printf("contents:      a tokenizer only (no model weights: %zu tensors)\n", f.tensors().size());
  std::printf("tokenizer:     %s, pre-tokenizer %s; %zu tokens; chat template %s\n",
              f.get_string("tokenizer.ggml.model").value_or("none").c_str(),
              f.get_string("tokenizer.ggml.pre").value_or("default").c_str(), tokens ? tokens->size() : size_t{0},
              f.has("tokenizer.chat_template") ? "yes" : "no");
  if (const auto merges = f.get_string_array("tokenizer.ggml.merges")) std::printf("merges:        %zu\n", merges->size());
  for (const char* key : {"bos", "eos", "eot", "pad"})
    if (const auto id = f.get_int(std::string("tokenizer.ggml.") + key + "_token_id");
        id && tokens && *id >= 0 && static_cast<size_t>(*id) < tokens->size())
      std::printf("%s:%*s%lld '%s'\n", key, static_cast<int>(14 - std::string(key).size()), "", static_cast<long long>(*id),
                  (*tokens)[static_cast<size_t>(*id)].c_str());
}

// `moe prune` records the original ids of the experts it kept: [n_layer][kept], -1 for dense layers.
void print_pruned(const GgufFile& f, const ModelConfig& c) {
  const auto kept = f.get_int_array("moe.pruned.kept_experts");
  const auto original = f.get_uint("moe.pruned.original_expert_count");
  if (!kept || !original || c.n_expert <= 0 || kept->size() != static_cast<size_t>(c.n_layer) * c.n_expert) return;
  std::printf("pruned:        kept %d of %llu experts; original ids per layer:", c.n_expert,
              static_cast<unsigned long long>(*original));
  for (int l = 0; l < c.n_layer; ++l) {
    const int64_t* row = kept->data() + static_cast<size_t>(l) * c.n_expert;
    if (row[0] < 0) continue;
    std::printf(" %d:[", l);
    for (int e = 0; e < c.n_expert; ++e) std::printf(e ? " %lld" : "%lld", static_cast<long long>(row[e]));
    std::printf("]");
  }
  std::printf("\n");
}

}  // namespace

int cmd_info(int argc, char** argv) {
  CLI::App app{"Describe a GGUF model: architecture, experts, parameters, tensor types, memory", "info"};
  std::string path;
  int ctx = 0;
  int top_k = 0;
  bool metadata = false;
  app.add_option("model", path, "GGUF file (default: the bundled model)");
  app.add_option("-m,--model", path, "GGUF file (same as the positional argument)");
  app.add_option("--ctx", ctx, "context length used for the KV-cache estimate (0: min(4096, trained), as run uses)")->check(NonNegative);
  app.add_option("--top-k", top_k, "report active parameters for this many experts per token")->check(NonNegative);
  app.add_flag("--metadata", metadata, "also list every metadata key");
  return run_command(app, argc, argv, [&] {
    path = resolve_model_path(path);
    {
      GgufFile file(path);
      if (file.tensors().empty() && file.has("tokenizer.ggml.tokens")) {
        print_tokenizer_only(file);
        return 0;
      }
    }
    auto model = Model::load(path);
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
      const char* gating = c.router.gating == Gating::Softmax   ? "softmax"
                           : c.router.gating == Gating::Sigmoid ? "sigmoid"
                                                                : "top-k logits then softmax";
      std::printf("router:        %s, %s top-k weights", gating, c.router.norm_topk ? "renormalised" : "raw");
      if (c.router_before_attention) std::printf(", reads the layer input before attention");
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
    if (c.n_swa > 0 || c.attn_sinks || !c.layer_nope.empty()) {
      auto layers_where = [&](auto pred) {
        std::string l;
        for (int il = 0; il < c.n_layer; ++il)
          if (pred(il)) l += (l.empty() ? "" : ",") + std::to_string(il);
        return l.empty() ? std::string("none") : l;
      };
      std::printf("attention:    ");
      if (c.n_swa > 0)
        std::printf(" sliding window %d on layers %s;", c.n_swa, layers_where([&](int il) { return c.is_swa(il); }).c_str());
      if (!c.layer_nope.empty())
        std::printf(" NoPE layers %s;", layers_where([&](int il) { return !c.uses_rope(il); }).c_str());
      if (c.attn_sinks) std::printf(" per-head sinks;");
      std::printf("\n");
    }
    print_pruned(f, c);
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
    std::printf("memory:        weights %s (mapped) + KV cache %s at %d positions (f32, %s per token)\n",
                human_bytes(s.bytes_total).c_str(), human_bytes(kv).c_str(), ctx,
                human_bytes(static_cast<double>(s.kv_bytes_per_position)).c_str());
    std::printf("per token:     %s of weights read per generated token\n", human_bytes(s.bytes_per_token).c_str());
    if (metadata)
      for (const auto& [key, v] : f.metadata()) std::printf("  %s = %s\n", key.c_str(), v.to_string().c_str());
    return 0;
  });
}

}  // namespace moe::cli
