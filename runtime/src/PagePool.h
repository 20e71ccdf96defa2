//===- PagePool.h - the free pages of a session's KV cache -----*- C++ -*-===//
//
// The KV cache is a pool of pages (qlc/abi.h); a sequence takes pages as it grows and
// gives them back when its slot is reset. The pool hands out free pages last-in,
// first-out (a page just given back is taken next, while still in cache), starting
// from page 0 upward.
//
#ifndef QLC_RUNTIME_PAGEPOOL_H
#define QLC_RUNTIME_PAGEPOOL_H

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace qlc::rt {

class PagePool {
public:
  PagePool() = default;
  explicit PagePool(int32_t pages) : total_(pages) {
    free_.reserve(static_cast<size_t>(pages));
    for (int32_t p = pages - 1; p >= 0; --p)
      free_.push_back(p);
    taken_.assign(static_cast<size_t>(pages), false);
  }
  int32_t total() const { return total_; }
  int32_t available() const { return static_cast<int32_t>(free_.size()); }
  /// A free page, or -1 when none is left.
  int32_t take() {
    if (free_.empty())
      return -1;
    const int32_t p = free_.back();
    free_.pop_back();
    taken_[static_cast<size_t>(p)] = true;
    return p;
  }
  /// Returns a taken page; false (and no change) for a page not taken or out of range.
  bool give(int32_t p) {
    if (p < 0 || p >= total_ || !taken_[static_cast<size_t>(p)])
      return false;
    taken_[static_cast<size_t>(p)] = false;
    free_.push_back(p);
    return true;
  }
  /// Hands the free pages out in a random order from now on (tests of the addressing).
  void shuffle(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::shuffle(free_.begin(), free_.end(), rng);
  }

private:
  int32_t total_ = 0;
  std::vector<int32_t> free_;
  std::vector<bool> taken_;
};

} // namespace qlc::rt

#endif // QLC_RUNTIME_PAGEPOOL_H
