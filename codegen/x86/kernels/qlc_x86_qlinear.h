// qlc_x86_qlinear.h - projection by a weight kept quantized ("int" format).
//
// W [N, K] is stored as unsigned BITS-bit integers (4: two per byte, low nibble first;
// rows padded to whole bytes) with an f16 scale and a zero point per group of G input
// features. The kernel never materializes W in float: per group it accumulates
// sum_k q_k * x_k with the integers widened in registers, then applies
//   y += scale * (sum_k q_k x_k - zero * sum_k x_k),
// where the per-group sums of x are computed once per token row for all N outputs.
#ifndef QLC_X86_QLINEAR_H
#define QLC_X86_QLINEAR_H

#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

#include <vector>

namespace qlc {
namespace x86 {

template <int BITS> inline int qint_at(const uint8_t *row, int64_t k) {
  if constexpr (BITS == 8)
    return row[k];
  else
    return (row[k / 2] >> (4 * (k % 2))) & 0xF;
}

/// sum_{k in [k0, k0+len)} q_k * x_k for one row of integers, vectorized.
template <class Isa, int BITS>
inline float qdot(const uint8_t *row, const float *x, int64_t k0, int64_t len) {
  constexpr int W = Isa::W;
  typename Isa::V acc = Isa::zero();
  int64_t i = 0;
  if constexpr (BITS == 8 || W % 2 == 0) {
    for (; i + W <= len; i += W) {
      typename Isa::V q = BITS == 8 ? Isa::load_u8(row + k0 + i) : Isa::load_u4(row + (k0 + i) / 2);
      acc = Isa::fma(q, Isa::load(x + k0 + i), acc);
    }
  }
  float s = Isa::hsum(acc);
  for (; i < len; ++i)
    s += static_cast<float>(qint_at<BITS>(row, k0 + i)) * x[k0 + i];
  return s;
}

/// y[M, N] = x[M, K] * dequant(W)^T + bias. zeros == nullptr: symmetric (zero 2^(BITS-1)).
template <class Isa, int K, int N, int BITS, int G>
void qlinear_int(const qlc_exec_ctx *c, int64_t M, const float *x, const uint8_t *qweight,
                 const qlc::f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(BITS == 4 || BITS == 8, "int format is 4 or 8 bits");
  static_assert(G % 2 == 0 || G == K || BITS == 8, "4-bit groups start on whole bytes");
  constexpr int64_t GROUPS = (K + G - 1) / G;
  constexpr int64_t ROW_BYTES = (static_cast<int64_t>(K) * BITS + 7) / 8;
  constexpr int SYM_ZERO = 1 << (BITS - 1);
  if (M <= 0)
    return;
  // Per-group sums of x, shared by every output row.
  std::vector<float> xsum(static_cast<size_t>(M * GROUPS));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < GROUPS; ++g) {
      const int64_t b = g * G, e = b + G < K ? b + G : K;
      float s = 0.0f;
      for (int64_t k = b; k < e; ++k)
        s += x[m * K + k];
      xsum[m * GROUPS + g] = s;
    }
  const int64_t grain = grain_for(static_cast<int64_t>(K) * (M < 64 ? M : 64), 32768);
  parallel_for(c, N, grain < 4 ? 4 : grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t *row = qweight + n * ROW_BYTES;
      for (int64_t m = 0; m < M; ++m) {
        const float *xr = x + m * K;
        float acc = bias != nullptr ? bias[n] : 0.0f;
        for (int64_t g = 0; g < GROUPS; ++g) {
          const int64_t b = g * G, len = b + G < K ? G : K - b;
          const float scale = to_f32(scales[n * GROUPS + g]);
          const float zero =
              zeros != nullptr ? static_cast<float>(zeros[n * GROUPS + g]) : SYM_ZERO;
          acc += scale * (qdot<Isa, BITS>(row, xr, b, len) - zero * xsum[m * GROUPS + g]);
        }
        y[m * N + n] = acc;
      }
    }
  });
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_QLINEAR_H
