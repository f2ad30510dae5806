#include "model/config.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "format/gguf.h"
#include "model/rope.h"

namespace moe {

int ModelConfig::n_moe_layers() const {
  int n = 0;
  for (bool b : layer_is_moe) n += b ? 1 : 0;
  return n;
}

std::string ModelConfig::describe() const {
  std::ostringstream o;
  o << arch << ": " << n_layer << " layers, hidden " << n_embd << ", " << n_head << " heads (" << n_head_kv
    << " kv) x " << head_dim << ", vocab " << n_vocab;
  if (n_expert > 0) o << ", " << n_expert << " experts top-" << n_expert_used << " ffn " << n_ff_exp;
  if (n_ff_shexp > 0) o << ", shared expert ffn " << n_ff_shexp;
  return o.str();
}

namespace {

int get_positive(const GgufFile& f, const std::string& key, bool required, int def, int64_t max = 1 << 24) {
  auto v = f.get_uint(key);
  if (!v) {
    if (required) throw FormatError(f.path() + ": missing metadata '" + key + "'");
    return def;
  }
  if (*v > static_cast<uint64_t>(max))
    throw FormatError(f.path() + ": metadata '" + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int>(*v);
}

// Some keys may be per-layer arrays (e.g. head_count_kv); we support uniform values only.
int get_uniform(const GgufFile& f, const std::string& key, bool required, int def) {
  const GgufValue* v = f.find(key);
  if (v && v->is_array()) {
    auto arr = f.get_int_array(key);
    if (!arr || arr->empty()) throw FormatError(f.path() + ": metadata '" + key + "' is an empty array");
    for (int64_t x : *arr)
      if (x != (*arr)[0])
        throw FormatError(f.path() + ": metadata '" + key + "' varies per layer, which is not supported yet");
    if ((*arr)[0] < 0 || (*arr)[0] > (1 << 24)) throw FormatError(f.path() + ": metadata '" + key + "' out of range");
    return static_cast<int>((*arr)[0]);
  }
  return get_positive(f, key, required, def);
}

// YaRN keys (llama.cpp reads beta/ext keys only for some architectures; we honour them wherever present).
void read_yarn(const GgufFile& f, const std::string& a, double factor, ModelConfig& c) {
  if (factor < 0.0 || !std::isfinite(factor)) throw FormatError(f.path() + ": rope.scaling.factor out of range");
  c.rope_freq_scale = factor > 0.0 ? static_cast<float>(1.0 / factor) : 1.0f;
  RopeYarn& y = c.yarn;
  y.ext_factor = static_cast<float>(f.get_float(a + "rope.scaling.yarn_ext_factor").value_or(1.0));
  y.beta_fast = static_cast<float>(f.get_float(a + "rope.scaling.yarn_beta_fast").value_or(32.0));
  y.beta_slow = static_cast<float>(f.get_float(a + "rope.scaling.yarn_beta_slow").value_or(1.0));
  y.log_mul = static_cast<float>(f.get_float(a + "rope.scaling.yarn_log_multiplier").value_or(0.0));
  y.rope_attn_factor = static_cast<float>(f.get_float(a + "rope.scaling.attn_factor").value_or(1.0));
  y.n_ctx_orig = get_positive(f, a + "rope.scaling.original_context_length", false, c.n_ctx_train);
  if (!(y.ext_factor >= 0.0f) || !(y.beta_fast > 0.0f) || !(y.beta_slow > 0.0f) || y.n_ctx_orig <= 0 ||
      !std::isfinite(y.log_mul) || !(y.rope_attn_factor > 0.0f))
    throw FormatError(f.path() + ": YaRN rope scaling keys out of range");
  y.attn_factor = yarn_attn_factor(c, false);
}

}  // namespace

ModelConfig read_common_config(const GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) throw FormatError(f.path() + ": missing metadata 'general.architecture'");
  c.arch = *arch;
  c.name = f.get_string("general.name").value_or("");
  const std::string a = c.arch + ".";
  c.n_layer = get_positive(f, a + "block_count", true, 0, 4096);
  c.n_embd = get_positive(f, a + "embedding_length", true, 0);
  c.n_head = get_uniform(f, a + "attention.head_count", true, 0);
  c.n_head_kv = get_uniform(f, a + "attention.head_count_kv", false, c.n_head);
  if (c.n_layer <= 0 || c.n_embd <= 0 || c.n_head <= 0 || c.n_head_kv <= 0)
    throw FormatError(f.path() + ": block_count, embedding_length and head counts must be positive");
  if (c.n_head % c.n_head_kv != 0)
    throw FormatError(f.path() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                      std::to_string(c.n_head_kv));
  c.head_dim = get_positive(f, a + "attention.key_length", false, c.n_embd / c.n_head);
  c.head_dim_v = get_positive(f, a + "attention.value_length", false, c.head_dim);
  if (c.head_dim <= 0 || c.head_dim_v <= 0) throw FormatError(f.path() + ": head size must be positive");
  c.n_rot = get_positive(f, a + "rope.dimension_count", false, c.head_dim);
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    throw FormatError(f.path() + ": rope.dimension_count " + std::to_string(c.n_rot) + " must be even and <= head size");
  c.n_ctx_train = get_positive(f, a + "context_length", false, 4096);
  c.rms_eps = static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  if (!(c.rms_eps > 0.0f) || c.rms_eps > 1.0f) throw FormatError(f.path() + ": layer_norm_rms_epsilon out of range");
  c.rope_theta = static_cast<float>(f.get_float(a + "rope.freq_base").value_or(10000.0));
  if (!(c.rope_theta > 0.0f)) throw FormatError(f.path() + ": rope.freq_base must be positive");
  c.attn_scale = static_cast<float>(f.get_float(a + "attention.scale").value_or(0.0));
  c.clamp_kqv = static_cast<float>(f.get_float(a + "attention.clamp_kqv").value_or(0.0));

