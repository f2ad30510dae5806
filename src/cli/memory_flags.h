// The memory flags shared by run, chat, perplexity, bench, profile (and serve): a RAM budget for the weights,
// with experts streamed from disk into a cache (--mem-budget), its replacement policy, hot experts pinned from
// `moe profile` statistics, and the run summary of cache behaviour.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "model/context.h"
#include "model/expert_memory.h"

namespace moe::cli {

struct MemoryFlags {
  std::string budget, policy = "lfu", pin_from;
  int pin_count = -1;  // -1: half of the cache
  int io_threads = 2;
  bool no_prefetch = false;
  std::string cache_type = "f32";  // --cache-type: what the KV cache stores
  std::string pack_experts = "use";  // --pack-experts: when resident experts get their packed copy
  DType kv_type() const;
  bool pack_experts_on_use() const { return pack_experts == "use"; }

  // pack_default: --pack-experts when not given ("use", or "load" for benchmarks of steady-state speed).
  void add_to(CLI::App& app, const char* pack_default = "use");
  bool active() const { return !budget.empty(); }
  // The expert store for these flags (null: every expert resident), for contexts that will use `max_active`
  // experts per token at most (k, or more when experts are forced). Prints the cache's size to stderr.
  std::shared_ptr<ExpertStore> make_store(const Model& model, int max_active, bool pack) const;
  // The same for the experts per token a routing control allows.
  std::shared_ptr<ExpertStore> make_store(const Model& model, const RoutingControl& ctl, bool pack = true) const;
};

// One line on stderr: cache hit rate, disk bytes per token, prefetch precision/recall, I/O stall, peak RSS.
// tokens: tokens evaluated since the store's statistics were reset (for the per-token figures).
void print_memory_summary(FILE* out, const ExpertStore& store, int64_t tokens);

}  // namespace moe::cli
