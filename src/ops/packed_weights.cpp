#include "ops/packed_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/packed.h"

namespace moe {

PackedWeights::~PackedWeights() {
  if (buf_) ::munmap(buf_, size_);
  for (uint8_t* p : staging_) free_pages(p, staging_bytes_);
}

void PackedWeights::add(const Mat& m, int64_t min_rows) {
  if (!m.present() || !packable(m.type) || m.rows < min_rows || find(m.data)) return;
  entries_.push_back({m.data, m.type, m.rows, m.cols, 1, m.row_stride, 0, 0, false, false});
}

void PackedWeights::add(const ExpertMats& m, int64_t min_rows, bool lazy) {
  if (!m.present() || !packable(m.type) || m.rows < min_rows || find(m.data)) return;
  entries_.push_back({m.data, m.type, m.rows, m.cols, m.n_expert, m.row_stride, m.expert_stride, 0, lazy, false});
}

const uint8_t* PackedWeights::find(const uint8_t* data) const {
  if (!buf_) {  // before build(): linear scan over the registrations (offsets are not final yet)
    for (const Entry& e : entries_)
      if (e.src == data) return data;
    return nullptr;
  }
  auto it = std::lower_bound(entries_.begin(), entries_.end(), data,
                             [](const Entry& e, const uint8_t* p) { return e.src < p; });
  if (it == entries_.end() || it->src != data) return nullptr;
  if (it->deferred && !deferred_ready_.load(std::memory_order_acquire)) return nullptr;
  return buf_ + it->offset;
}

int PackedWeights::lazy_stack(const uint8_t* data) const {
  for (size_t s = 0; s < lazy_entry_.size(); ++s)
    if (entries_[lazy_entry_[s]].src == data) return static_cast<int>(s);
  return -1;
}

// Tasks of up to 64 row groups of one matrix, spread over the pool.
void PackedWeights::add_tasks(const Entry& e, int64_t mat, std::vector<Task>& tasks) {
  const int64_t groups = (e.rows + kPackRows - 1) / kPackRows;
  for (int64_t g = 0; g < groups; g += 64) tasks.push_back({&e, mat, g, std::min(groups, g + 64)});
}

void PackedWeights::ensure_staging(int threads) const {
  while (static_cast<int>(staging_.size()) < threads) staging_.push_back(alloc_pages(staging_bytes_));
}

void PackedWeights::run_tasks(std::span<const Task> tasks, ThreadPool& pool) const {
  if (file_) ensure_staging(pool.size());
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i, int thread) {
    const Task& t = tasks[static_cast<size_t>(i)];
    const Entry& e = *t.e;
    const uint8_t* src = e.src + t.mat * e.src_mat_stride;
    uint8_t* dst = buf_ + e.offset + static_cast<size_t>(t.mat) * packed_bytes(e.type, e.rows, e.cols);
    const int64_t r0 = t.g0 * kPackRows, r1 = std::min(e.rows, t.g1 * kPackRows);
    const size_t group_bytes = packed_group_bytes(e.type, e.cols);
    populate_pages(dst + static_cast<size_t>(t.g0) * group_bytes, static_cast<size_t>(t.g1 - t.g0) * group_bytes, true);
    if (!file_) {  // weights in memory (no file): pack from them directly
      pack_groups(e.type, src, e.src_row_stride, e.rows, e.cols, t.g0, t.g1, dst);
      return;
    }
    // The task's rows, copied out of the file: on this project's VM touching a mapping's pages costs ~2 GB/s (each
    // first touch traps to the hypervisor), a copy out of the page cache ~15 GB/s.
    const uint64_t offset = static_cast<uint64_t>(src + static_cast<size_t>(r0) * e.src_row_stride - source_.base);
    const size_t len = static_cast<size_t>(r1 - r0 - 1) * e.src_row_stride + row_bytes(e.type, e.cols);
    uint8_t* staging = staging_[static_cast<size_t>(thread)];
    const uint8_t* rows = staging;
    if (source_.drop_page_cache) rows = file_->read(offset, len, staging);
    else file_->read_cached(offset, len, staging);
    pack_groups(e.type, rows, e.src_row_stride, r1 - r0, e.cols, 0, t.g1 - t.g0,
                dst + static_cast<size_t>(t.g0) * group_bytes);
    // A first step may have run on the mapped file pages of lazy and deferred matrices: unmap them (they would
    // count as resident).
    if (e.lazy || e.deferred) unmap_file_pages(src + static_cast<size_t>(r0) * e.src_row_stride, len);
  });
}

