#include "train/export_gguf.h"

#include <cstring>

#include "core/error.h"
#include "core/quant.h"
#include "format/gguf.h"
#include "format/tensor_names.h"

namespace moe::train {

void export_gguf(const TrainModel& model, const TextCodec& codec, const std::string& path, const ExportOptions& opt) {
  if (opt.type != DType::F32 && opt.type != DType::F16 && opt.type != DType::BF16)
    throw UsageError("--export-type must be f32, f16 or bf16");
  const ModelShape& m = model.shape();
  const RoutingOptions& r = m.routing;
  const std::string a = "qwen3moe.";
  GgufWriter w;
  auto u32 = [](int v) { return GgufValue::make_u32(static_cast<uint32_t>(v)); };
  w.set("general.architecture", GgufValue::make_string("qwen3moe"));
  w.set("general.name", GgufValue::make_string(opt.name));
  if (!opt.description.empty()) w.set("general.description", GgufValue::make_string(opt.description));
  w.set(a + "context_length", u32(m.n_ctx));
  w.set(a + "embedding_length", u32(m.n_embd));
  w.set(a + "block_count", u32(m.n_layer));
  w.set(a + "feed_forward_length", u32(m.n_ff_exp));
  w.set(a + "attention.head_count", u32(m.n_head));
  w.set(a + "attention.head_count_kv", u32(m.n_head_kv));
  w.set(a + "attention.key_length", u32(m.head_dim));
  w.set(a + "attention.value_length", u32(m.head_dim));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::make_f32(m.rms_eps));
  w.set(a + "rope.freq_base", GgufValue::make_f32(m.rope_theta));
  w.set(a + "rope.dimension_count", u32(m.head_dim));
  w.set(a + "expert_count", u32(m.n_expert));
  w.set(a + "expert_used_count", u32(m.n_expert_used));
  w.set(a + "expert_feed_forward_length", u32(m.n_ff_exp));
  w.set(a + "expert_weights_norm", GgufValue::make_bool(r.norm_topk));
  w.set(a + "expert_weights_scale", GgufValue::make_f32(r.weights_scale));
  w.set(a + "expert_gating_func", u32(r.gating == Gating::Softmax ? 1 : 2));
  if (r.n_group > 1) {
    w.set(a + "expert_group_count", u32(r.n_group));
    w.set(a + "expert_group_used_count", u32(r.n_group));
    w.set("moe.expert_group_balanced", GgufValue::make_bool(true));
  }
  if (r.n_null > 0) w.set("moe.null_expert_count", u32(r.n_null));
  if (m.n_ff_shexp > 0) {
    w.set(a + "expert_shared_feed_forward_length", u32(m.n_ff_shexp));
    if (m.shared_gate) w.set("moe.shared_expert_gate", GgufValue::make_bool(true));
  }
  codec.write_metadata(w);
  if (codec.n_vocab() != m.n_vocab)
    throw Error("export: the vocabulary has " + std::to_string(codec.n_vocab()) + " tokens but the model " +
                std::to_string(m.n_vocab));

  const float* P = model.params.data();
  for (const ParamTensor& t : model.layout().tensors()) {
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());  // ggml order
    const bool matrix = t.shape.size() >= 2 && t.name.find("ffn_gate_inp") == std::string::npos;
    const DType type = matrix ? opt.type : DType::F32;
    const int64_t cols = ne[0];
    const size_t rb = row_bytes(type, cols);
    const size_t rows = t.size / static_cast<size_t>(cols);
    std::vector<uint8_t> bytes(rows * rb);
    for (size_t i = 0; i < rows; ++i) {
      const float* src = P + t.offset + i * static_cast<size_t>(cols);
      if (type == DType::F32) std::memcpy(bytes.data() + i * rb, src, rb);
      else quantize_row(type, src, bytes.data() + i * rb, cols);
    }
    w.add_tensor_owned(t.name, type, ne, std::move(bytes));
    // The selection bias follows its layer's router, as llama.cpp orders exp_probs_b.
    if (t.name.find(tensor_name::kFfnGateInp) != std::string::npos && r.bias_rate > 0) {
      const int il = std::stoi(t.name.substr(4));
      const std::vector<float>& b = model.sel_bias[static_cast<size_t>(il)];
      std::vector<uint8_t> bb(b.size() * sizeof(float));
      std::memcpy(bb.data(), b.data(), bb.size());
      w.add_tensor_owned("blk." + std::to_string(il) + ".exp_probs_b.bias", DType::F32, {m.n_expert}, std::move(bb));
    }
  }
  w.write(path);
}

}  // namespace moe::train
