//===- KernelTestUtil.h - random inputs and references for kernel tests ---===//
#ifndef QLC_TEST_KERNELTESTUTIL_H
#define QLC_TEST_KERNELTESTUTIL_H

#include "qlc_x86_isa.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qlc::test {

inline std::vector<float> randomFloats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Storage-type values whose f32 widening is exact, with the widened copy.
template <class T> struct Stored {
  std::vector<T> data;
  std::vector<float> wide;
};

inline uint16_t toBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16);
}
inline uint16_t toHalfBits(float f) {
  // Exact for the values used here: |f| in [2^-10, 2) with 10 mantissa bits kept.
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u, exp = (u >> 23) & 0xff, man = (u >> 13) & 0x3ff;
  if (exp < 127 - 14)
    return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (exp - 127 + 15) << 10 | man);
}

template <class T> Stored<T> randomStored(size_t n, uint32_t seed) {
  std::vector<float> f = randomFloats(n, seed);
  Stored<T> s;
  s.data.resize(n);
  s.wide.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<T, float>) {
      s.data[i] = f[i];
    } else if constexpr (std::is_same_v<T, qlc::bf16>) {
      s.data[i].bits = toBf16Bits(f[i]);
    } else {
      s.data[i].bits = toHalfBits(f[i]);
    }
    s.wide[i] = qlc::to_f32(s.data[i]);
  }
  return s;
}

/// ||a - b|| / ||b||, with NaN anywhere counting as a failure (infinity).
inline double relErr(const std::vector<float> &a, const std::vector<double> &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]))
      return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

} // namespace qlc::test

#endif // QLC_TEST_KERNELTESTUTIL_H
