#include "model/model_info.h"

#include <cstdio>

#include "format/tensor_names.h"

namespace moe {

ModelStats model_stats(const Model& m, int top_k_override) {
  const ModelConfig& c = m.config();
  ModelStats s;
  const int k = top_k_override > 0 ? top_k_override : c.n_expert_used;
  for (const auto& t : m.file().tensors()) {
    const int64_t n = t.n_elements();
    s.params_total += n;
    s.bytes_total += static_cast<int64_t>(t.nbytes);
    auto& ty = s.types[dtype_name(t.type)];
    ty.first += 1;
    ty.second += static_cast<int64_t>(t.nbytes);
    const bool is_expert = t.name.find("_exps.") != std::string::npos;
    if (is_expert && t.n_dims == 3 && t.ne[2] > 0) {
      s.params_experts += n;
      s.params_active += n / t.ne[2] * k;
      s.bytes_per_token += static_cast<int64_t>(t.nbytes) / t.ne[2] * k;
    } else if (t.name == tensor_name::kTokenEmbd) {
      s.params_active += n;
      s.bytes_per_token += static_cast<int64_t>(t.row_bytes());  // one row is looked up
      if (c.tied_output) s.bytes_per_token += static_cast<int64_t>(t.nbytes);  // and the whole head is read
    } else {
      s.params_active += n;
      s.bytes_per_token += static_cast<int64_t>(t.nbytes);
    }
  }
  s.kv_bytes_per_position = 2LL * c.n_layer * c.n_head_kv * c.head_dim * static_cast<int64_t>(sizeof(float));
  // MLA caches one [latent | rope key] row per position and layer, whatever the head count.
  if (c.kv_lora_rank > 0)
    s.kv_bytes_per_position = static_cast<int64_t>(c.n_layer) * (c.kv_lora_rank + c.n_rot) * static_cast<int64_t>(sizeof(float));
  return s;
}

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.1f KB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f B", b);
  return buf;
}

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.1f K", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

}  // namespace moe