void PackedWeights::build(ThreadPool& pool, const Source* source, bool defer) {
  if (buf_) throw Error("PackedWeights::build called twice");
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.src < b.src; });
  for (Entry& e : entries_) e.deferred = defer && !e.lazy;
  // Eager entries first, then deferred ones, lazy stacks last: each of the first two becomes read-only in one
  // mprotect once packed.
  size_t total = 0, eager_bytes = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (Entry& e : entries_) {
      if ((e.lazy ? 2 : e.deferred ? 1 : 0) != pass) continue;
      e.offset = total;
      total += packed_bytes(e.type, e.rows, e.cols) * static_cast<size_t>(e.n_mats);
      total = (total + 4095) & ~size_t{4095};
    }
    if (pass == 0) eager_bytes = total;
    if (pass == 1) deferred_end_ = total;
  }
  size_t n_flags = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].lazy) continue;
    lazy_entry_.push_back(i);
    lazy_first_.push_back(n_flags);
    n_flags += static_cast<size_t>(entries_[i].n_mats);
  }
  ready_ = std::make_unique<std::atomic<bool>[]>(std::max<size_t>(n_flags, 1));
  queued_.assign(n_flags, 0);
  // Room for the tasks of any one layer's experts (three stacks), so that packing on use does not allocate.
  size_t most_tasks = 0;
  for (size_t i : lazy_entry_) {
    const Entry& e = entries_[i];
    const size_t chunks = static_cast<size_t>((e.rows + kPackRows - 1) / kPackRows + 63) / 64;
    most_tasks = std::max(most_tasks, 3 * chunks * static_cast<size_t>(e.n_mats));
  }
  lazy_tasks_.reserve(most_tasks);
  for (size_t i = 0; i < n_flags; ++i) ready_[i].store(false, std::memory_order_relaxed);
  if (total == 0) return;
  // Anonymous memory: page-aligned, transparent huge pages where allowed (fewer TLB misses when streaming).
  // Lazy experts stay unbacked until packed.
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("repacking weights: cannot allocate " + std::to_string(total >> 20) + " MiB");
#ifdef MADV_HUGEPAGE
  ::madvise(p, total, MADV_HUGEPAGE);
