// Facts about a model file for `moe info` and benchmarks: parameter counts (total and active per token),
// bytes of weights read per generated token, tensor types, memory needed.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "model/model.h"

namespace moe {

struct ModelStats {
  int64_t params_total = 0;
  int64_t params_active = 0;       // per token: everything but the experts not selected (k of E)
  int64_t params_experts = 0;      // routed expert parameters (all experts)
  int64_t bytes_total = 0;         // tensor data bytes
  int64_t bytes_per_token = 0;     // weights read per generated token: non-expert tensors (the embedding
                                   // row only) + k experts per MoE layer
  std::map<std::string, std::pair<int, int64_t>> types;  // type name -> (tensors, bytes)
  int64_t kv_bytes_per_position = 0;
};

ModelStats model_stats(const Model& m, int top_k_override = 0);

// "1.23 GB", "456 MB", "7.9 KB"
std::string human_bytes(double bytes);
// "6.92 B", "1.3 M"
std::string human_count(double n);

}  // namespace moe
