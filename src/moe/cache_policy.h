// Which cached expert to evict. An expert cache sees a stream of (layer, expert) requests in which a few experts
// per layer are hot and most come back irregularly; plain LRU lets one burst of cold experts push the hot ones
// out. The policies here keep per-slot bookkeeping and pick a victim among the slots the store says may go.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>
#include <deque>
#include <unordered_map>

namespace moe {

enum class CachePolicyKind {
  Lru,   // least recently used
  Lfu,   // least frequently used, frequencies halve every `half_life` epochs (aging)
  Slru,  // segmented LRU: a protected segment (80%) for experts used at least twice, probation for the rest
};
CachePolicyKind parse_cache_policy(const std::string& name);  // "lru" | "lfu" | "slru"; UsageError otherwise
const char* cache_policy_name(CachePolicyKind k);

// LFU's half-life in epochs (one per layer request) for a model: the tokens it takes an average expert to be used
// 8 times (8 * n_expert / experts_per_token), times the MoE layers. Shorter windows estimate popularity from too few
// uses: the old rule (as many epochs as slots) was 6 tokens on the default model at half its experts and lost 3-4
// points of hit rate on its traces; from 4 to 32 uses the hit rates moved by less than a point.
double lfu_half_life(int moe_layers, int n_expert, int experts_per_token);

class CachePolicy {
 public:
  // half_life: LFU aging in epochs; <= 0 means as many epochs as slots (for traces without a model's shape).
  CachePolicy(CachePolicyKind kind, int n_slots, double half_life = 0);
  CachePolicyKind kind() const { return kind_; }
  // A new request epoch (the store calls this once per layer request); ages frequencies.
  void tick() { ++now_; }
  // slot now holds a newly loaded expert (counts as one use). `key` names the expert: an expert evicted not long ago
  // comes back with the frequency it had (LFU) or straight into the protected segment (SLRU), as 2Q's and
  // TinyLFU's ghost entries do; without that history a hot expert whose reuse distance exceeds the cache is
  // evicted before its second use every time, and frequency-aware policies degrade to LRU.
  void on_insert(int slot, int64_t key);
  void on_hit(int slot);     // the expert in slot was requested again
  void on_remove(int slot);  // slot emptied (its history is kept as a ghost entry)
  // The slot to evict among those with evictable[slot] != 0, or -1 when there is none.
  int victim(std::span<const uint8_t> evictable) const;

 private:
  double frequency(int slot) const;
  CachePolicyKind kind_;
  uint64_t now_ = 0;
  struct Meta {
    uint64_t last = 0;      // epoch of the last use
    double freq = 0;        // LFU: aged use count at `last`
    bool protected_ = false;  // SLRU segment
    bool used = false;
    int64_t key = -1;
  };
  struct Ghost {
    uint64_t last;
    double freq;
    uint64_t seq;  // its entry in ghost_order_
  };
  std::vector<Meta> meta_;
  std::unordered_map<int64_t, Ghost> ghosts_;  // recently evicted keys, at most ghost_cap_
  std::deque<std::pair<int64_t, uint64_t>> ghost_order_;  // (key, seq) in eviction order, oldest first
  uint64_t ghost_seq_ = 0;
  size_t ghost_cap_ = 0;
  int n_protected_ = 0, max_protected_ = 0;
  double half_life_ = 0;
};

// Replays a request trace through a cache of n_slots experts (no I/O): requests[i] = layer * n_expert + expert,
// with a new epoch wherever epoch_starts[i] is set. pinned keys never leave (and count as hits). Returns hits.
uint64_t simulate_cache(CachePolicyKind kind, int n_slots, std::span<const int32_t> requests,
                        std::span<const uint8_t> epoch_starts, std::span<const int32_t> pinned, double half_life = 0);
// The same replay with Belady's offline optimum (evict the expert whose next request is farthest away, never one
// already used in the current epoch): the most hits any replacement policy can get on this trace with this many
// slots. Needs the future, so it is a bound to compare policies with, not a policy.
uint64_t simulate_cache_optimal(int n_slots, std::span<const int32_t> requests, std::span<const uint8_t> epoch_starts);

}  // namespace moe
