// What every op needs to run: the kernel table, the thread pool and (optionally) the load-time packed copies of
// the weights. Passed explicitly (no globals).
#pragma once
#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace moe {

class PackedWeights;

struct Exec {
  const KernelSet& k;
  ThreadPool& pool;
  const PackedWeights* packed = nullptr;  // null: every matrix is used in its file layout
};

}  // namespace moe
