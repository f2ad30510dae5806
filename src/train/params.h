// The trainable parameters as one float buffer carved into named tensors (llm.c style). Gradients and the
// two Adam moments use the same layout, so the optimizer and checkpoints see flat arrays. Tensor names are
// the GGUF names; shapes are row-major [rows][cols] (ggml ne = {cols, rows, n_expert}).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "train/train_config.h"

namespace moe::train {

struct ParamTensor {
  std::string name;            // GGUF tensor name, e.g. "blk.0.ffn_gate_exps.weight"
  std::vector<int64_t> shape;  // outermost first: {n_expert, rows, cols} or {rows, cols} or {n}
  size_t offset = 0;           // in floats from the start of the buffer
  size_t size = 0;             // floats
  bool decay = false;          // weight decay applies (matrices), not to norm weights
  enum Init { Normal, ScaledNormal, Ones } init = Normal;
};

// Offsets (in floats) of one layer's tensors; SIZE_MAX for absent ones.
struct LayerOffsets {
  size_t attn_norm, wq, wk, wv, wo, q_norm, k_norm;  // wq [q_dim, n_embd], wo [n_embd, q_dim]
  size_t ffn_norm, router;                           // router [n_slots, n_embd]
  size_t gate_exps, up_exps, down_exps;              // [E, n_ff, n_embd], [E, n_ff, n_embd], [E, n_embd, n_ff]
  size_t gate_sh, up_sh, down_sh, sh_gate;           // shared expert [fs, d], [fs, d], [d, fs]; gate [d]
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelShape& m);

  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  size_t total() const { return total_; }
  const ParamTensor* find(const std::string& name) const;

  size_t tok_embd = 0, output_norm = 0, output = 0;  // output == tok_embd when tied
  std::vector<LayerOffsets> layers;

 private:
  size_t add(const std::string& name, std::vector<int64_t> shape, bool decay, ParamTensor::Init init);
  std::vector<ParamTensor> tensors_;
  size_t total_ = 0;
};

// Fills params: N(0, std) for matrices, N(0, std / sqrt(2 n_layer)) for the projections into the residual
// stream (attn_output, ffn_down*), ones for norm weights. Each tensor draws from its own seeded stream.
void init_params(const ParamLayout& layout, const ModelShape& m, float std, uint64_t seed, float* params);

// Parameter counts for reports: total, and active per token (routed experts counted k times, embeddings once).
struct ParamCounts {
  int64_t total = 0, active = 0, embedding = 0;
};
ParamCounts count_params(const ModelShape& m);

}  // namespace moe::train
