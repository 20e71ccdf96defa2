//===- KernelTestCtx.h - an execution context for kernel tests -*- C++ -*-===//
#ifndef QLC_TEST_KERNELTESTCTX_H
#define QLC_TEST_KERNELTESTCTX_H

#include "ThreadPool.h"
#include "qlc/abi.h"

#include <memory>

namespace qlc::test {

/// A context with no weights or KV cache, on the runtime's thread pool when threads > 1
/// (serial otherwise).
struct Ctx {
  explicit Ctx(int threads) {
    if (threads > 1) {
      pool = std::make_unique<rt::ThreadPool>(threads);
      c.pool = pool.get();
      c.parallel_for = &rt::ThreadPool::parallelForC;
    }
  }
  std::unique_ptr<rt::ThreadPool> pool;
  qlc_exec_ctx c{};
};

} // namespace qlc::test

#endif // QLC_TEST_KERNELTESTCTX_H
