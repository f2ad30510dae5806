// Load-time repacked copies of weight matrices (kernels/packed.h), owned in one huge-page-backed buffer and
// looked up by the address of the original rows. Matrices whose type has no packed layout stay zero-copy in
// the mapped file. Immutable after build(), so any number of contexts may share one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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
  // packed layout, it has fewer than min_rows rows, or it is already registered.
  void add(const Mat& m, int64_t min_rows = 16);
  void add(const ExpertMats& m, int64_t min_rows = 16);
  // Allocates and packs everything registered, in parallel. With `source` (the mapped model file the matrices
  // live in), each range's pages are handed back to the kernel once packed (madvise, and dropped from the page
  // cache), so that the process holds one copy of the weights, not the file's and the packed one.
  struct Source {
    const uint8_t* base = nullptr;
    size_t size = 0;
    std::string path;
  };
  void build(ThreadPool& pool, const Source* source = nullptr);

  // The packed copy of the matrix whose row 0 is at `data`, or null. For stacked experts: expert 0's copy;
  // expert e starts packed_bytes(type, rows, cols) * e bytes later.
  const uint8_t* find(const uint8_t* data) const;
  size_t bytes() const { return size_; }
  size_t count() const { return entries_.size(); }

 private:
  struct Entry {
    const uint8_t* src;
    DType type;
    int64_t rows, cols, n_mats;
    size_t src_row_stride, src_mat_stride;
    size_t offset;  // in buf_
  };
  std::vector<Entry> entries_;  // sorted by src after build()
  uint8_t* buf_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moe
