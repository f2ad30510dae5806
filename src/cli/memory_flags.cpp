#include "cli/memory_flags.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "experts/expert_stats.h"
#include "moe/cached_store.h"

namespace moe::cli {

// Measured: an OLMoE-sized run in a 4 GiB cgroup decodes 5x faster with 256 MiB left beside the weights than with
// 64 MiB: the limit counts the pages of the binary and its libraries too, and a process at its limit refaults them.
constexpr size_t kProcessReserve = size_t{256} << 20;

void MemoryFlags::add_to(CLI::App& app, const char* pack_default) {
  const char* g = "Memory";
  pack_experts = pack_default;
  app.add_option("--mem-budget", budget,
                 "memory for the weights (e.g. 6G, 6500M, bytes): experts beyond what fits are read from disk on "
                 "demand into a cache (default: all weights in memory)")
      ->group(g);
  app.add_option("--cache-policy", policy, "expert cache replacement: lru, lfu (with aging) or slru (segmented LRU)")
      ->check(CLI::IsMember({"lru", "lfu", "slru"}))
      ->capture_default_str()
      ->group(g);
  app.add_option("--pin-from", pin_from, "stats.json from moe profile: keep the most used experts always in the cache")
      ->group(g);
  app.add_option("--pin-count", pin_count, "with --pin-from: experts to pin (default: half the cache)")->group(g);
  app.add_option("--io-threads", io_threads, "threads reading experts from disk")
      ->check(CLI::Range(1, 64))
      ->capture_default_str()
      ->group(g);
  app.add_flag("--no-prefetch", no_prefetch, "do not load the next layer's predicted experts ahead of its router")
      ->group(g);
  app.add_option("--cache-type", cache_type, "KV cache storage: f32 (exact), f16 (half the memory) or q8_0")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}))
      ->capture_default_str()
      ->group(g);
  app.add_option("--pack-experts", pack_experts,
                 "without --mem-budget, when the weights get their repacked copy: 'use' (the prompt's first step "
                 "runs them on the file's layout, the second packs the non-expert weights and each expert is packed "
                 "when first used after that: a sooner first token) or 'load' (all before the first token)")
      ->check(CLI::IsMember({"use", "load"}))
      ->capture_default_str()
      ->group(g);
}

DType MemoryFlags::kv_type() const {
  if (cache_type == "f16") return DType::F16;
  if (cache_type == "q8_0") return DType::Q8_0;
  if (cache_type == "f32") return DType::F32;
  throw UsageError("--cache-type must be f32, f16 or q8_0, not '" + cache_type + "'");
}

namespace {

// The hottest (layer, expert) pairs of a stats file over all its tasks, most selected first.
std::vector<std::pair<int, int>> hottest_experts(const Model& model, const std::string& path) {
  const ExpertStatsFile stats = ExpertStatsFile::load(path);
  stats.check_model(model, path);
  std::vector<std::tuple<double, int, int>> all;
  const int n_layer = model.config().n_layer, n_expert = model.config().n_expert;
  for (int l = 0; l < n_layer; ++l) {
    if (!model.config().layer_is_moe[static_cast<size_t>(l)]) continue;
    for (int e = 0; e < n_expert; ++e) {
      double f = 0;
      for (const TaskStats& t : stats.tasks) f += t.frequency()[static_cast<size_t>(l)][static_cast<size_t>(e)];
      all.emplace_back(-f, l, e);
    }
  }
  std::sort(all.begin(), all.end());
  std::vector<std::pair<int, int>> out;
  for (const auto& [f, l, e] : all) out.emplace_back(l, e);
  return out;
}

}  // namespace

std::shared_ptr<ExpertStore> MemoryFlags::make_store(const Model& model, int max_active, bool pack) const {
  if (!active()) {
    if (!pin_from.empty()) throw UsageError("--pin-from needs --mem-budget");
    return nullptr;
  }
  MemoryBudget b;
  b.bytes = parse_size(budget, "--mem-budget");
  b.policy = parse_cache_policy(policy);
  b.io_threads = io_threads;
  // The budget is the process's footprint, so that a memory limit equal to it holds: besides the weights, a fixed
  // reserve for code and libraries, heap, scratch, I/O staging and a short KV cache (fixed, so that a budget means
  // the same cache on every machine).
  b.reserve = kProcessReserve;
  const WeightMemory w = weight_memory(model, pack, max_active);
  if (!pin_from.empty()) {
    auto hot = hottest_experts(model, pin_from);
    const size_t slots = b.bytes > w.resident + b.reserve
                             ? (b.bytes - w.resident - b.reserve) / std::max<size_t>(1, w.expert_slot) : 0;
    const size_t n = pin_count >= 0 ? static_cast<size_t>(pin_count) : slots / 2;
    hot.resize(std::min(hot.size(), n));
    b.pinned = std::move(hot);
  }
  auto store = make_budget_store(model, b, pack, max_active);
  const auto& cs = static_cast<const CachedExpertStore&>(*store);
  std::fprintf(stderr,
               "memory: budget %s = resident weights %s + reserve %s + expert cache %s (%d of %zu experts, %s each, %s policy%s)\n",
               format_bytes(b.bytes).c_str(), format_bytes(w.resident).c_str(), format_bytes(b.reserve).c_str(),
               format_bytes(static_cast<size_t>(cs.n_slots()) * cs.slot_bytes()).c_str(), cs.n_slots(),
               w.experts / std::max<size_t>(1, w.expert_slot), format_bytes(cs.slot_bytes()).c_str(), policy.c_str(),
               b.pinned.empty() ? "" : (", " + std::to_string(b.pinned.size()) + " pinned").c_str());
  return store;
}

std::shared_ptr<ExpertStore> MemoryFlags::make_store(const Model& model, const RoutingControl& ctl, bool pack) const {
  const ModelConfig& c = model.config();
  return make_store(model, ctl.max_experts_per_token(c.n_expert, c.n_expert_used), pack);
}

void print_memory_summary(FILE* out, const ExpertStore& store, int64_t tokens) {
  const ExpertStoreStats s = store.stats();
  const double hit = s.requests ? 100.0 * static_cast<double>(s.hits) / static_cast<double>(s.requests) : 100.0;
  const double per_tok = tokens > 0 ? static_cast<double>(s.bytes_read) / static_cast<double>(tokens) : 0.0;
  std::fprintf(out, "memory: expert cache hit rate %.1f%%, %.1f MiB read from disk per token (%.2f GB in %.2f s of reads)",
               hit, per_tok / (1024.0 * 1024.0), static_cast<double>(s.bytes_read) / 1e9, s.read_seconds);
  if (s.prefetch_hinted > 0)
    std::fprintf(out, ", prefetch precision %.0f%% recall %.0f%%",
                 100.0 * static_cast<double>(s.prefetch_hint_hits) / static_cast<double>(s.prefetch_hinted),
                 s.acquired_after_hint
                     ? 100.0 * static_cast<double>(s.prefetch_hint_hits) / static_cast<double>(s.acquired_after_hint)
                     : 0.0);
  std::fprintf(out, ", stalled on I/O %.2f s, peak RSS %s\n", s.stall_seconds, format_bytes(peak_rss_bytes()).c_str());
}

}  // namespace moe::cli
