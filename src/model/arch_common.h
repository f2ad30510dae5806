// Tensor binding shared by the architecture files: attention, dense FFN, routed experts, shared expert.
#pragma once
#include <string>

#include "model/model.h"
#include "model/weights.h"

namespace moe {

std::string layer_tensor(int il, const char* name);  // "blk.{il}.{name}"

// attn_norm, q/k/v (+ optional biases), output (+ optional bias), q/k norms per cfg.qk_norm.
void bind_attention(TensorBinder& b, const ModelConfig& cfg, int il, LayerWeights& lw);
// ffn_norm + ffn_{gate,up,down} of width cfg.n_ff.
void bind_dense_ffn(TensorBinder& b, const ModelConfig& cfg, int il, LayerWeights& lw);
// ffn_norm + router + stacked experts (+ optional selection bias exp_probs_b).
void bind_moe_ffn(TensorBinder& b, const ModelConfig& cfg, int il, LayerWeights& lw);
// Shared expert of width cfg.n_ff_shexp (+ its sigmoid gate when cfg.shared_expert_gate).
void bind_shared_expert(TensorBinder& b, const ModelConfig& cfg, int il, LayerWeights& lw);

// Reads the optional keys our own writer emits so that files state their semantics instead of relying on
// per-architecture defaults: expert_weights_norm and the per-layer MoE pattern (moe.layer_is_moe).
void read_router_overrides(const GgufFile& f, ModelConfig& cfg);

}  // namespace moe

namespace moe {

// Sliding-window layers from {arch}.attention.sliding_window_pattern, as llama.cpp reads it: a period P (layer il
// is windowed when il % P < P - 1, or with dense_first when il % P != 0; P = 0: every layer) or a per-layer array
// of flags. Without the key, default_period applies. Errors name the file and the key.
void read_swa_pattern(const GgufFile& f, ModelConfig& c, uint32_t default_period, bool dense_first);

}  // namespace moe
