// qlc_x86_qlinear.h - projection by a weight kept quantized ("int" format).
//
// W [N, K] is stored as unsigned BITS-bit integers (4: two per byte, low nibble first;
// rows padded to whole bytes) with an f16 scale and a zero point per group of G input
// features. Decode never materializes W in float: per group it accumulates
// sum_k q_k * x_k with the integers widened in registers, then applies
//   y += scale * (sum_k q_k x_k - zero * sum_k x_k),
// where the per-group sums of x are computed once per token row for all N outputs.
// From 4 token rows on, rows are dequantized into the packed GEMM (qlc_x86_gemm.h).
// qlinear_int_perm first gathers the input through an input permutation (act-order).
#ifndef QLC_X86_QLINEAR_H
#define QLC_X86_QLINEAR_H

#include "qlc_x86_gemm.h"
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

/// Row source for gemm_packed: W[n][k0, k0+kc) dequantized, (q - zero) * scale in f32.
template <class Isa, int K, int BITS, int G> struct IntRows {
  static constexpr int64_t GROUPS = (K + G - 1) / G;
  static constexpr int64_t ROW_BYTES = (static_cast<int64_t>(K) * BITS + 7) / 8;
  const uint8_t *q;
  const qlc::f16 *scales;
  const uint8_t *zeros;
  void operator()(int64_t n, int64_t k0, int64_t kc, float *out) const {
    const uint8_t *row = q + n * ROW_BYTES;
    const int64_t e = k0 + kc;
    for (int64_t k = k0; k < e;) {
      const int64_t g = k / G, gend = (g + 1) * G < e ? (g + 1) * G : e;
      const float s = to_f32(scales[n * GROUPS + g]);
      const float z = zeros != nullptr ? static_cast<float>(zeros[n * GROUPS + g])
                                       : static_cast<float>(1 << (BITS - 1));
      if constexpr (Isa::W > 1) {
        const typename Isa::V vs = Isa::set1(s), vz = Isa::set1(-z);
        if (BITS == 8 || k % 2 == 0)
          for (; k + Isa::W <= gend; k += Isa::W) {
            typename Isa::V v = BITS == 8 ? Isa::load_u8(row + k) : Isa::load_u4(row + k / 2);
            Isa::store(out + (k - k0), Isa::mul(Isa::add(v, vz), vs));
          }
      }
      for (; k < gend; ++k)
        out[k - k0] = (static_cast<float>(qint_at<BITS>(row, k)) - z) * s;
    }
  }
};

