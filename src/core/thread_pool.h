// One persistent pool of worker threads. Work is handed out dynamically from an atomic counter, so uneven
// tiles (MoE experts with different token counts) balance themselves. The calling thread takes part.
// Decoding starts ~100 parallel loops per token, so workers spin briefly on a generation counter before
// sleeping on a condition variable, and loops take any callable by reference (no std::function, no allocation).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace moe {

// The thread count a --threads flag asks for: 0 means every hardware thread, negative is a UsageError. More than
// kMaxThreadsPerCore x the hardware threads is a UsageError: the workers of every parallel loop would wait
// for each other's time slices (--threads 10000 made a token take minutes and looked like a hang).
constexpr int kMaxThreadsPerCore = 4;
int resolve_threads(int requested);

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads including the caller; <= 0 means hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread_id) for every task in [0, n_tasks), each exactly once, spread over the threads.
  // Blocks until all are done; the first exception thrown by fn is rethrown here. Not reentrant: fn must not
  // call parallel_for on the same pool.
  template <class F>
  void parallel_for(int64_t n_tasks, F&& fn) {
    if (n_tasks <= 0) return;
    if (n_tasks == 1 || workers_.empty()) {
      for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    dispatch(n_tasks, [](void* ctx, int64_t task, int tid) { (*static_cast<Fn*>(ctx))(task, tid); },
             const_cast<void*>(static_cast<const void*>(&fn)), false);
  }
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t task, int thread_id)>& fn) {
    parallel_for<const std::function<void(int64_t, int)>&>(n_tasks, fn);
  }

  // Calls fn(thread_id) once on every thread (for per-thread setup or static splits).
  template <class F>
  void run_on_all(F&& fn) {
    if (workers_.empty()) {
      fn(0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    dispatch(n_threads_, [](void* ctx, int64_t, int tid) { (*static_cast<Fn*>(ctx))(tid); },
             const_cast<void*>(static_cast<const void*>(&fn)), true);
  }
  void run_on_all(const std::function<void(int thread_id)>& fn) {
    run_on_all<const std::function<void(int)>&>(fn);
  }

 private:
  using Call = void (*)(void* ctx, int64_t task, int tid);
  void dispatch(int64_t n_tasks, Call call, void* ctx, bool once_per_thread);
  void worker(int id);
  void run_tasks(int tid);
  void record_error();

  // state_: [63:32] loop sequence number, [31] open (workers may still join), [30:0] workers inside the loop.
  // A worker joins with a CAS that keeps the sequence and the open bit; dispatch() closes the loop once its own
  // share is done and waits only for the workers that joined, so a descheduled idle worker never holds it up.
  static constexpr uint64_t kOpen = uint64_t{1} << 31, kActiveMask = kOpen - 1;

  int n_threads_;
  std::vector<std::thread> workers_;
  // The current loop; written before state_ opens it (release), read by workers after joining (acquire).
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_tasks_ = 0;
  bool once_per_thread_ = false;
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<int64_t> next_task_{0};
  alignas(64) std::atomic<int> sleeping_{0};
  std::atomic<int> ran_{0};  // workers that ran a once-per-thread loop
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards the sleep/wake hand-off and error_
  std::condition_variable cv_;
  std::exception_ptr error_;  // first exception of the current loop
};

}  // namespace moe
