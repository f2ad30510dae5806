// Memory for a model's weights: what stays resident (embeddings, attention, norms, routers, shared experts, output)
// and what the experts take, and the expert store that fits a memory budget.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "moe/cache_policy.h"
#include "moe/expert_store.h"

namespace moe {

struct WeightMemory {
  size_t resident = 0;     // every non-expert tensor, as loaded (packed copies where the type has one)
  size_t experts = 0;      // all routed experts
  size_t expert_slot = 0;  // one expert (gate + up + down) of the largest layer, as a cache slot holds it
  int max_active = 0;      // most experts one token uses in a layer (k, or more with forced experts)
  // The smallest budget that runs: the resident part plus one layer's active experts.
  size_t min_budget() const { return resident + expert_slot * static_cast<size_t>(max_active); }
};
WeightMemory weight_memory(const Model& m, bool pack, int max_active);

struct MemoryBudget {
  size_t bytes = 0;    // 0: no budget (every expert resident)
  size_t reserve = 0;  // of `bytes`, what the process needs besides the weights (heap, scratch, KV cache)
  CachePolicyKind policy = CachePolicyKind::Lfu;
  int io_threads = 2;
  std::vector<std::pair<int, int>> pinned;  // (layer, expert) to keep resident, hottest first
};

// The expert store for a budget: a cached store with what the resident weights leave. Throws UsageError naming
// the minimum budget when even one layer's active experts do not fit. `lazy` (no budget): a store that reads each
// expert on first use and never evicts (PreMoe retrieval reads only the experts kept).
std::shared_ptr<ExpertStore> make_budget_store(const Model& m, const MemoryBudget& b, bool pack, int max_active);
std::shared_ptr<ExpertStore> make_lazy_store(const Model& m, bool pack);

// "6G", "6500M", "512K", "123456" (bytes; binary units) -> bytes; UsageError naming the flag otherwise.
size_t parse_size(const std::string& text, const std::string& flag);
std::string format_bytes(size_t bytes);  // "6.25 GiB"

}  // namespace moe
