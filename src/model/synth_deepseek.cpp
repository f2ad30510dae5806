// `moe synth` for the DeepSeek-style architectures: deepseek2 (MLA, split or legacy kv_b, YaRN, groups) and
// glm4moe (partial-rope GQA with biases and q/k norms). Keys and tensor names as llama.cpp's converter writes them.
#include <algorithm>
#include <string>

#include "core/error.h"
#include "format/gguf.h"
#include "model/synth.h"

namespace moe {

bool synth_is_deepseek_style(const std::string& arch) { return arch == "deepseek2" || arch == "glm4moe"; }

namespace {

int rope_dim(const SynthSpec& sp, int head_dim) {
  if (sp.ds.rope_dim > 0) return sp.ds.rope_dim;
  return sp.arch == "deepseek2" ? 32 : head_dim / 2;
}

uint32_t u32(int v) { return static_cast<uint32_t>(v); }

void check(const SynthSpec& sp, int hd) {
  const DeepseekSynth& d = sp.ds;
  if (sp.experts <= 0) throw UsageError(sp.arch + " needs --experts > 0");
  if (d.dense_layers < 0 || d.dense_layers > sp.layers) throw UsageError("--dense-layers must be in [0, layers]");
  if (d.shared_experts < 0) throw UsageError("--shared-experts must be >= 0");
  if (d.groups < 1 || sp.experts % d.groups != 0) throw UsageError("--expert-groups must divide --experts");
  if (d.groups_used < 1 || d.groups_used > d.groups) throw UsageError("--groups-used must be in [1, expert-groups]");
  if (d.groups > 1 && sp.experts / d.groups < 2) throw UsageError("group-limited routing needs >= 2 experts per group");
  if (d.groups > 1 && d.groups_used * (sp.experts / d.groups) < sp.top_k)
    throw UsageError("--groups-used x experts per group must be >= --top-k");
  const int r = rope_dim(sp, hd);
  if (r <= 0 || r % 2) throw UsageError("--rope-dim must be positive and even");
  if (sp.arch == "deepseek2") {
    if (d.shared_experts < 1) throw UsageError("deepseek2 needs --shared-experts >= 1 (llama.cpp requires the tensors)");
    if (d.q_lora < 0 || d.kv_lora <= 0 || d.nope_dim <= 0 || d.v_head_dim <= 0)
      throw UsageError("deepseek2 needs --kv-lora, --nope-dim and --v-head-dim > 0 (--q-lora >= 0)");
  } else if (r > hd) {
    throw UsageError("--rope-dim must be <= the head size");
  }
  if (d.yarn_factor != 0.0f && d.yarn_factor <= 1.0f) throw UsageError("--yarn-factor must be > 1");
}

}  // namespace

void synth_deepseek_keys(const SynthSpec& sp, GgufWriter& w) {
  const std::string a = sp.arch + ".";
  const DeepseekSynth& d = sp.ds;
  const int hd = sp.head_dim > 0 ? sp.head_dim : sp.hidden / sp.heads;
  check(sp, hd);
  const int r = rope_dim(sp, hd);
  const int ffn = sp.ffn > 0 ? sp.ffn : 4 * sp.hidden;
  w.set(a + "feed_forward_length", GgufValue::make_u32(u32(ffn)));
  w.set(a + "rope.dimension_count", GgufValue::make_u32(u32(r)));
  // Released configs: DeepSeek rms_norm_eps 1e-6, GLM-4.5 1e-5.
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::make_f32(sp.arch == "deepseek2" ? 1e-6f : 1e-5f));
  if (sp.arch == "deepseek2") {
    // Written even when 0: llama.cpp requires the key unless it recognises a Lite model by its layer count.
    w.set(a + "attention.q_lora_rank", GgufValue::make_u32(u32(d.q_lora)));
    w.set(a + "attention.kv_lora_rank", GgufValue::make_u32(u32(d.kv_lora)));
    if (d.kv_b) {  // legacy: MHA shapes after decompression
      w.set(a + "attention.head_count_kv", GgufValue::make_u32(u32(sp.heads)));
      w.set(a + "attention.key_length", GgufValue::make_u32(u32(d.nope_dim + r)));
      w.set(a + "attention.value_length", GgufValue::make_u32(u32(d.v_head_dim)));
    } else {  // MLA as MQA over [latent | rope]
      w.set(a + "attention.head_count_kv", GgufValue::make_u32(1));
      w.set(a + "attention.key_length", GgufValue::make_u32(u32(d.kv_lora + r)));
      w.set(a + "attention.value_length", GgufValue::make_u32(u32(d.kv_lora)));
      w.set(a + "attention.key_length_mla", GgufValue::make_u32(u32(d.nope_dim + r)));
      w.set(a + "attention.value_length_mla", GgufValue::make_u32(u32(d.v_head_dim)));
    }
    if (d.yarn_factor > 1.0f) {
      w.set(a + "rope.scaling.type", GgufValue::make_string("yarn"));
      w.set(a + "rope.scaling.factor", GgufValue::make_f32(d.yarn_factor));
      const int orig = d.yarn_orig_ctx > 0 ? d.yarn_orig_ctx : std::max(1, static_cast<int>(sp.ctx / d.yarn_factor));
      w.set(a + "rope.scaling.original_context_length", GgufValue::make_u32(u32(orig)));
      w.set(a + "rope.scaling.yarn_log_multiplier", GgufValue::make_f32(0.0707f));  // converter's 0.1 * 0.707
    }
  }
  w.set(a + "leading_dense_block_count", GgufValue::make_u32(u32(d.dense_layers)));
  w.set(a + "expert_shared_count", GgufValue::make_u32(u32(d.shared_experts)));
  if (d.groups > 1) {
    w.set(a + "expert_group_count", GgufValue::make_u32(u32(d.groups)));
    w.set(a + "expert_group_used_count", GgufValue::make_u32(u32(d.groups_used)));
  }
  w.set(a + "expert_weights_scale", GgufValue::make_f32(d.routed_scale));
  w.set(a + "expert_weights_norm", GgufValue::make_bool(true));
  w.set(a + "expert_gating_func", GgufValue::make_u32(2));
  if (sp.arch == "glm4moe") w.set(a + "nextn_predict_layers", GgufValue::make_u32(0));
}