/// Few token rows: NRQ weight rows at a time, per group the integer dot products are
/// accumulated in vectors, scaled into per-row vector totals (no reduction per group),
/// and zero * sum(x of the group) is subtracted once per group.
template <class Isa, int K, int N, int BITS, int G, int NRQ>
inline void qlinear_int_rows(const float *x, const float *xsum, const uint8_t *qweight,
                             const qlc::f16 *scales, const uint8_t *zeros, const float *bias,
                             float *y, int64_t n) {
  using V = typename Isa::V;
  constexpr int W = Isa::W;
  constexpr int64_t GROUPS = (K + G - 1) / G;
  constexpr int64_t ROW_BYTES = (static_cast<int64_t>(K) * BITS + 7) / 8;
  constexpr float SYM_ZERO = static_cast<float>(1 << (BITS - 1));
  constexpr bool VEC = W > 1 && (BITS == 8 || W % 2 == 0);
  V tot[NRQ];
  float ssum[NRQ];
#pragma GCC unroll 8
  for (int j = 0; j < NRQ; ++j) {
    tot[j] = Isa::zero();
    ssum[j] = bias != nullptr ? bias[n + j] : 0.0f;
  }
  for (int64_t g = 0; g < GROUPS; ++g) {
    const int64_t b = g * G, e = b + G < K ? b + G : K;
    V ga[NRQ];
#pragma GCC unroll 8
    for (int j = 0; j < NRQ; ++j)
      ga[j] = Isa::zero();
    int64_t k = b;
    if constexpr (VEC) {
      for (; k + W <= e; k += W) {
        const V xv = Isa::load(x + k);
#pragma GCC unroll 8
        for (int j = 0; j < NRQ; ++j) {
          const uint8_t *row = qweight + (n + j) * ROW_BYTES;
          const V qv = BITS == 8 ? Isa::load_u8(row + k) : Isa::load_u4(row + k / 2);
          ga[j] = Isa::fma(qv, xv, ga[j]);
        }
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NRQ; ++j) {
      const int64_t gi = (n + j) * GROUPS + g;
      const float s = to_f32(scales[gi]);
      const float z = zeros != nullptr ? static_cast<float>(zeros[gi]) : SYM_ZERO;
      const uint8_t *row = qweight + (n + j) * ROW_BYTES;
      float rest = 0.0f;
      for (int64_t kk = k; kk < e; ++kk)
        rest += static_cast<float>(qint_at<BITS>(row, kk)) * x[kk];
      tot[j] = Isa::fma(Isa::set1(s), ga[j], tot[j]);
      ssum[j] += s * (rest - z * xsum[g]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NRQ; ++j)
    y[n + j] = Isa::hsum(tot[j]) + ssum[j];
}

/// y[M, N] = x[M, K] * dequant(W)^T + bias. zeros == nullptr: symmetric (zero 2^(BITS-1)).
template <class Isa, int K, int N, int BITS, int G, class T = DefaultTiling>
void qlinear_int(const qlc_exec_ctx *c, int64_t M, const float *x, const uint8_t *qweight,
                 const qlc::f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(BITS == 4 || BITS == 8, "int format is 4 or 8 bits");
  static_assert(G % 2 == 0 || G == K || BITS == 8, "4-bit groups start on whole bytes");
  constexpr int64_t GROUPS = (K + G - 1) / G;
  constexpr int NRQ = T::gemv_rows ? T::gemv_rows : 4;
  if (M <= 0)
    return;
  if (M >= 4) {
    gemm_packed<Isa, K, N, T>(c, M, x, IntRows<Isa, K, BITS, G>{qweight, scales, zeros}, bias, y);
    return;
  }
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
  const int64_t grain = grain_for(static_cast<int64_t>(K) * M, 32768);
  parallel_for(c, (N + NRQ - 1) / NRQ, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t m = 0; m < M; ++m) {
      const float *xr = x + m * K, *xs = xsum.data() + m * GROUPS;
      float *yr = y + m * N;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t * NRQ;
        if (n + NRQ <= N)
          qlinear_int_rows<Isa, K, N, BITS, G, NRQ>(xr, xs, qweight, scales, zeros, bias, yr, n);
        else
          for (int64_t r = n; r < N; ++r)
            qlinear_int_rows<Isa, K, N, BITS, G, 1>(xr, xs, qweight, scales, zeros, bias, yr, r);
      }
    }
  });
}

/// y[M, N] = x[:, perm] * dequant(W)^T + bias: W's columns are stored in the order of
/// `perm` (column j holds input feature perm[j]) so that its groups are contiguous, as
/// act-order GPTQ checkpoints need. The input rows are gathered into `xp` ([M, K]
/// scratch) once, then the kernel above runs on them.
template <class Isa, int K, int N, int BITS, int G, class T = DefaultTiling>
void qlinear_int_perm(const qlc_exec_ctx *c, int64_t M, const float *x, const int32_t *perm,
                      float *xp, const uint8_t *qweight, const qlc::f16 *scales,
                      const uint8_t *zeros, const float *bias, float *y) {
  for (int64_t m = 0; m < M; ++m) {
    const float *xr = x + m * K;
    float *out = xp + m * K;
    for (int64_t j = 0; j < K; ++j)
      out[j] = xr[perm[j]];
  }
  qlinear_int<Isa, K, N, BITS, G, T>(c, M, xp, qweight, scales, zeros, bias, y);
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_QLINEAR_H
