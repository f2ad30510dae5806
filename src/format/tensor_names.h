// GGUF tensor names (llama.cpp's layout), spelled once: the model loader, the synthetic-model writer, the llama2.c
// converter, moe info and training's export all use these. Per-layer tensors are "blk.<layer>." + name.
#pragma once
#include <string>

namespace moe::tensor_name {

inline constexpr char kAttnKBias[] = "attn_k.bias";
inline constexpr char kAttnK[] = "attn_k.weight";
inline constexpr char kAttnKNorm[] = "attn_k_norm.weight";
inline constexpr char kAttnNorm[] = "attn_norm.weight";
inline constexpr char kAttnOutputBias[] = "attn_output.bias";
inline constexpr char kAttnOutput[] = "attn_output.weight";
inline constexpr char kAttnQBias[] = "attn_q.bias";
inline constexpr char kAttnQ[] = "attn_q.weight";
inline constexpr char kAttnQNorm[] = "attn_q_norm.weight";
inline constexpr char kAttnQkv[] = "attn_qkv.weight";
inline constexpr char kAttnVBias[] = "attn_v.bias";
inline constexpr char kAttnV[] = "attn_v.weight";
inline constexpr char kExpProbsBBias[] = "exp_probs_b.bias";
inline constexpr char kFfnDown[] = "ffn_down.weight";
inline constexpr char kFfnDownExps[] = "ffn_down_exps.weight";
inline constexpr char kFfnDownShexp[] = "ffn_down_shexp.weight";
inline constexpr char kFfnGate[] = "ffn_gate.weight";
inline constexpr char kFfnGateExps[] = "ffn_gate_exps.weight";
inline constexpr char kFfnGateInp[] = "ffn_gate_inp.weight";
inline constexpr char kFfnGateInpShexp[] = "ffn_gate_inp_shexp.weight";
inline constexpr char kFfnGateShexp[] = "ffn_gate_shexp.weight";
inline constexpr char kFfnNorm[] = "ffn_norm.weight";
inline constexpr char kFfnUp[] = "ffn_up.weight";
inline constexpr char kFfnUpExps[] = "ffn_up_exps.weight";
inline constexpr char kFfnUpShexp[] = "ffn_up_shexp.weight";
inline constexpr char kOutput[] = "output.weight";
inline constexpr char kOutputNorm[] = "output_norm.weight";
inline constexpr char kRopeFreqs[] = "rope_freqs.weight";
inline constexpr char kTokenEmbd[] = "token_embd.weight";

// "blk.<layer>.<name>"
inline std::string blk(int layer, const char* name) { return "blk." + std::to_string(layer) + "." + name; }

}  // namespace moe::tensor_name