std::vector<SynthTensor> synth_deepseek_layers(const SynthSpec& sp) {
  const DeepseekSynth& d = sp.ds;
  const int hd = sp.head_dim > 0 ? sp.head_dim : sp.hidden / sp.heads;
  const int r = rope_dim(sp, hd), E = sp.hidden, H = sp.heads;
  const int ffn = sp.ffn > 0 ? sp.ffn : 4 * sp.hidden, shared = d.shared_experts * sp.expert_ffn;
  const DType t = sp.type;
  std::vector<SynthTensor> v;
  for (int il = 0; il < sp.layers; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    auto mat = [&](const std::string& n, std::vector<int64_t> ne, DType ty) { v.push_back({b + n, std::move(ne), ty, false}); };
    auto norm = [&](const std::string& n, int64_t len) { v.push_back({b + n, {len}, DType::F32, true}); };
    norm("attn_norm.weight", E);
    if (sp.arch == "deepseek2") {
      const int L = d.kv_lora, qk = d.nope_dim + r, V = d.v_head_dim;
      if (d.q_lora > 0) norm("attn_q_a_norm.weight", d.q_lora);
      norm("attn_kv_a_norm.weight", L);
      if (d.q_lora > 0) {
        mat("attn_q_a.weight", {E, d.q_lora}, t);
        mat("attn_q_b.weight", {d.q_lora, H * qk}, t);
      } else {
        mat("attn_q.weight", {E, H * qk}, t);
      }
      mat("attn_kv_a_mqa.weight", {E, L + r}, t);
      if (d.kv_b) {
        mat("attn_kv_b.weight", {L, H * (d.nope_dim + V)}, t);
      } else {
        mat("attn_k_b.weight", {d.nope_dim, L, H}, t);
        mat("attn_v_b.weight", {L, V, H}, t);
      }
      mat("attn_output.weight", {H * V, E}, t);
      norm("ffn_norm.weight", E);
    } else {
      const int kv = sp.kv_heads * hd;
      mat("attn_q.weight", {E, H * hd}, t);
      mat("attn_q.bias", {H * hd}, DType::F32);
      mat("attn_k.weight", {E, kv}, t);
      mat("attn_k.bias", {kv}, DType::F32);
      mat("attn_v.weight", {E, kv}, t);
      mat("attn_v.bias", {kv}, DType::F32);
      mat("attn_output.weight", {H * hd, E}, t);
      norm("attn_q_norm.weight", hd);
      norm("attn_k_norm.weight", hd);
      norm("post_attention_norm.weight", E);
    }
    if (il < d.dense_layers) {
      mat("ffn_gate.weight", {E, ffn}, t);
      mat("ffn_down.weight", {ffn, E}, t);
      mat("ffn_up.weight", {E, ffn}, t);
      continue;
    }
    mat("ffn_gate_inp.weight", {E, sp.experts}, DType::F32);
    mat("exp_probs_b.bias", {sp.experts}, DType::F32);
    mat("ffn_gate_exps.weight", {E, sp.expert_ffn, sp.experts}, t);
    mat("ffn_down_exps.weight", {sp.expert_ffn, E, sp.experts}, t);
    mat("ffn_up_exps.weight", {E, sp.expert_ffn, sp.experts}, t);
    if (shared > 0) {
      mat("ffn_gate_shexp.weight", {E, shared}, t);
      mat("ffn_down_shexp.weight", {shared, E}, t);
      mat("ffn_up_shexp.weight", {E, shared}, t);
    }
  }
  return v;
}

}  // namespace moe
