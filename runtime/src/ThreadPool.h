//===- ThreadPool.h - a spinning fork-join pool for kernels ----*- C++ -*-===//
#ifndef QLC_RUNTIME_THREADPOOL_H
#define QLC_RUNTIME_THREADPOOL_H

#include "qlc/abi.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace qlc::rt {

/// Fork-join pool: the caller takes part in every parallel_for. Workers spin briefly
/// between jobs (decode issues many short ones) and then sleep.
class ThreadPool {
public:
  explicit ThreadPool(int nThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  void parallelFor(int64_t n, int64_t grain, qlc_task_fn fn, void *arg);
  /// C entry point for qlc_exec_ctx::parallel_for.
  static void parallelForC(void *pool, int64_t n, int64_t grain, qlc_task_fn fn,
                           void *arg);

private:
  struct Job {
    qlc_task_fn fn = nullptr;
    void *arg = nullptr;
    int64_t n = 0, chunk = 0, nChunks = 0;
  };
  void workerLoop();
  bool runChunks(uint32_t gen);

  std::vector<std::thread> workers_;
  Job jobs_[2];
  // High 32 bits: job generation; low 32 bits: next chunk index to claim.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> gen_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

} // namespace qlc::rt

#endif // QLC_RUNTIME_THREADPOOL_H
