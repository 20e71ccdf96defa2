// qlc_x86_linear.h - dense projection y = x * W^T (+ bias), W in [N, K] row-major.
//
// Specialized on K and N at compile time. Few token rows (decode): a register-blocked
// micro-kernel computes MR token rows against NR weight rows as dot products along K,
// weights widened from bf16/f16 in registers, and the next tile's rows prefetched. Many
// token rows (prefill): the packed GEMM of qlc_x86_gemm.h. Work is split over N (weight
// rows), so every thread streams a disjoint part of W.
#ifndef QLC_X86_LINEAR_H
#define QLC_X86_LINEAR_H

#include "qlc_x86_gemm.h"
#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

#include <type_traits>

namespace qlc {
namespace x86 {

/// PREFETCH: the NR rows after this tile are prefetched (one line per 64 bytes read), so
/// the next tile's short row streams are in flight while this one computes.
template <class Isa, int K, int MR, int NR, class WT, bool PREFETCH = false>
inline void linear_tile(const float *x, int64_t ldx, const WT *w, const float *bias,
                        float *y, int64_t ldy) {
  using V = typename Isa::V;
  constexpr int W = Isa::W;
  constexpr int KV = (K / W) * W;
  constexpr int PF_STEP = 64 / sizeof(WT) < W ? W : 64 / sizeof(WT);
  V acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j)
      acc[i][j] = Isa::zero();
  for (int k = 0; k < KV; k += W) {
    if constexpr (PREFETCH && W > 1) {
      if (k % PF_STEP == 0) {
#pragma GCC unroll 16
        for (int j = 0; j < NR; ++j)
          __builtin_prefetch(w + static_cast<int64_t>(NR + j) * K + k);
      }
    }
    V wv[NR];
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j)
      wv[j] = Isa::load(w + static_cast<int64_t>(j) * K + k);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V xv = Isa::load(x + i * ldx + k);
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j)
        acc[i][j] = Isa::fma(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = Isa::hsum(acc[i][j]);
      for (int k = KV; k < K; ++k)
        s += x[i * ldx + k] * to_f32(w[static_cast<int64_t>(j) * K + k]);
      if (bias != nullptr)
        s += bias[j];
      y[i * ldy + j] = s;
    }
  }
}

/// The register tiles of few token rows; T (qlc_x86_gemm.h) overrides the defaults.
template <class Isa, class T = DefaultTiling> struct LinearBlocking {
  static constexpr int MR = T::small_mr ? T::small_mr : (Isa::W >= 16 ? 4 : (Isa::W >= 8 ? 4 : 2));
  static constexpr int NR = T::small_nr ? T::small_nr : (Isa::W >= 16 ? 4 : 2);
  static constexpr int NR_GEMV = T::gemv_rows ? T::gemv_rows : (Isa::W >= 8 ? 8 : 4);
  /// From this many token rows on, the packed GEMM (qlc_x86_gemm.h) is used.
  static constexpr int GEMM_MIN_M = 16;
};

/// Rows [m0, m0+mc) of x against weight rows [n0, n1).
template <class Isa, int K, int N, class WT, class T = DefaultTiling>
inline void linear_block(int64_t mc, const float *x, const WT *w, const float *bias,
                         float *y, int64_t n0, int64_t n1) {
  using B = LinearBlocking<Isa, T>;
  auto b = [&](int64_t n) { return bias ? bias + n : nullptr; };
  if (mc == 1) {
    int64_t n = n0;
    for (; n + 2 * B::NR_GEMV <= n1; n += B::NR_GEMV)
      linear_tile<Isa, K, 1, B::NR_GEMV, WT, true>(x, K, w + n * K, b(n), y + n, N);
    for (; n + B::NR_GEMV <= n1; n += B::NR_GEMV)
      linear_tile<Isa, K, 1, B::NR_GEMV>(x, K, w + n * K, b(n), y + n, N);
    for (; n < n1; ++n)
      linear_tile<Isa, K, 1, 1>(x, K, w + n * K, b(n), y + n, N);
    return;
  }
  int64_t n = n0;
  for (; n + B::NR <= n1; n += B::NR) {
    int64_t m = 0;
    for (; m + B::MR <= mc; m += B::MR)
      linear_tile<Isa, K, B::MR, B::NR>(x + m * K, K, w + n * K, b(n), y + m * N + n, N);
    for (; m < mc; ++m)
      linear_tile<Isa, K, 1, B::NR>(x + m * K, K, w + n * K, b(n), y + m * N + n, N);
  }
  for (; n < n1; ++n) {
    int64_t m = 0;
    for (; m + B::MR <= mc; m += B::MR)
      linear_tile<Isa, K, B::MR, 1>(x + m * K, K, w + n * K, b(n), y + m * N + n, N);
    for (; m < mc; ++m)
      linear_tile<Isa, K, 1, 1>(x + m * K, K, w + n * K, b(n), y + m * N + n, N);
  }
}

/// y[M, N] = x[M, K] * w[N, K]^T + bias[N] (bias may be null). T: the tiling.
template <class Isa, int K, int N, class WT, class T = DefaultTiling>
void linear(const qlc_exec_ctx *c, int64_t M, const float *x, const WT *w,
            const float *bias, float *y) {
  // Tokens are processed in chunks that keep a chunk of x in the L2 cache while the
  // weight rows of a task stream through.
  if (M >= LinearBlocking<Isa, T>::GEMM_MIN_M) {
    gemm_packed<Isa, K, N, T>(c, M, x, DenseRows<Isa, K, WT>{w}, bias, y);
    return;
  }
  constexpr int64_t MC = 64;
  const int64_t grain = grain_for(static_cast<int64_t>(K) * (M < MC ? M : MC), 32768);
  parallel_for(c, N, grain < 4 ? 4 : grain, [&](int64_t n0, int64_t n1) {
    for (int64_t m0 = 0; m0 < M; m0 += MC) {
      int64_t mc = M - m0 < MC ? M - m0 : MC;
      linear_block<Isa, K, N, WT, T>(mc, x + m0 * K, w, bias, y + m0 * N, n0, n1);
    }
  });
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_LINEAR_H
