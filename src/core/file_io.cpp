#include "core/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "core/error.h"

namespace moe {

namespace {

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

DirectFile::DirectFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  mtime_ns_ = mtime_ns(st);
  // tmpfs and some other filesystems refuse O_DIRECT; then reads go through the page cache and are dropped from it.
  direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
}

DirectFile::~DirectFile() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

void DirectFile::changed(const std::string& what) const {
  throw Error(path_ + ": the model file " + what + " while it was in use (restart with the new file)");
}

size_t DirectFile::read_upto(int fd, uint64_t pos, size_t len, uint8_t* dst) const {
  size_t done = 0;
  while (done < len) {
    const ssize_t r = ::pread(fd, dst + done, len - done, static_cast<off_t>(pos + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": read failed at offset " + std::to_string(pos + done) + ": " + std::strerror(errno));
    }
    if (r == 0) break;  // end of file
    done += static_cast<size_t>(r);
  }
  return done;
}

const uint8_t* DirectFile::read(uint64_t offset, size_t len, uint8_t* staging) const {
  if (offset > size_ || len > size_ - offset) changed("is shorter than its tensor table says");
  const uint64_t begin = offset & ~uint64_t{kAlign - 1};
  const uint64_t end = (offset + len + kAlign - 1) & ~uint64_t{kAlign - 1};
  const bool direct = direct_fd_ >= 0;
  const int fd = direct ? direct_fd_ : fd_;
  uint8_t* dst = direct ? staging : staging + (offset - begin);
  uint64_t pos = direct ? begin : offset;
  const uint64_t stop = direct ? end : offset + len;
  // An O_DIRECT read of the last block stops short at the end of the file.
  const uint64_t got_end = pos + read_upto(fd, pos, static_cast<size_t>(stop - pos), dst);
  struct stat st {};
  if (got_end < offset + len || ::fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) != size_ ||
      mtime_ns(st) != mtime_ns_)
    changed(got_end < offset + len ? "was truncated" : "was modified");
  if (!direct) ::posix_fadvise(fd_, static_cast<off_t>(begin), static_cast<off_t>(end - begin), POSIX_FADV_DONTNEED);
  return staging + (offset - begin);
}

void DirectFile::read_cached(uint64_t offset, size_t len, uint8_t* dst) const {
  if (offset > size_ || len > size_ - offset) changed("is shorter than its tensor table says");
  if (read_upto(fd_, offset, len, dst) < len) changed("was truncated");
  check_unchanged();
}

void DirectFile::check_unchanged() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) != size_)
    changed(st.st_size < static_cast<off_t>(size_) ? "was truncated" : "changed size");
  if (mtime_ns(st) != mtime_ns_) changed("was modified");
}

uint8_t* alloc_pages(size_t bytes, bool huge) {
  if (bytes == 0) return nullptr;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("cannot allocate " + std::to_string(bytes >> 20) + " MiB");
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  ::madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
  return static_cast<uint8_t*>(p);
}

namespace {
// The pages that hold any byte of [p, p + n): first page address and length.
std::pair<void*, size_t> pages_around(const void* p, size_t n) {
  constexpr uintptr_t kPage = 4096;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) & ~(kPage - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n + kPage - 1) & ~(kPage - 1);
  return {reinterpret_cast<void*>(b), e - b};
}
}  // namespace

void populate_pages(const void* p, size_t n, bool for_write) {
#if defined(MADV_POPULATE_WRITE) && defined(MADV_POPULATE_READ)
  const auto [b, len] = pages_around(p, n);
  if (n > 0) ::madvise(b, len, for_write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
#else
  (void)p, (void)n, (void)for_write;
#endif
}

void prefetch_pages(const void* p, size_t n) {
  if (n == 0) return;
  // Asking for pages already in the page cache still walks them one by one (a warm start paid ~0.5 s for that):
  // skip ranges whose first and last pages are resident.
  unsigned char in_core[1] = {0};
  auto resident = [&](const void* q) {
    const auto [b, len] = pages_around(q, 1);
    return ::mincore(b, len, in_core) == 0 && (in_core[0] & 1);
  };
  if (resident(p) && resident(static_cast<const uint8_t*>(p) + n - 1)) return;
  const auto [b, len] = pages_around(p, n);
  ::madvise(b, len, MADV_WILLNEED);
}

void unmap_file_pages(const void* p, size_t n) {
  constexpr uintptr_t kPage = 4096;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(kPage - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

void free_pages(uint8_t* p, size_t bytes) {
  if (p) ::munmap(p, bytes);
}

namespace {
uint64_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  const size_t n = std::strlen(key);
  std::string line;
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0) return std::strtoull(line.c_str() + n, nullptr, 10) * 1024;
  return 0;
}
}  // namespace

uint64_t peak_rss_bytes() { return status_kib("VmHWM:"); }

}  // namespace moe
