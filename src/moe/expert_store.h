// The one way the MoE layer gets expert weights. Given a layer and the experts a batch routes to, a store returns
// their weights in the layout the kernels want, pinned until the layer releases them. The resident store holds every
// expert in memory; the cached store (moe/cached_store.h) keeps a bounded set and reads the rest from disk; expert
// parallelism across processes will be one more store.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor_view.h"
#include "ops/matmul.h"
#include "ops/packed_weights.h"

namespace moe {

// One expert's three projections, ready for matmul_rows(): gate/up [n_ff rows, n_embd cols], down [n_embd, n_ff].
struct ExpertWeights {
  WeightRef gate, up, down;
};

// The expert tensors of one MoE layer as they are in the model file (views into the mapped file).
struct LayerExperts {
  ExpertMats gate, up, down;
  bool present() const { return gate.present(); }
};

// Counters a store keeps; benchmarks and run summaries report them. All sizes in bytes, times in seconds.
struct ExpertStoreStats {
  uint64_t requests = 0;        // experts asked for by acquire()
  uint64_t hits = 0;            // ... that were already resident (or in flight from a prefetch)
  uint64_t loads = 0;           // experts read from disk
  uint64_t bytes_read = 0;      // bytes read from disk
  double read_seconds = 0;      // I/O thread time spent reading (for the measured disk bandwidth)
  double stall_seconds = 0;     // time acquire() waited for reads
  uint64_t prefetch_issued = 0; // experts a prefetch hint asked for that were not resident
  uint64_t prefetch_useful = 0; // ... that a later acquire() of the same layer used
  uint64_t prefetch_hinted = 0; // experts named by prefetch hints (resident or not)
  uint64_t prefetch_hint_hits = 0;  // ... that the next acquire() of that layer asked for (precision numerator)
  uint64_t acquired_after_hint = 0; // experts acquired in layers that had a hint (recall denominator)
  uint64_t file_layout_uses = 0;    // experts handed out in their file layout (a layer's first step, not packed yet)
  uint64_t packed_on_use = 0;       // experts packed by acquire() (a later step that uses them)
};

class ExpertStore {
 public:
  virtual ~ExpertStore() = default;

  // Makes a prefix of `experts` (distinct ids of `layer`, in the order given) resident and pins it until
  // release(layer). Writes their weights to out[0..n) and returns n >= 1 (n < experts.size() only when the store
  // cannot hold them all at once: the caller computes those, releases, and asks again for the rest).
  virtual int acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) = 0;
  // Unpins everything acquire() pinned for `layer`.
  virtual void release(int layer) = 0;
  // Hint: these experts of `layer` will probably be asked for soon (prefetch ahead of the router).
  virtual void prefetch(int layer, std::span<const int32_t> experts) {}
  virtual ExpertStoreStats stats() const { return {}; }
  virtual void reset_stats() {}
  // True when prefetch() does something (the caller may then spend time predicting the next layer's experts).
  virtual bool wants_prefetch() const { return false; }
  // Most experts acquire() can pin at once (the resident store: all of a layer).
  virtual int capacity_experts(int layer) const = 0;
};

// Every expert in memory: the mapped file's rows, or their packed copies when the Exec has them. Experts the packed
// weights hold as lazy stacks are handed out in their file layout in a layer's first acquire() (the forward pass
// that gives the first token copies nothing) and packed when asked for after that (on the pool, inside acquire).
// The products are the same bits either way.
class ResidentExpertStore final : public ExpertStore {
 public:
  // layers: one entry per model layer (absent for dense layers). ex.packed may be null (file layouts).
  ResidentExpertStore(std::vector<LayerExperts> layers, const Exec& ex);
  int acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) override;
  void release(int) override {}
  // While experts are still unpacked: start reading the predicted ones' file pages (a cold first token).
  void prefetch(int layer, std::span<const int32_t> experts) override;
  bool wants_prefetch() const override { return unpacked_ > 0; }
  ExpertStoreStats stats() const override { return stats_; }
  void reset_stats() override { stats_ = {}; }
  int capacity_experts(int layer) const override;

 private:
  struct Layer {
    LayerExperts mats;
    const uint8_t* packed[3] = {nullptr, nullptr, nullptr};  // expert 0's packed copy of gate, up, down
    size_t packed_stride[3] = {0, 0, 0};
    int lazy[3] = {-1, -1, -1};  // lazy stacks of gate, up, down in the packed weights (-1: packed at load)
    bool has_lazy = false;
    bool first_call = true;      // no acquire() yet: unpacked experts are handed out in their file layout
  };
  bool is_packed(const Layer& l, int64_t e) const;
  void prefetch_file_pages(const Layer& l, int64_t e) const;
  std::vector<Layer> layers_;
  int64_t unpacked_ = 0;  // lazy experts this store has not packed yet
  const PackedWeights* packed_ = nullptr;
  ThreadPool& pool_;
  std::vector<uint8_t> pack_now_;                   // per acquire(): experts it packs
  std::vector<PackedWeights::LazyMat> to_pack_;     // ... as stack entries (reserved: no allocation per call)
  ExpertStoreStats stats_;
};

}  // namespace moe
