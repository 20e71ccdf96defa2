// qlc_x86_parallel.h - runs a kernel's loop over the runtime's thread pool.
#ifndef QLC_X86_PARALLEL_H
#define QLC_X86_PARALLEL_H

#include "qlc/abi.h"

namespace qlc {
namespace x86 {

/// Calls f(begin, end) over [0, n) on the runtime's pool in chunks of >= grain items.
template <class F>
inline void parallel_for(const qlc_exec_ctx *c, int64_t n, int64_t grain, F &&f) {
  if (n <= 0)
    return;
  if (c == nullptr || c->parallel_for == nullptr || n <= grain) {
    f(int64_t{0}, n);
    return;
  }
  using Fn = typename std::remove_reference<F>::type;
  auto tramp = [](void *arg, int64_t b, int64_t e) { (*static_cast<Fn *>(arg))(b, e); };
  c->parallel_for(c->pool, n, grain, tramp, static_cast<void *>(&f));
}

/// Work items per task so that a task does at least ~`work` multiply-adds.
inline int64_t grain_for(int64_t cost_per_item, int64_t work = 16384) {
  int64_t g = work / (cost_per_item > 0 ? cost_per_item : 1);
  return g > 1 ? g : 1;
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_PARALLEL_H
