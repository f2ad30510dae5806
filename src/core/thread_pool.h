// One persistent pool of worker threads. Work is handed out dynamically from an atomic counter, so uneven
// tiles (MoE experts with different token counts) balance themselves. The calling thread takes part.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads including the caller; <= 0 means hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread_id) for every task in [0, n_tasks), each exactly once, spread over the threads.
  // Blocks until all are done. Not reentrant: fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t task, int thread_id)>& fn);

  // Calls fn(thread_id) once on every thread (for per-thread setup or static splits).
  void run_on_all(const std::function<void(int thread_id)>& fn);

 private:
  void worker(int id);
  void dispatch(const std::function<void(int)>& body);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* body_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr worker_error_;  // first exception thrown by a worker in the current dispatch
  std::atomic<int64_t> next_task_{0};
};

}  // namespace moe
