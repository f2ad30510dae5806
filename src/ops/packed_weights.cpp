#include "ops/packed_weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <new>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/packed.h"

namespace moe {

PackedWeights::~PackedWeights() {
  if (buf_) ::munmap(buf_, size_);
}

void PackedWeights::add(const Mat& m, int64_t min_rows) {
  if (!m.present() || !packable(m.type) || m.rows < min_rows || find(m.data)) return;
  entries_.push_back({m.data, m.type, m.rows, m.cols, 1, m.row_stride, 0, 0});
}

void PackedWeights::add(const ExpertMats& m, int64_t min_rows) {
  if (!m.present() || !packable(m.type) || m.rows < min_rows || find(m.data)) return;
  entries_.push_back({m.data, m.type, m.rows, m.cols, m.n_expert, m.row_stride, m.expert_stride, 0});
}

const uint8_t* PackedWeights::find(const uint8_t* data) const {
  if (!buf_) {  // before build(): linear scan over the registrations (offsets are not final yet)
    for (const Entry& e : entries_)
      if (e.src == data) return data;
    return nullptr;
  }
  auto it = std::lower_bound(entries_.begin(), entries_.end(), data,
                             [](const Entry& e, const uint8_t* p) { return e.src < p; });
  return it != entries_.end() && it->src == data ? buf_ + it->offset : nullptr;
}

namespace {

// Gives the whole pages inside [p, p + n) of a read-only file mapping back to the kernel and drops them from the
// page cache; touching them again would fault them back in from the file.
void release_source(const PackedWeights::Source& src, int fd, const uint8_t* p, size_t n) {
  constexpr uintptr_t kPage = 4096;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(kPage - 1);
  const uintptr_t base = reinterpret_cast<uintptr_t>(src.base);
  if (e <= b || b < base || e > base + src.size) return;
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
  if (fd >= 0) ::posix_fadvise(fd, static_cast<off_t>(b - base), static_cast<off_t>(e - b), POSIX_FADV_DONTNEED);
}

}  // namespace

void PackedWeights::build(ThreadPool& pool, const Source* source) {
  if (buf_) throw Error("PackedWeights::build called twice");
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.src < b.src; });
  size_t total = 0;
  for (Entry& e : entries_) {
    e.offset = total;
    total += packed_bytes(e.type, e.rows, e.cols) * static_cast<size_t>(e.n_mats);
    total = (total + 4095) & ~size_t{4095};
  }
  if (total == 0) return;
  // Anonymous memory: page-aligned, transparent huge pages where allowed (fewer TLB misses when streaming).
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("repacking weights: cannot allocate " + std::to_string(total >> 20) + " MiB");
#ifdef MADV_HUGEPAGE
  ::madvise(p, total, MADV_HUGEPAGE);
#endif
  buf_ = static_cast<uint8_t*>(p);
  size_ = total;
  // Tasks of up to 64 row groups of one matrix, spread over the pool.
  struct Task {
    const Entry* e;
    int64_t mat, g0, g1;
  };
  std::vector<Task> tasks;
  for (const Entry& e : entries_) {
    const int64_t groups = (e.rows + kPackRows - 1) / kPackRows;
    for (int64_t m = 0; m < e.n_mats; ++m)
      for (int64_t g = 0; g < groups; g += 64) tasks.push_back({&e, m, g, std::min(groups, g + 64)});
  }
  const int fd = source && !source->path.empty() ? ::open(source->path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i, int) {
    const Task& t = tasks[static_cast<size_t>(i)];
    const Entry& e = *t.e;
    const uint8_t* src = e.src + t.mat * e.src_mat_stride;
    uint8_t* dst = buf_ + e.offset + static_cast<size_t>(t.mat) * packed_bytes(e.type, e.rows, e.cols);
    // Map this task's source and destination pages up front rather than fault by fault (on this project's VM that
    // made a 7.4 GB repack several times faster; see populate_pages).
    const int64_t rows = std::min(e.rows, t.g1 * kPackRows) - t.g0 * kPackRows;
    populate_pages(src + static_cast<size_t>(t.g0 * kPackRows) * e.src_row_stride,
                   static_cast<size_t>(rows) * e.src_row_stride, false);
    populate_pages(dst + static_cast<size_t>(t.g0) * packed_group_bytes(e.type, e.cols),
                   static_cast<size_t>(t.g1 - t.g0) * packed_group_bytes(e.type, e.cols), true);
    pack_groups(e.type, src, e.src_row_stride, e.rows, e.cols, t.g0, t.g1, dst);
    if (source) {
      const int64_t r0 = t.g0 * kPackRows, r1 = std::min(e.rows, t.g1 * kPackRows);
      release_source(*source, fd, src + static_cast<size_t>(r0) * e.src_row_stride,
                     static_cast<size_t>(r1 - r0) * e.src_row_stride);
    }
  });
  if (fd >= 0) ::close(fd);
  ::mprotect(buf_, size_, PROT_READ);  // immutable from here on
}

}  // namespace moe
