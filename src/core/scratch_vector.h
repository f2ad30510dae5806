// Vectors for large scratch buffers (sized once, reused for every step). Their memory comes from mmap with the
// pages populated in one system call (populate_pages) when the buffer is 1 MiB or more: on virtual machines a page
// fault traps to the hypervisor, and zero-filling a fresh 100 MB of scratch page by page took about a second of a
// model's start on this project's VM. From 4 MiB on they are also transparent huge pages: even populated, each
// 4 KiB page's first touch still trapped once (the MoE layer's ~40 MB of scratch took 13% of a first token's
// profile; the first token went from 0.64-0.71 s to 0.59-0.63 s).
// Smaller buffers use operator new as usual.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <vector>

#include "core/file_io.h"

namespace moe {

template <class T>
struct PopulatedAllocator {
  using value_type = T;
  static constexpr size_t kMapBytes = size_t{1} << 20, kHugeBytes = size_t{4} << 20;

  PopulatedAllocator() = default;
  template <class U>
  PopulatedAllocator(const PopulatedAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T);
    if (bytes < kMapBytes) return static_cast<T*>(::operator new(bytes, std::align_val_t(alignof(T))));
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (bytes >= kHugeBytes) ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
    populate_pages(p, bytes, true);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMapBytes) ::operator delete(p, std::align_val_t(alignof(T)));
    else ::munmap(p, bytes);
  }
  template <class U>
  bool operator==(const PopulatedAllocator<U>&) const noexcept { return true; }
};

template <class T>
using ScratchVector = std::vector<T, PopulatedAllocator<T>>;

}  // namespace moe
