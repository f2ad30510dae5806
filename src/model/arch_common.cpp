#include "model/arch_common.h"

#include "core/error.h"
#include "format/tensor_names.h"

namespace moe {

std::string layer_tensor(int il, const char* name) { return tensor_name::blk(il, name); }

void bind_attention(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  const int64_t q_dim = static_cast<int64_t>(c.n_head) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_head_kv) * c.head_dim;
  lw.attn_norm = b.vec(layer_tensor(il, tensor_name::kAttnNorm), c.n_embd);
  if (b.has(layer_tensor(il, tensor_name::kAttnQkv)))
    throw FormatError("fused attn_qkv tensors are not supported yet (layer " + std::to_string(il) + ")");
  lw.wq = b.mat(layer_tensor(il, tensor_name::kAttnQ), c.n_embd, q_dim);
  lw.wk = b.mat(layer_tensor(il, tensor_name::kAttnK), c.n_embd, kv_dim);
  lw.wv = b.mat(layer_tensor(il, tensor_name::kAttnV), c.n_embd, kv_dim);
  lw.bq = b.vec(layer_tensor(il, tensor_name::kAttnQBias), q_dim, false);
  lw.bk = b.vec(layer_tensor(il, tensor_name::kAttnKBias), kv_dim, false);
  lw.bv = b.vec(layer_tensor(il, tensor_name::kAttnVBias), kv_dim, false);
  lw.wo = b.mat(layer_tensor(il, tensor_name::kAttnOutput), q_dim, c.n_embd);
  lw.bo = b.vec(layer_tensor(il, tensor_name::kAttnOutputBias), c.n_embd, false);
  if (c.qk_norm == QkNorm::PerHead) {
    lw.q_norm = b.vec(layer_tensor(il, tensor_name::kAttnQNorm), c.head_dim);
    lw.k_norm = b.vec(layer_tensor(il, tensor_name::kAttnKNorm), c.head_dim);
  } else if (c.qk_norm == QkNorm::Full) {
    lw.q_norm = b.vec(layer_tensor(il, tensor_name::kAttnQNorm), q_dim);
    lw.k_norm = b.vec(layer_tensor(il, tensor_name::kAttnKNorm), kv_dim);
  }
}

void bind_dense_ffn(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  if (c.n_ff <= 0) throw FormatError("layer " + std::to_string(il) + " is dense but feed_forward_length is missing");
  lw.ffn_norm = b.vec(layer_tensor(il, tensor_name::kFfnNorm), c.n_embd);
  lw.ffn_gate = b.mat(layer_tensor(il, tensor_name::kFfnGate), c.n_embd, c.n_ff);
  lw.ffn_up = b.mat(layer_tensor(il, tensor_name::kFfnUp), c.n_embd, c.n_ff);
  lw.ffn_down = b.mat(layer_tensor(il, tensor_name::kFfnDown), c.n_ff, c.n_embd);
}

void bind_moe_ffn(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  lw.ffn_norm = b.vec(layer_tensor(il, tensor_name::kFfnNorm), c.n_embd);
  const int n_total = c.n_expert + c.router.n_null;
  lw.moe.router = b.mat(layer_tensor(il, tensor_name::kFfnGateInp), c.n_embd, n_total);
  if (b.has(layer_tensor(il, "ffn_gate.0.weight")))
    throw FormatError("legacy per-expert tensors (blk.N.ffn_gate.E.weight) are not supported yet; re-convert the model");
  lw.moe.gate = b.experts(layer_tensor(il, tensor_name::kFfnGateExps), c.n_embd, c.n_ff_exp, c.n_expert);
  lw.moe.up = b.experts(layer_tensor(il, tensor_name::kFfnUpExps), c.n_embd, c.n_ff_exp, c.n_expert);
  lw.moe.down = b.experts(layer_tensor(il, tensor_name::kFfnDownExps), c.n_ff_exp, c.n_embd, c.n_expert);
  lw.moe.selection_bias = b.vec(layer_tensor(il, tensor_name::kExpProbsBBias), c.n_expert, false);
}

