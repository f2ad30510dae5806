// DeepSeek-V2/V3 and Kimi-K2 (`deepseek2`): multi-head latent attention (attention_mla.cpp) with YaRN, leading
// dense layers, then MoE layers with shared experts and a router that may use sigmoid scores, a selection bias
// (exp_probs_b), group-limited top-k, renormalisation and a routed scaling factor. Files come in two forms: the
// current one with attn_k_b / attn_v_b (and attention.key_length_mla), and the legacy one with a single attn_kv_b,
// which is split at load into the same k_b / v_b.
#include <cmath>

#include "core/error.h"
#include "core/quant.h"
#include "format/gguf.h"
#include "model/arch_common.h"
#include "model/arch_deepseek2.h"
#include "model/rope.h"

namespace moe {

namespace {

int read_count(const GgufFile& f, const std::string& key, int def) {
  auto v = f.get_uint(key);
  if (!v) return def;
  if (*v > (1u << 20)) throw FormatError(f.path() + ": metadata '" + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int>(*v);
}

}  // namespace

// NextN/MTP blocks sit after the trunk's layers: drop them from the layer count (their tensors are skipped).
void drop_nextn_layers(const GgufFile& f, ModelConfig& c) {
  c.n_layer_nextn = read_count(f, c.arch + ".nextn_predict_layers", 0);
  if (c.n_layer_nextn >= c.n_layer)
    throw FormatError(f.path() + ": nextn_predict_layers " + std::to_string(c.n_layer_nextn) + " must be below block_count " +
                      std::to_string(c.n_layer));
  c.n_layer -= c.n_layer_nextn;
  c.layer_is_moe.resize(static_cast<size_t>(c.n_layer));
}

// The first leading_dense_block_count layers are dense, the rest MoE; shared experts are expert_shared_count
// experts' width fused into one FFN.
void read_dense_lead_and_shared(const GgufFile& f, ModelConfig& c) {
  const std::string a = c.arch + ".";
  const int lead = read_count(f, a + "leading_dense_block_count", 0);
  if (lead > c.n_layer)
    throw FormatError(f.path() + ": leading_dense_block_count " + std::to_string(lead) + " exceeds the " +
                      std::to_string(c.n_layer) + " layers");
  if (lead < c.n_layer && c.n_expert <= 0) throw FormatError(f.path() + ": " + c.arch + " needs expert_count > 0");
  if (lead < c.n_layer && c.n_ff_exp <= 0) throw FormatError(f.path() + ": missing metadata '" + a + "expert_feed_forward_length'");
  for (int il = 0; il < c.n_layer; ++il) c.layer_is_moe[static_cast<size_t>(il)] = il >= lead;
  const int n_shared = read_count(f, a + "expert_shared_count", 0);
  if (c.n_ff_shexp <= 0) c.n_ff_shexp = n_shared * c.n_ff_exp;
}

void skip_nextn_tensors(TensorBinder& b, const ModelConfig& c, int il) {
  if (il != c.n_layer - 1) return;
  for (int j = c.n_layer; j < c.n_layer + c.n_layer_nextn; ++j) b.ignore_prefix("blk." + std::to_string(j) + ".");
}

namespace {

void deepseek2_configure(const GgufFile& f, ModelConfig& c) {
  const std::string a = c.arch + ".";
  c.rope_type = RopeType::Norm;
  drop_nextn_layers(f, c);
  if (f.find(a + "attention.temperature_scale"))
    throw FormatError(f.path() + ": attention.temperature_scale (Mistral-Large style) is not supported yet");

  c.q_lora_rank = read_count(f, a + "attention.q_lora_rank", 0);
  c.kv_lora_rank = read_count(f, a + "attention.kv_lora_rank", 0);
  if (c.kv_lora_rank <= 0) throw FormatError(f.path() + ": missing metadata '" + a + "attention.kv_lora_rank'");
  const auto k_mla = f.get_uint(a + "attention.key_length_mla");
  const auto v_mla = f.get_uint(a + "attention.value_length_mla");
  c.mla_kv_b = !k_mla;  // as llama.cpp: the *_mla keys say the file has the split attn_k_b / attn_v_b
  if (k_mla) {
    if (!v_mla) throw FormatError(f.path() + ": attention.key_length_mla without attention.value_length_mla");
    c.mla_head_k = read_count(f, a + "attention.key_length_mla", 0);
    c.mla_head_v = read_count(f, a + "attention.value_length_mla", 0);
    // In this form the cached "key" is [latent | rope] and the "value" the latent (one KV head).
    if (c.head_dim != c.kv_lora_rank + c.n_rot || c.head_dim_v != c.kv_lora_rank)
      throw FormatError(f.path() + ": attention.key_length " + std::to_string(c.head_dim) + " / value_length " +
                        std::to_string(c.head_dim_v) + " do not match kv_lora_rank " + std::to_string(c.kv_lora_rank) +
                        " + rope.dimension_count " + std::to_string(c.n_rot) + " / kv_lora_rank");
  } else {
    if (f.tensor("blk.0.attn_k_b.weight"))
      throw FormatError(f.path() + ": tensor 'blk.0.attn_k_b.weight' needs the metadata '" + a +
                        "attention.key_length_mla' (and value_length_mla), which the file lacks");
    c.mla_head_k = c.head_dim;
    c.mla_head_v = c.head_dim_v;
  }
  if (c.mla_head_k - c.n_rot < 1 || c.mla_head_v < 1)
    throw FormatError(f.path() + ": MLA head sizes (key " + std::to_string(c.mla_head_k) + ", value " +
                      std::to_string(c.mla_head_v) + ") leave no room beside rope.dimension_count " + std::to_string(c.n_rot));

  // llama.cpp's defaults for this architecture: no renormalisation unless the file says so.
  c.router.norm_topk = false;
  read_dense_lead_and_shared(f, c);
  read_router_overrides(f, c);

  // The converter stores 0.1 * mscale_all_dim; DeepSeek-2 puts YaRN's magnitude correction into the KQ scale
  // (squared, since it multiplies q and k) and leaves the rope with magnitude 1.
  if (auto lm = f.get_float(a + "rope.scaling.yarn_log_multiplier")) c.yarn.log_mul = static_cast<float>(*lm / 0.1);
  if (c.yarn.ext_factor != 0.0f) c.yarn.attn_factor = yarn_attn_factor(c, true);
  const float attn_factor = c.yarn.ext_factor != 0.0f ? c.yarn.attn_factor : c.yarn.rope_attn_factor;
  const float log_s = std::log(1.0f / c.rope_freq_scale);
  const float mscale = attn_factor * (1.0f + 0.1f * log_s) * (1.0f + 0.1f * c.yarn.log_mul * log_s);
  c.attn_scale = mscale * mscale / std::sqrt(static_cast<float>(c.mla_head_k));
}

// Legacy attn_kv_b [n_head*(nope+v) rows, kv_lora cols] -> per head k_b [kv_lora, nope] (transposed) and v_b [v, kv_lora].
void split_kv_b(const Mat& kv_b, const ModelConfig& c, MlaWeights& m) {
  const int64_t L = c.kv_lora_rank, nope = c.mla_head_k - c.n_rot, V = c.mla_head_v, H = c.n_head;
  m.split_kv_b.assign(static_cast<size_t>(H * (L * nope + V * L)), 0.f);
  float* kb = m.split_kv_b.data();
  float* vb = kb + H * L * nope;
  std::vector<float> row(static_cast<size_t>(L));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t r = 0; r < nope + V; ++r) {
      dequantize_row(kv_b.type, kv_b.data + static_cast<size_t>(h * (nope + V) + r) * kv_b.row_stride, row.data(), L);
      for (int64_t l = 0; l < L; ++l) {
        if (r < nope) kb[(h * L + l) * nope + r] = row[static_cast<size_t>(l)];
        else vb[(h * V + (r - nope)) * L + l] = row[static_cast<size_t>(l)];
      }
    }
  auto view = [](const float* p, int64_t rows, int64_t cols, int64_t n) {
    const size_t rs = static_cast<size_t>(cols) * sizeof(float);
    return ExpertMats{DType::F32, rows, cols, n, reinterpret_cast<const uint8_t*>(p), rs, rs * static_cast<size_t>(rows)};
  };
  m.k_b = view(kb, L, nope, H);
  m.v_b = view(vb, V, L, H);
  m.kv_b_type = kv_b.type;
}

void deepseek2_bind_layer(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  const int64_t E = c.n_embd, H = c.n_head, L = c.kv_lora_rank, R = c.n_rot;
  const int64_t nope = c.mla_head_k - R, V = c.mla_head_v, q_dim = H * c.mla_head_k;
  MlaWeights& m = lw.mla;
  lw.attn_norm = b.vec(layer_tensor(il, "attn_norm.weight"), E);
  if (c.q_lora_rank > 0) {
    m.q_a = b.mat(layer_tensor(il, "attn_q_a.weight"), E, c.q_lora_rank);
    m.q_a_norm = b.vec(layer_tensor(il, "attn_q_a_norm.weight"), c.q_lora_rank);
    m.q_b = b.mat(layer_tensor(il, "attn_q_b.weight"), c.q_lora_rank, q_dim);
  } else {
    lw.wq = b.mat(layer_tensor(il, "attn_q.weight"), E, q_dim);
  }
  m.kv_a = b.mat(layer_tensor(il, "attn_kv_a_mqa.weight"), E, L + R);
  m.kv_a_norm = b.vec(layer_tensor(il, "attn_kv_a_norm.weight"), L);
  if (c.mla_kv_b) {
    split_kv_b(b.mat(layer_tensor(il, "attn_kv_b.weight"), L, H * (nope + V)), c, m);
  } else {
    m.k_b = b.experts(layer_tensor(il, "attn_k_b.weight"), nope, L, H);
    m.v_b = b.experts(layer_tensor(il, "attn_v_b.weight"), L, V, H);
  }
  lw.wo = b.mat(layer_tensor(il, "attn_output.weight"), H * V, E);
  if (c.layer_is_moe[static_cast<size_t>(il)]) {
    bind_moe_ffn(b, c, il, lw);
    bind_shared_expert(b, c, il, lw);
  } else {
    bind_dense_ffn(b, c, il, lw);
  }
  skip_nextn_tensors(b, c, il);
}

}  // namespace

extern const Architecture kArchDeepseek2 = {"deepseek2", deepseek2_configure, deepseek2_bind_layer, make_mla_attention};

}  // namespace moe
