// The thread pool: every task runs exactly once, exceptions reach the caller, run_on_all visits every thread,
// and many tiny loops in a row (the decode pattern) neither lose nor repeat work.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <vector>

#include "core/thread_pool.h"

using moe::ThreadPool;

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_tid{0};
      pool.parallel_for(n, [&](int64_t t, int tid) {
        hits[static_cast<size_t>(t)].fetch_add(1);
        if (tid < 0 || tid >= threads) bad_tid = 1;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads, " << n << " tasks";
      EXPECT_EQ(bad_tid.load(), 0);
    }
  }
}

TEST(ThreadPool, ManySmallLoopsInARow) {
  ThreadPool pool(2);
  int64_t total = 0;
  for (int i = 0; i < 20000; ++i) {
    std::atomic<int64_t> sum{0};
    pool.parallel_for(1 + i % 5, [&](int64_t t, int) { sum.fetch_add(t + 1); });
    const int64_t n = 1 + i % 5;
    ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "loop " << i;
    total += sum.load();
  }
  EXPECT_GT(total, 0);
}

TEST(ThreadPool, StdFunctionOverloadStillWorks) {
  ThreadPool pool(2);
  std::atomic<int> n{0};
  const std::function<void(int64_t, int)> fn = [&](int64_t, int) { n.fetch_add(1); };
  pool.parallel_for(10, fn);
  EXPECT_EQ(n.load(), 10);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(100, [&](int64_t t, int) {
                 if (t == 57) throw std::runtime_error("task 57");
               }),
               std::runtime_error);
  // The pool stays usable.
  std::atomic<int> n{0};
  pool.parallel_for(10, [&](int64_t, int) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 10);
}

TEST(ThreadPool, RunOnAllVisitsEveryThreadOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 100; ++rep) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(threads));
      pool.run_on_all([&](int tid) { seen[static_cast<size_t>(tid)].fetch_add(1); });
      for (auto& s : seen) ASSERT_EQ(s.load(), 1);
    }
  }
}

TEST(ThreadPool, WorkersWakeUpAfterSleeping) {
  ThreadPool pool(2);
  std::atomic<int> n{0};
  pool.parallel_for(4, [&](int64_t, int) { n.fetch_add(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // longer than the spin time: workers sleep
  std::atomic<int> worker_ran{0};
  for (int i = 0; i < 50 && !worker_ran; ++i)
    pool.parallel_for(64, [&](int64_t, int tid) {
      n.fetch_add(1);
      if (tid != 0) worker_ran = 1;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    });
  EXPECT_EQ(worker_ran.load(), 1);
}
