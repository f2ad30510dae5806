// What every op needs to run: the kernel table and the thread pool. Passed explicitly (no globals).
#pragma once
#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace moe {

struct Exec {
  const KernelSet& k;
  ThreadPool& pool;
};

}  // namespace moe