  std::string scaling = f.get_string(a + "rope.scaling.type").value_or("none");
  double factor = f.get_float(a + "rope.scaling.factor").value_or(0.0);
  if (scaling == "linear" && factor > 0) c.rope_freq_scale = static_cast<float>(1.0 / factor);
  else if (scaling == "yarn") read_yarn(f, a, factor, c);
  else if (scaling != "none" && scaling != "linear" && factor > 1.0)
    throw FormatError(f.path() + ": rope scaling '" + scaling + "' is not supported yet");

  c.n_ff = get_uniform(f, a + "feed_forward_length", false, 0);
  c.n_expert = get_positive(f, a + "expert_count", false, 0, 4096);
  c.n_expert_used = get_positive(f, a + "expert_used_count", false, 0, 4096);
  c.n_ff_exp = get_positive(f, a + "expert_feed_forward_length", false, 0);
  c.n_ff_shexp = get_positive(f, a + "expert_shared_feed_forward_length", false, 0);
  if (c.n_expert > 0) {
    if (c.n_expert_used <= 0)
      throw FormatError(f.path() + ": model has expert layers but expert_used_count is 0");
    if (c.n_expert_used > c.n_expert)
      throw FormatError(f.path() + ": expert_used_count " + std::to_string(c.n_expert_used) + " exceeds expert_count " +
                        std::to_string(c.n_expert));
  }
  if (auto g = f.get_uint(a + "expert_gating_func")) {
    if (*g == 1) c.router.gating = Gating::Softmax;
    else if (*g == 2) c.router.gating = Gating::Sigmoid;
    else throw FormatError(f.path() + ": expert_gating_func " + std::to_string(*g) + " is not supported");
  }
  c.router.weights_scale = static_cast<float>(f.get_float(a + "expert_weights_scale").value_or(1.0));
  if (c.router.weights_scale == 0.0f) c.router.weights_scale = 1.0f;
  c.router.n_group = get_positive(f, a + "expert_group_count", false, 1);
  c.router.n_group_used = get_positive(f, a + "expert_group_used_count", false, 1);
  if (c.router.n_group < 1) c.router.n_group = 1;
  if (c.n_expert > 0 && c.router.n_group > 1) {
    if (c.n_expert % c.router.n_group != 0)
      throw FormatError(f.path() + ": expert_count is not a multiple of expert_group_count");
    if (c.router.n_group_used < 1 || c.router.n_group_used > c.router.n_group)
      throw FormatError(f.path() + ": expert_group_used_count out of range");
  }
  c.layer_is_moe.assign(static_cast<size_t>(c.n_layer), c.n_expert > 0);
  return c;
}

}  // namespace moe
