#include "train/params.h"

#include <cmath>
#include <cstdint>

#include "format/tensor_names.h"
#include "train/rng.h"

namespace moe::train {

static constexpr size_t kAbsent = SIZE_MAX;

size_t ParamLayout::add(const std::string& name, std::vector<int64_t> shape, bool decay, ParamTensor::Init init) {
  ParamTensor t;
  t.name = name;
  t.size = 1;
  for (int64_t s : shape) t.size *= static_cast<size_t>(s);
  t.shape = std::move(shape);
  t.offset = total_;
  t.decay = decay;
  t.init = init;
  total_ += (t.size + 15) / 16 * 16;  // 64-byte aligned tensors
  tensors_.push_back(std::move(t));
  return tensors_.back().offset;
}

ParamLayout::ParamLayout(const ModelShape& m) {
  const int64_t d = m.n_embd, q = m.q_dim(), kv = m.kv_dim(), hd = m.head_dim;
  const int64_t E = m.n_expert, f = m.n_ff_exp, fs = m.n_ff_shexp;
  tok_embd = add(tensor_name::kTokenEmbd, {m.n_vocab, d}, true, ParamTensor::Normal);
  layers.resize(static_cast<size_t>(m.n_layer));
  for (int il = 0; il < m.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    LayerOffsets& L = layers[static_cast<size_t>(il)];
    L.attn_norm = add(b + tensor_name::kAttnNorm, {d}, false, ParamTensor::Ones);
    L.wq = add(b + tensor_name::kAttnQ, {q, d}, true, ParamTensor::Normal);
    L.wk = add(b + tensor_name::kAttnK, {kv, d}, true, ParamTensor::Normal);
    L.wv = add(b + tensor_name::kAttnV, {kv, d}, true, ParamTensor::Normal);
    L.wo = add(b + tensor_name::kAttnOutput, {d, q}, true, ParamTensor::ScaledNormal);
    L.q_norm = add(b + tensor_name::kAttnQNorm, {hd}, false, ParamTensor::Ones);
    L.k_norm = add(b + tensor_name::kAttnKNorm, {hd}, false, ParamTensor::Ones);
    L.ffn_norm = add(b + tensor_name::kFfnNorm, {d}, false, ParamTensor::Ones);
    L.router = add(b + tensor_name::kFfnGateInp, {m.n_slots(), d}, true, ParamTensor::Normal);
    L.gate_exps = add(b + tensor_name::kFfnGateExps, {E, f, d}, true, ParamTensor::Normal);
    L.up_exps = add(b + tensor_name::kFfnUpExps, {E, f, d}, true, ParamTensor::Normal);
    L.down_exps = add(b + tensor_name::kFfnDownExps, {E, d, f}, true, ParamTensor::ScaledNormal);
    L.gate_sh = L.up_sh = L.down_sh = L.sh_gate = kAbsent;
    if (fs > 0) {
      L.gate_sh = add(b + tensor_name::kFfnGateShexp, {fs, d}, true, ParamTensor::Normal);
      L.up_sh = add(b + tensor_name::kFfnUpShexp, {fs, d}, true, ParamTensor::Normal);
      L.down_sh = add(b + tensor_name::kFfnDownShexp, {d, fs}, true, ParamTensor::ScaledNormal);
      if (m.shared_gate) L.sh_gate = add(b + tensor_name::kFfnGateInpShexp, {d}, true, ParamTensor::Normal);
    }
  }
  output_norm = add(tensor_name::kOutputNorm, {d}, false, ParamTensor::Ones);
  output = m.tied ? tok_embd : add(tensor_name::kOutput, {m.n_vocab, d}, true, ParamTensor::Normal);
}

const ParamTensor* ParamLayout::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void init_params(const ParamLayout& layout, const ModelShape& m, float std, uint64_t seed, float* params) {
  const double scaled = std / std::sqrt(2.0 * m.n_layer);
  for (size_t i = 0; i < layout.tensors().size(); ++i) {
    const ParamTensor& t = layout.tensors()[i];
    float* p = params + t.offset;
    if (t.init == ParamTensor::Ones) {
      for (size_t j = 0; j < t.size; ++j) p[j] = 1.0f;
      continue;
    }
    Rng rng(mix_key(seed, 0x1A17, i));
    const double s = t.init == ParamTensor::ScaledNormal ? scaled : std;
    for (size_t j = 0; j < t.size; ++j) p[j] = static_cast<float>(s * rng.normal());
  }
}

ParamCounts count_params(const ModelShape& m) {
  const int64_t d = m.n_embd;
  const int64_t attn = 2 * d * m.q_dim() + 2 * d * m.kv_dim() + 2 * m.head_dim + 2 * d;
  const int64_t expert = 3 * d * m.n_ff_exp;
  const int64_t shared = m.n_ff_shexp > 0 ? 3 * d * m.n_ff_shexp + (m.shared_gate ? d : 0) : 0;
  const int64_t router = static_cast<int64_t>(m.n_slots()) * d;
  ParamCounts c;
  c.embedding = static_cast<int64_t>(m.n_vocab) * d;
  const int64_t head = m.tied ? 0 : c.embedding;
  c.total = c.embedding + head + d + m.n_layer * (attn + router + m.n_expert * expert + shared);
  // Active: what one token's forward touches (its embedding row is a lookup, the head is a full matmul).
  c.active = static_cast<int64_t>(m.n_vocab) * d + d + m.n_layer * (attn + router + m.n_expert_used * expert + shared);
  return c;
}

}  // namespace moe::train
