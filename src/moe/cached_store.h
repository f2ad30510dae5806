// An expert store under a memory budget: a fixed number of expert slots, filled from the model file on demand
// by I/O threads (pread past the page cache, repacked on load), evicted by a replacement policy, with experts
// pinned from measured statistics and prefetch hints that load ahead of the router. Pinned-while-in-use
// experts are never evicted; a batch that needs more experts than there are slots gets them in chunks.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/file_io.h"
#include "moe/cache_policy.h"
#include "moe/expert_store.h"

namespace moe {

struct CachedStoreConfig {
  std::string path;                    // the model file the experts are read from
  const uint8_t* file_base = nullptr;  // byte 0 of the mapped file: ExpertMats data - file_base = file offset
  std::vector<LayerExperts> layers;    // per model layer (absent for dense layers)
  size_t cache_bytes = 0;              // memory for expert slots
  CachePolicyKind policy = CachePolicyKind::Lfu;
  int experts_per_token = 0;           // the model's k, for the LFU half-life (0: unknown, see CachePolicy)
  bool pack = true;                    // repack types with a packed layout, as the resident path does
  int io_threads = 2;
  std::vector<std::pair<int, int>> pinned;  // (layer, expert) loaded at start and never evicted
  int min_free_slots = 1;              // pins stop short of leaving fewer evictable slots than this (one layer's k)
};

// Bytes one slot takes: the largest expert (gate + up + down) of any layer in the layout the store keeps.
size_t expert_slot_bytes(const std::vector<LayerExperts>& layers, bool pack);

class CachedExpertStore final : public ExpertStore {
 public:
  explicit CachedExpertStore(CachedStoreConfig cfg);
  ~CachedExpertStore() override;

  int acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) override;
  void release(int layer) override;
  void prefetch(int layer, std::span<const int32_t> experts) override;
  bool wants_prefetch() const override { return true; }
  ExpertStoreStats stats() const override;
  void reset_stats() override;
  int capacity_experts(int layer) const override;

  int n_slots() const { return static_cast<int>(slots_.size()); }
  size_t slot_bytes() const { return slot_bytes_; }

 private:
  enum class State : uint8_t { Empty, Loading, Ready, Failed };
  struct Slot {
    int32_t key = -1;  // layer * max_expert_ + expert
    State state = State::Empty;
    int pins = 0;
    bool permanent = false;
    bool prefetched = false;  // loaded by a hint and not yet asked for
    bool queued = false;      // waiting in a load queue (not yet picked up by an I/O thread)
    uint8_t* mem = nullptr;
  };
  struct Part {  // one projection of one expert, in the file and in a slot
    DType type;
    int64_t rows, cols;
    size_t src_bytes, row_stride, dst_offset;
    bool packed;
  };
  struct LayerLayout {
    LayerExperts mats;
    Part parts[3];
  };

  void shutdown();  // stops the I/O threads and frees the memory (idempotent)
  int evict_for_new(std::unique_lock<std::mutex>& lk);  // a slot to load into, or -1
  void start_load(int slot, int32_t key, bool prefetched);
  // Unstarted prefetches for layers before `layer` (and for `layer` itself when same_layer) are dropped, except
  // those an acquire() has pinned, which become demand loads.
  void drop_stale_prefetches(int layer, bool same_layer);
  void io_loop(int thread);
  void load(int slot, uint8_t* staging);
  ExpertWeights weights_of(int slot) const;

  CachedStoreConfig cfg_;
  DirectFile file_;
  std::vector<LayerLayout> layout_;
  int max_expert_ = 0;
  size_t slot_bytes_ = 0, staging_bytes_ = 0;
  uint8_t* pool_ = nullptr;
  size_t pool_bytes_ = 0;

  mutable std::mutex mu_;
  std::condition_variable loaded_;  // a load finished
  std::condition_variable work_;    // a load was queued (or stop)
  std::vector<Slot> slots_;
  std::vector<int32_t> slot_of_;    // key -> slot or -1
  CachePolicy policy_;
  std::vector<uint8_t> evictable_;
  std::deque<int> queue_;           // demand loads (an acquire() waits for them): served first
  std::deque<int> prefetch_queue_;  // speculative loads: served when no demand load waits
  std::vector<int> pinned_now_;     // slots acquire() pinned since the last release()
  std::vector<int> chunk_;          // slots of the current acquire()
  std::vector<std::vector<uint8_t>> hint_;  // per layer: experts named by the last prefetch hint
  std::vector<uint8_t> has_hint_;
  std::string error_;               // first load error (the file changed, a read failed)
  ExpertStoreStats stats_;
  bool stop_ = false;
  int permanent_ = 0;
  std::vector<std::thread> io_;
  std::vector<uint8_t*> staging_;
};

}  // namespace moe
