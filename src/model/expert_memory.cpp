#include "model/expert_memory.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "kernels/packed.h"
#include "moe/cached_store.h"

namespace moe {

namespace {

std::vector<LayerExperts> layer_experts(const Model& m) {
  std::vector<LayerExperts> v;
  for (const LayerWeights& lw : m.layers) v.push_back(lw.moe.experts());
  return v;
}

size_t stacked_bytes(const ExpertMats& e) { return e.present() ? e.expert_stride * static_cast<size_t>(e.n_expert) : 0; }

}  // namespace

WeightMemory weight_memory(const Model& m, bool pack, int max_active) {
  WeightMemory w;
  std::vector<const uint8_t*> expert_data;
  for (const LayerWeights& lw : m.layers)
    for (const ExpertMats* e : {&lw.moe.gate, &lw.moe.up, &lw.moe.down})
      if (e->present()) {
        w.experts += stacked_bytes(*e);
        expert_data.push_back(e->data);
      }
  for (const GgufTensorInfo& t : m.file().tensors()) {
    bool is_expert = false;
    for (const uint8_t* p : expert_data) is_expert = is_expert || p == t.data;
    if (is_expert) continue;
    const int64_t cols = t.ne[0];
    const int64_t rows = cols > 0 ? t.n_elements() / cols : 0;
    const bool packs = pack && t.n_dims >= 2 && packable(t.type) && rows >= kPackRows;
    w.resident += packs ? packed_bytes(t.type, rows, cols) : t.nbytes;
  }
  w.expert_slot = expert_slot_bytes(layer_experts(m), pack);
  w.max_active = std::max(1, max_active);
  return w;
}

std::shared_ptr<ExpertStore> make_budget_store(const Model& m, const MemoryBudget& b, bool pack, int max_active) {
  const WeightMemory w = weight_memory(m, pack, max_active);
  if (w.expert_slot == 0) throw UsageError("--mem-budget: the model has no routed experts to stream");
  const size_t minimum = w.min_budget() + b.reserve;
  if (b.bytes < minimum)
    throw UsageError("--mem-budget " + format_bytes(b.bytes) + " is too small: the resident weights take " +
                     format_bytes(w.resident) + ", one layer's " + std::to_string(w.max_active) +
                     " active experts " + format_bytes(w.expert_slot * static_cast<size_t>(w.max_active)) +
                     " and buffers, code and KV cache " + format_bytes(b.reserve) + "; the minimum budget is " +
                     format_bytes(minimum) + " (" + std::to_string(minimum) + " bytes)");
  CachedStoreConfig c;
  c.path = m.file().path();
  c.file_base = m.file().base();
  c.layers = layer_experts(m);
  // Never more slots than there are experts: a budget above the model's size holds them all.
  c.cache_bytes = std::min(b.bytes - w.resident - b.reserve, w.expert_slot * (w.experts / std::max<size_t>(1, w.expert_slot) + 1));
  c.policy = b.policy;
  c.experts_per_token = m.config().n_expert_used;
  c.pack = pack;
  c.io_threads = b.io_threads;
  c.pinned = b.pinned;
  c.min_free_slots = w.max_active;
  return std::make_shared<CachedExpertStore>(std::move(c));
}

std::shared_ptr<ExpertStore> make_lazy_store(const Model& m, bool pack) {
  CachedStoreConfig c;
  c.path = m.file().path();
  c.file_base = m.file().base();
  c.layers = layer_experts(m);
  size_t n = 0;
  for (const LayerExperts& l : c.layers) n += l.present() ? static_cast<size_t>(l.gate.n_expert) : 0;
  // One slot per expert, so nothing is ever evicted; untouched slots cost address space, not memory.
  c.cache_bytes = expert_slot_bytes(c.layers, pack) * n;
  c.pack = pack;
  return std::make_shared<CachedExpertStore>(std::move(c));
}

size_t parse_size(const std::string& text, const std::string& flag) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  const std::string num = text.substr(0, i);
  std::string unit = text.substr(i);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.size() > 1 && (unit.ends_with("IB") || unit.ends_with("B"))) unit = unit.substr(0, 1);
  double mult = 1;
  if (unit == "K") mult = 1024.0;
  else if (unit == "M") mult = 1024.0 * 1024;
  else if (unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty() && unit != "B") mult = -1;
  char* end = nullptr;
  const double v = num.empty() ? -1 : std::strtod(num.c_str(), &end);
  if (mult < 0 || v < 0 || !end || *end != '\0' || !std::isfinite(v * mult) || v * mult >= 9.0e18)
    throw UsageError(flag + ": '" + text + "' is not a size (e.g. 6G, 6500M, 123456 bytes)");
  return static_cast<size_t>(v * mult);
}

std::string format_bytes(size_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else std::snprintf(buf, sizeof buf, "%zu bytes", bytes);
  return buf;
}

}  // namespace moe