#endif
  buf_ = static_cast<uint8_t*>(p);
  size_ = total;
  if (source && !source->path.empty()) {
    source_ = *source;
    file_ = std::make_unique<DirectFile>(source->path);
    if (file_->size() != source_.size) throw Error(source->path + ": the file changed size since it was mapped");
    for (const Entry& e : entries_) {
      const size_t span = static_cast<size_t>(e.n_mats - 1) * e.src_mat_stride +
                          static_cast<size_t>(e.rows - 1) * e.src_row_stride + row_bytes(e.type, e.cols);
      if (e.src < source_.base || e.src + span > source_.base + source_.size)
        throw Error("repacking weights: a matrix lies outside the model file");
      const int64_t rows = std::min<int64_t>(e.rows, 64 * kPackRows);
      staging_bytes_ = std::max(staging_bytes_, DirectFile::staging_bytes(static_cast<size_t>(rows) * e.src_row_stride));
    }
  }
  std::vector<Task> tasks;
  for (const Entry& e : entries_)
    if (e.deferred) {
      for (int64_t m = 0; m < e.n_mats; ++m) add_tasks(e, m, deferred_tasks_);
      // The first step reads these through the mapping: ask the disk for them now and map them in bulk below.
      if (file_) prefetch_pages(e.src, static_cast<size_t>(e.n_mats - 1) * e.src_mat_stride +
                                           static_cast<size_t>(e.rows) * e.src_row_stride);
    } else if (!e.lazy) {
      for (int64_t m = 0; m < e.n_mats; ++m) add_tasks(e, m, tasks);
      // All eager sources asked of the disk at once (a cold start): deep queues instead of each task's own reads.
      // Not under a budget: those reads bypass the page cache.
      if (file_ && !source_.drop_page_cache)
        prefetch_pages(e.src, static_cast<size_t>(e.n_mats - 1) * e.src_mat_stride +
                                  static_cast<size_t>(e.rows) * e.src_row_stride);
    }
  run_tasks(tasks, pool);
  // Deferred matrices' file pages mapped on all threads at once rather than fault by fault in the first step (on a
  // VM each fault traps to the hypervisor).
  if (file_)
    pool.parallel_for(static_cast<int64_t>(deferred_tasks_.size()), [&](int64_t i, int) {
      const Task& t = deferred_tasks_[static_cast<size_t>(i)];
      const Entry& e = *t.e;
      const int64_t r0 = t.g0 * kPackRows, r1 = std::min(e.rows, t.g1 * kPackRows);
      populate_pages(e.src + t.mat * e.src_mat_stride + static_cast<size_t>(r0) * e.src_row_stride,
                     static_cast<size_t>(r1 - r0) * e.src_row_stride, false);
    });
  if (eager_bytes > 0) ::mprotect(buf_, std::min(eager_bytes, size_), PROT_READ);  // immutable from here on
}

void PackedWeights::pack_deferred(ThreadPool& pool) const {
  if (deferred_tasks_.empty() || deferred_ready_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(lazy_mu_);
  if (deferred_ready_.load(std::memory_order_relaxed)) return;
  check_source();
  run_tasks(deferred_tasks_, pool);
  ::mprotect(buf_, std::min(deferred_end_, size_), PROT_READ);
  deferred_ready_.store(true, std::memory_order_release);
}

void PackedWeights::check_source() const {
  if (file_) file_->check_unchanged();
}

int PackedWeights::ensure_packed(std::span<const LazyMat> mats, ThreadPool& pool) const {
  std::lock_guard<std::mutex> lock(lazy_mu_);
  check_source();
  lazy_tasks_.clear();
  int n = 0;
  for (const LazyMat& m : mats) {
    if (m.stack < 0 || static_cast<size_t>(m.stack) >= lazy_entry_.size()) throw Error("ensure_packed: no such stack");
    const Entry& e = entries_[lazy_entry_[static_cast<size_t>(m.stack)]];
    if (m.mat < 0 || m.mat >= e.n_mats) throw Error("ensure_packed: expert out of range");
    const size_t flag = lazy_first_[static_cast<size_t>(m.stack)] + static_cast<size_t>(m.mat);
    if (queued_[flag] || is_packed(m.stack, m.mat)) continue;
    queued_[flag] = 1;
    add_tasks(e, m.mat, lazy_tasks_);
    ++n;
  }
  if (n == 0) return 0;
  try {
    run_tasks(lazy_tasks_, pool);
  } catch (...) {
    for (const LazyMat& m : mats) queued_[lazy_first_[static_cast<size_t>(m.stack)] + static_cast<size_t>(m.mat)] = 0;
    throw;
  }
  for (const LazyMat& m : mats) {
    const size_t flag = lazy_first_[static_cast<size_t>(m.stack)] + static_cast<size_t>(m.mat);
    queued_[flag] = 0;
    ready_[flag].store(true, std::memory_order_release);
  }
  return n;
}

}  // namespace moe
