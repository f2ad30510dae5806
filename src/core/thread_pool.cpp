#include "core/thread_pool.h"

#include <chrono>
#include <string>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOE_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define MOE_CPU_RELAX() asm volatile("yield")
#else
#define MOE_CPU_RELAX() ((void)0)
#endif

namespace moe {

namespace {
// How long an idle worker spins before sleeping: longer than the serial gaps between the loops of one token,
// short enough not to burn a core for long once generation stops.
constexpr auto kSpinTime = std::chrono::milliseconds(2);
}  // namespace

int resolve_threads(int requested) {
  const unsigned hc = std::thread::hardware_concurrency();
  const int hw = hc ? static_cast<int>(hc) : 1;
  if (requested < 0) throw UsageError("--threads must be >= 0 (0 uses all " + std::to_string(hw) + " hardware threads)");
  if (requested == 0) return hw;
  if (requested > kMaxThreadsPerCore * hw)
    throw UsageError("--threads " + std::to_string(requested) + " is more than " + std::to_string(kMaxThreadsPerCore) +
                     " x the " + std::to_string(hw) + " hardware threads here (at most " +
                     std::to_string(kMaxThreadsPerCore * hw) + "; 0 uses all " + std::to_string(hw) + ")");
  return requested;
}

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (n_threads <= 0) n_threads = 1;
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::record_error() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!error_) error_ = std::current_exception();
}

void ThreadPool::run_tasks(int tid) {
  try {
    if (once_per_thread_) {
      call_(ctx_, tid, tid);
      return;
    }
    for (;;) {
      const int64_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (t >= n_tasks_) break;
      call_(ctx_, t, tid);
    }
  } catch (...) {
    record_error();
    next_task_.store(n_tasks_, std::memory_order_relaxed);  // the others stop taking tasks
  }
}

void ThreadPool::worker(int id) {
  uint64_t seen = 0;  // sequence number of the last loop this worker joined or skipped
  auto start = std::chrono::steady_clock::now();
  for (int spins = 0;; ++spins) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if ((s >> 32) != seen) {
      if (!(s & kOpen)) {  // closed before we got here: nothing to do
        seen = s >> 32;
        continue;
      }
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
      seen = s >> 32;
      run_tasks(id);
      if (once_per_thread_) ran_.fetch_add(1, std::memory_order_release);
      state_.fetch_sub(1, std::memory_order_release);
      spins = 0;
      start = std::chrono::steady_clock::now();
      continue;
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    MOE_CPU_RELAX();
    if ((spins & 1023) == 1023 && std::chrono::steady_clock::now() - start > kSpinTime) {
      // Sleep. sleeping_ is raised before the last look at state_, and dispatch() opens a loop before it reads
      // sleeping_ (both sequentially consistent), so a wake-up cannot be missed.
      std::unique_lock<std::mutex> lk(mu_);
      sleeping_.fetch_add(1);
      cv_.wait(lk, [&] { return stop_.load() || (state_.load() >> 32) != seen; });
      sleeping_.fetch_sub(1);
      if (stop_.load()) return;
      start = std::chrono::steady_clock::now();
    }
  }
}

void ThreadPool::dispatch(int64_t n_tasks, Call call, void* ctx, bool once_per_thread) {
  call_ = call;
  ctx_ = ctx;
  n_tasks_ = n_tasks;
  once_per_thread_ = once_per_thread;
  next_task_.store(0, std::memory_order_relaxed);
  ran_.store(0, std::memory_order_relaxed);
  const uint64_t seq = (state_.load(std::memory_order_relaxed) >> 32) + 1;
  state_.store(seq << 32 | kOpen);  // seq_cst: publishes the loop, ordered before the read of sleeping_
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  run_tasks(0);
  if (once_per_thread) {
    // Every thread must run fn once: wait for all workers before closing the loop.
    const int all = static_cast<int>(workers_.size());
    for (int spins = 0; ran_.load(std::memory_order_acquire) < all; ++spins) {
      MOE_CPU_RELAX();
      if ((spins & 4095) == 4095) std::this_thread::yield();
    }
  }
  state_.fetch_and(~kOpen, std::memory_order_acq_rel);  // no more joins
  for (int spins = 0; state_.load(std::memory_order_acquire) & kActiveMask; ++spins) {
    MOE_CPU_RELAX();
    if ((spins & 4095) == 4095) std::this_thread::yield();  // a worker may have been descheduled
  }
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lk(mu_);
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace moe
