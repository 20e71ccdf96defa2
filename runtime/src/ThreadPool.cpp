//===- ThreadPool.cpp - a spinning fork-join pool for kernels --------------===//
#include "ThreadPool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define QLC_PAUSE() _mm_pause()
#else
#define QLC_PAUSE() ((void)0)
#endif

namespace qlc::rt {

ThreadPool::ThreadPool(int nThreads) {
  for (int i = 1; i < nThreads; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto &t : workers_)
    t.join();
}

bool ThreadPool::runChunks(uint32_t gen) {
  bool ran = false;
  for (;;) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(c >> 32) != gen)
      return ran;
    const Job &job = jobs_[gen & 1];
    int64_t idx = static_cast<int64_t>(c & 0xffffffffu);
    if (idx >= job.nChunks)
      return ran;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel))
      continue;
    // The claim succeeded, so job `gen` is still running and its slot is stable.
    int64_t b = idx * job.chunk, e = b + job.chunk < job.n ? b + job.chunk : job.n;
    job.fn(job.arg, b, e);
    done_.fetch_add(1, std::memory_order_acq_rel);
    ran = true;
  }
}

void ThreadPool::workerLoop() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = gen_.load(std::memory_order_acquire);
    int spins = 0;
    while (g == seen && !stop_.load(std::memory_order_relaxed)) {
      if (++spins < 20000) {
        QLC_PAUSE();
      } else {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return gen_.load() != seen || stop_.load(); });
      }
      g = gen_.load(std::memory_order_acquire);
    }
    if (stop_.load())
      return;
    seen = g;
    runChunks(g);
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, qlc_task_fn fn, void *arg) {
  if (n <= 0)
    return;
  const int64_t threads = size();
  int64_t chunk = (n + threads * 4 - 1) / (threads * 4);
  if (chunk < grain)
    chunk = grain;
  const int64_t nChunks = (n + chunk - 1) / chunk;
  if (nChunks <= 1 || workers_.empty()) {
    fn(arg, 0, n);
    return;
  }
  const uint32_t gen = gen_.load(std::memory_order_relaxed) + 1;
  Job &job = jobs_[gen & 1];
  job.fn = fn;
  job.arg = arg;
  job.n = n;
  job.chunk = chunk;
  job.nChunks = nChunks;
  done_.store(0, std::memory_order_relaxed);
  claim_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(mu_);
    gen_.store(gen, std::memory_order_release);
  }
  cv_.notify_all();
  runChunks(gen);
  while (done_.load(std::memory_order_acquire) < nChunks)
    QLC_PAUSE();
}

void ThreadPool::parallelForC(void *pool, int64_t n, int64_t grain, qlc_task_fn fn,
                              void *arg) {
  static_cast<ThreadPool *>(pool)->parallelFor(n, grain, fn, arg);
}

} // namespace qlc::rt
