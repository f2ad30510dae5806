// Load-time repacked copies of weight matrices (kernels/packed.h), owned in one huge-page-backed buffer and
// looked up by the address of the original rows. Matrices whose type has no packed layout stay zero-copy in
// the mapped file. Stacks of experts may be registered as lazy: their room is reserved at build() and each
// expert is packed when a store first asks for it (ensure_packed), so that a first token needs no copy of the
// experts it does not touch. Everything else is immutable after build(), so any number of contexts may share one.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/tensor_view.h"
#include "core/thread_pool.h"

namespace moe {

class PackedWeights {
 public:
  PackedWeights() = default;
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  // Registers a matrix (or all experts of a stacked tensor) before build(); ignored when its type has no
  // packed layout, it has fewer than min_rows rows, or it is already registered. lazy: see ensure_packed().
  void add(const Mat& m, int64_t min_rows = 16);
  void add(const ExpertMats& m, int64_t min_rows = 16, bool lazy = false);
  // Allocates and packs everything registered that is not lazy, in parallel. With `source` (the mapped model file
  // the matrices live in), the rows to pack are read from the file (pread into per-thread staging buffers) instead
  // of through the mapping, so the process never maps the file's copy of what it packs and holds one copy of the
  // weights; they go through the page cache, which keeps them for the next start, except with drop_page_cache
  // (a memory budget, which the page cache would otherwise share), where they are read past it (O_DIRECT).
  struct Source {
    const uint8_t* base = nullptr;
    size_t size = 0;
    std::string path;
    bool drop_page_cache = false;
  };
  // defer: the matrices that are not lazy are not packed here but by pack_deferred(); until then find() does not
  // return them, so the forward pass runs them on the file's layout (the same products: a first token without
  // waiting for the copy).
  void build(ThreadPool& pool, const Source* source = nullptr, bool defer = false);
  // Packs the deferred matrices (once; thread-safe, a no-op after the first call or without any). A pass that is
  // running on another thread keeps whichever layout it looked up, since find() gives one or the other per call.
  void pack_deferred(ThreadPool& pool) const;

  // The packed copy of the matrix whose row 0 is at `data`, or null. For stacked experts: expert 0's copy;
  // expert e starts packed_bytes(type, rows, cols) * e bytes later. For a lazy stack the bytes of an expert
  // are valid only once is_packed() says so.
  const uint8_t* find(const uint8_t* data) const;
  size_t bytes() const { return size_; }
  size_t count() const { return entries_.size(); }

  // ---- lazy stacks ----
  // The lazy stack whose expert 0 is at `data`, or -1.
  int lazy_stack(const uint8_t* data) const;
  // True once expert `mat` of the stack is packed (acquire ordering: its bytes are then visible).
  bool is_packed(int stack, int64_t mat) const {
    return ready_[lazy_first_[static_cast<size_t>(stack)] + static_cast<size_t>(mat)].load(std::memory_order_acquire);
  }
  // Packs the listed experts that are not packed yet, in parallel on `pool` (which must not be running a loop),
  // and releases their source pages. Thread-safe; returns how many it packed. Without an allocation once the
  // first call has sized the task list.
  struct LazyMat {
    int stack;
    int64_t mat;
  };
  int ensure_packed(std::span<const LazyMat> mats, ThreadPool& pool) const;
  // Throws a clear Error when the model file was truncated or rewritten since build() (before its mapping is read
  // again: touching a truncated mapping raises SIGBUS). ensure_packed() checks by itself.
  void check_source() const;

 private:
  struct Entry {
    const uint8_t* src;
    DType type;
    int64_t rows, cols, n_mats;
    size_t src_row_stride, src_mat_stride;
    size_t offset;  // in buf_
    bool lazy;
    bool deferred;  // packed by pack_deferred(), not build()
  };
  struct Task {
    const Entry* e;
    int64_t mat, g0, g1;
  };
  void run_tasks(std::span<const Task> tasks, ThreadPool& pool) const;
  void ensure_staging(int threads) const;  // staging buffers for `threads` workers (allocated once)
  static void add_tasks(const Entry& e, int64_t mat, std::vector<Task>& tasks);

  std::vector<Entry> entries_;  // sorted by src after build()
  uint8_t* buf_ = nullptr;
  size_t size_ = 0;
  Source source_;
  std::unique_ptr<DirectFile> file_;  // the model file (with a source): packing reads its rows from here
  size_t staging_bytes_ = 0;          // per worker: the source rows of the largest task
  mutable std::vector<uint8_t*> staging_;  // per pool thread; grown under lazy_mu_ (or in build)
  // Lazy stacks: entry index, and the first of their per-expert ready flags.
  std::vector<size_t> lazy_entry_;
  std::vector<size_t> lazy_first_;
  std::unique_ptr<std::atomic<bool>[]> ready_;
  std::vector<Task> deferred_tasks_;
  size_t deferred_end_ = 0;  // bytes of buf_ up to the end of the deferred matrices
  mutable std::atomic<bool> deferred_ready_{false};
  mutable std::mutex lazy_mu_;              // one ensure_packed() or pack_deferred() at a time
  mutable std::vector<Task> lazy_tasks_;    // guarded by lazy_mu_
  mutable std::vector<uint8_t> queued_;     // per expert flag, guarded by lazy_mu_ (duplicates in one request)
};

}  // namespace moe
