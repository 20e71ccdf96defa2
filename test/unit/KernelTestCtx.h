//===- KernelTestCtx.h - an execution context for kernel tests -*- C++ -*-===//
#ifndef QLC_TEST_KERNELTESTCTX_H
#define QLC_TEST_KERNELTESTCTX_H

#include "ThreadPool.h"
#include "qlc/abi.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

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

/// A paged KV cache (qlc/abi.h) for kernel tests: slots * ceil(maxSeq / P) pages plus
/// a few spare ones, `fill`ed, and a block table that gives the slots' pages in a
/// shuffled order, so that addressing through the table is what the tests check.
struct PagedKv {
  PagedKv(int slots, int64_t maxSeq, int P, int64_t positionBytes, uint8_t fill,
          uint64_t seed = 7)
      : P(P), perSeq((maxSeq + P - 1) / P), positionBytes(positionBytes) {
    const int64_t pages = slots * perSeq + 3;
    bytes.assign(static_cast<size_t>(pages * P * positionBytes), fill);
    std::vector<int32_t> order(static_cast<size_t>(pages));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    table.assign(order.begin(), order.begin() + slots * perSeq);
    nPages = pages;
  }
  void attach(qlc_exec_ctx &c) {
    c.kv = bytes.data();
    c.block_table = table.data();
    c.page_size = P;
    c.max_pages_per_seq = perSeq;
    c.n_pages = nPages;
  }
  /// The row of (slot, layer of L, k|v) at `pos`, rows of `rowBytes`.
  uint8_t *row(int slot, int layer, int L, int which, int64_t pos, int64_t rowBytes) {
    const int64_t page = table[static_cast<size_t>(slot * perSeq + pos / P)];
    return bytes.data() + (((page * L + layer) * 2 + which) * P + pos % P) * rowBytes;
  }
  int P;
  int64_t perSeq, positionBytes, nPages = 0;
  std::vector<uint8_t> bytes;
  std::vector<int32_t> table;
};

} // namespace qlc::test

#endif // QLC_TEST_KERNELTESTCTX_H