void bind_shared_expert(TensorBinder& b, const ModelConfig& c, int il, LayerWeights& lw) {
  if (c.n_ff_shexp <= 0) return;
  lw.gate_shexp = b.mat(layer_tensor(il, tensor_name::kFfnGateShexp), c.n_embd, c.n_ff_shexp);
  lw.up_shexp = b.mat(layer_tensor(il, tensor_name::kFfnUpShexp), c.n_embd, c.n_ff_shexp);
  lw.down_shexp = b.mat(layer_tensor(il, tensor_name::kFfnDownShexp), c.n_ff_shexp, c.n_embd);
  if (c.shared_expert_gate) lw.shexp_gate = b.mat(layer_tensor(il, tensor_name::kFfnGateInpShexp), c.n_embd, 1);
}

void read_router_overrides(const GgufFile& f, ModelConfig& cfg) {
  const std::string a = cfg.arch + ".";
  if (auto norm = f.get_bool(a + "expert_weights_norm")) cfg.router.norm_topk = *norm;
  if (auto pattern = f.get_int_array("moe.layer_is_moe")) {
    if (pattern->size() != static_cast<size_t>(cfg.n_layer))
      throw FormatError(f.path() + ": moe.layer_is_moe has " + std::to_string(pattern->size()) + " entries for " +
                        std::to_string(cfg.n_layer) + " layers");
    for (size_t i = 0; i < pattern->size(); ++i) cfg.layer_is_moe[i] = (*pattern)[i] != 0 && cfg.n_expert > 0;
  }
  if (auto balanced = f.get_bool("moe.expert_group_balanced")) {
    cfg.router.group_balanced = *balanced;
    if (*balanced && (cfg.router.n_group < 2 || cfg.n_expert_used % cfg.router.n_group != 0))
      throw FormatError(f.path() + ": moe.expert_group_balanced needs expert_group_count > 1 dividing expert_used_count");
  }
  if (auto nulls = f.get_uint("moe.null_expert_count")) {
    if (*nulls > 4096) throw FormatError(f.path() + ": moe.null_expert_count out of range");
    cfg.router.n_null = static_cast<int>(*nulls);
  }
}

}  // namespace moe

namespace moe {

void read_swa_pattern(const GgufFile& f, ModelConfig& c, uint32_t default_period, bool dense_first) {
  const std::string key = c.arch + ".attention.sliding_window_pattern";
  c.layer_swa.assign(static_cast<size_t>(c.n_layer), false);
  const GgufValue* v = f.find(key);
  if (v && v->is_array()) {
    auto flags = f.get_int_array(key);
    if (!flags || flags->size() != static_cast<size_t>(c.n_layer))
      throw FormatError(f.path() + ": metadata '" + key + "' must have one entry per layer (" +
                        std::to_string(c.n_layer) + ")");
    for (size_t i = 0; i < flags->size(); ++i) c.layer_swa[i] = (*flags)[i] != 0;
  } else {
    uint32_t period = default_period;
    if (v) {
      auto p = f.get_uint(key);
      if (!p || *p > static_cast<uint64_t>(c.n_layer) * 2 + 2)
        throw FormatError(f.path() + ": metadata '" + key + "' must be a small unsigned integer or a per-layer array");
      period = static_cast<uint32_t>(*p);
    }
    for (uint32_t il = 0; il < static_cast<uint32_t>(c.n_layer); ++il)
      c.layer_swa[il] = period == 0 || (dense_first ? il % period != 0 : il % period < period - 1);
  }
  bool any = false;
  for (bool b : c.layer_swa) any |= b;
  if (!any) throw FormatError(f.path() + ": '" + key + "' leaves no sliding-window layer, but the model has a window");
}

}  // namespace moe
