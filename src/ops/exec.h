// What every op needs to run: the kernel table, the thread pool and (optionally) the load-time packed copies of
// the weights. Passed explicitly (no globals).
#pragma once
#include <chrono>

#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace moe {

class PackedWeights;

// Wall time per kind of op, accumulated while attached to an Exec (benchmarks, `moe bench --profile`).
struct OpTimes {
  enum Op { kNorm, kQkv, kAttention, kWo, kRouter, kRoute, kExpertWait, kGateUp, kDown, kOutput, kCount };
  double seconds[kCount] = {};
  static const char* name(int op) {
    static const char* const names[kCount] = {"norms+rope+residual", "q/k/v proj", "attention", "output proj",
                                              "router",  "routing+dispatch", "expert store (wait for loads)", "experts gate/up", "experts down",
                                              "lm head"};
    return names[op];
  }
};

struct Exec {
  const KernelSet& k;
  ThreadPool& pool;
  const PackedWeights* packed = nullptr;  // null: every matrix is used in its file layout
  OpTimes* times = nullptr;               // null: no timing (the default; costs one branch per op)
};

// Adds the lifetime of the scope to times->seconds[op] when times is set.
class OpTimer {
 public:
  OpTimer(OpTimes* times, OpTimes::Op op) : times_(times), op_(op) {
    if (times_) t0_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() { stop(); }
  // Ends the current op and starts timing `op`.
  void next(OpTimes::Op op) {
    stop();
    op_ = op;
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  void stop() {
    if (!times_) return;
    const auto now = std::chrono::steady_clock::now();
    times_->seconds[op_] += std::chrono::duration<double>(now - t0_).count();
    t0_ = now;
  }
  OpTimes* times_;
  OpTimes::Op op_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace moe
