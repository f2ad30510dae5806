// Reading byte ranges of a model file into our own buffers with pread, past the page cache where the filesystem
// allows it (O_DIRECT), so that what a process reads in pieces lives once, in its memory: a memory budget is then
// the process's real footprint. Where O_DIRECT is refused, the cached pages of each range are dropped after reading.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

class DirectFile {
 public:
  static constexpr size_t kAlign = 4096;  // O_DIRECT offset, length and buffer alignment

  explicit DirectFile(const std::string& path);  // throws Error naming the path
  ~DirectFile();
  DirectFile(const DirectFile&) = delete;
  DirectFile& operator=(const DirectFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // at open
  bool direct() const { return direct_fd_ >= 0; }

  // Bytes of staging buffer (kAlign-aligned) that read() needs for a range of len bytes.
  static size_t staging_bytes(size_t len) { return len + 2 * kAlign; }
  // Reads [offset, offset + len) and returns a pointer to its first byte inside `staging` (which must hold
  // staging_bytes(len) bytes and be kAlign-aligned). Thread-safe. Throws Error naming the file when the range
  // lies past the end or the file was truncated or rewritten since it was opened.
  const uint8_t* read(uint64_t offset, size_t len, uint8_t* staging) const;
  // Reads [offset, offset + len) into dst (any alignment) through the page cache, which keeps the pages: with the
  // whole model in memory a later start finds them there. Same checks and errors as read(). (On a VM a copy out of
  // the page cache runs at memory speed, while first touches of a mapping's pages each trap to the hypervisor.)
  void read_cached(uint64_t offset, size_t len, uint8_t* dst) const;
  // Throws the same Error when the file's size or modification time differs from what they were at open (before
  // touching a mapping of it: a truncated mapped file would raise SIGBUS).
  void check_unchanged() const;

 private:
  [[noreturn]] void changed(const std::string& what) const;
  // pread until len bytes or the end of the file; the bytes read. Throws Error naming the file on a read error.
  size_t read_upto(int fd, uint64_t pos, size_t len, uint8_t* dst) const;
  std::string path_;
  int fd_ = -1;         // buffered reads (fallback), fstat checks
  int direct_fd_ = -1;  // O_DIRECT, or -1 when the filesystem refuses it
  uint64_t size_ = 0;
  int64_t mtime_ns_ = 0;
};

// Allocates `bytes` of page-aligned anonymous memory; released by free_pages(). huge: ask for transparent huge
// pages (fewer TLB misses for weights that are read whole); small pages for memory filled a little at a time.
uint8_t* alloc_pages(size_t bytes, bool huge = true);
void free_pages(uint8_t* p, size_t bytes);

// Zero-filled page memory that owns itself (alloc_pages/free_pages). Its pages become resident only when first
// written, so a buffer sized for the worst case (a KV cache for the whole context) costs memory in proportion to
// what is used, and no time up front: on virtual machines first-touching fresh memory can run below 1 GB/s.
class PageBuffer {
 public:
  PageBuffer() = default;
  // Small pages: a huge page would make the first write to each region resident 2 MiB at a time (a KV cache
  // keeps one region per head and layer, so a few positions would cost a gigabyte).
  explicit PageBuffer(size_t bytes) : p_(alloc_pages(bytes, /*huge=*/false)), bytes_(bytes) {}
  PageBuffer(PageBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  PageBuffer& operator=(PageBuffer&& o) noexcept {
    if (this != &o) {
      free_pages(p_, bytes_);
      p_ = o.p_, bytes_ = o.bytes_;
      o.p_ = nullptr, o.bytes_ = 0;
    }
    return *this;
  }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  ~PageBuffer() { free_pages(p_, bytes_); }

  uint8_t* data() const { return p_; }
  size_t size() const { return bytes_; }
  template <class T>
  T* as() const { return reinterpret_cast<T*>(p_); }

 private:
  uint8_t* p_ = nullptr;
  size_t bytes_ = 0;
};

// Maps the pages of [p, p + n) in one system call (MADV_POPULATE_WRITE / _READ) instead of one page fault per
// page: on virtual machines where a fault traps to the hypervisor, first-touching fresh memory page by page runs
// at 0.3-0.7 GB/s and populating it at 3-7 GB/s (measured on this project's VM). Write: anonymous memory about to
// be filled; read: a file mapping about to be read. A kernel without these advice values just faults lazily.
void populate_pages(const void* p, size_t n, bool for_write);
// Asks the kernel to start reading the file pages behind [p, p + n) of a mapping in the background (large reads
// issued at once instead of a small readahead per page fault).
void prefetch_pages(const void* p, size_t n);
// Unmaps the whole pages inside [p, p + n) of a read-only file mapping from this process (the page cache keeps
// them; touching them again maps them back). Partial pages at either end stay: they may hold a neighbour's bytes.
void unmap_file_pages(const void* p, size_t n);

// Peak resident set size of this process so far (VmHWM), in bytes; 0 when unknown.
uint64_t peak_rss_bytes();

}  // namespace moe
