// qlc_x86_gemm.h - the many-token path of every projection: a packed, register-blocked GEMM.
//
// y[M, N] = x[M, K] * W^T (+ bias), W [N, K] given by a "row source" that writes a piece
// of a weight row as floats: widened from bf16/f16, or dequantized from a packed format.
// The output columns are cut into panels of NR weight rows; a task takes a range of
// panels. Per panel and per KC-long slice of K, the NR x KC block of W is written once,
// k-major, into a buffer that stays in the L1 cache (the dequantization is paid once for
// all M token rows), then an MR x NR micro-kernel runs over every block of MR token rows:
// it broadcasts one x element per row and multiplies it with NR/W vectors of the panel,
// MR * NR/W accumulators held in registers (the loops are unrolled explicitly, since the
// generated code is built at -O2).
#ifndef QLC_X86_GEMM_H
#define QLC_X86_GEMM_H

#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

namespace qlc {
namespace x86 {

/// The tunable blocking of the projections, chosen per M-range by qlc-select-tiling
/// (passes/Tiling.cpp lists the legal values); 0 takes the ISA's default.
///   GEMV_ROWS  decode: weight rows per step (dense M == 1: linear_tile's NR; int M < 4)
///   SMALL_MR, SMALL_NR  dense 2 <= M < 16: linear_tile's register tile
///   GEMM_MR, GEMM_NV, GEMM_KC  the packed GEMM: MR rows x NV vectors, K slices of KC
template <int GEMV_ROWS = 0, int SMALL_MR = 0, int SMALL_NR = 0, int GEMM_MR = 0,
          int GEMM_NV = 0, int GEMM_KC = 0>
struct Tiling {
  static constexpr int gemv_rows = GEMV_ROWS, small_mr = SMALL_MR, small_nr = SMALL_NR;
  static constexpr int gemm_mr = GEMM_MR, gemm_nv = GEMM_NV, gemm_kc = GEMM_KC;
};
using DefaultTiling = Tiling<>;

/// Register blocking per ISA: MR token rows x NV vectors of weight columns (NR = NV * W),
/// and the K slice whose packed panel (NR * KC floats, 16 KiB) stays in L1.
template <class Isa, class T = DefaultTiling> struct GemmBlocking {
  static constexpr int MR = T::gemm_mr ? T::gemm_mr : (Isa::W >= 16 ? 12 : (Isa::W >= 8 ? 6 : 4));
  static constexpr int NV = T::gemm_nv ? T::gemm_nv : (Isa::W >= 8 ? 2 : 4);
  static constexpr int NR = NV * Isa::W;
  static constexpr int KC = T::gemm_kc ? T::gemm_kc : 4096 / NR;
  static_assert(MR >= 1 && MR <= 16 && NV >= 1 && NV <= 4, "register tile out of range");
  static_assert(KC >= 8 && KC * NR <= 16384, "the packed panel stays within 64 KiB");
};

/// c[i][0..NR) = addend[i][0..NR) + sum_k x[i][k] * pk[k][0..NR) for i < MR_.
/// addend may alias c (accumulation over K slices); its row stride may be 0 (bias).
template <class Isa, int MR_, int NV>
inline void gemm_micro(int64_t kc, const float *x, int64_t ldx, const float *pk,
                       const float *addend, int64_t ld_add, float *c, int64_t ldc) {
  using V = typename Isa::V;
  constexpr int W = Isa::W, NR = NV * W;
  V acc[MR_][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR_; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j)
      acc[i][j] = Isa::zero();
  for (int64_t k = 0; k < kc; ++k) {
    V w[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j)
      w[j] = Isa::load(pk + k * NR + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR_; ++i) {
      const V xb = Isa::set1(x[i * ldx + k]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j)
        acc[i][j] = Isa::fma(xb, w[j], acc[i][j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR_; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j)
      Isa::store(c + i * ldc + j * W, Isa::add(acc[i][j], Isa::load(addend + i * ld_add + j * W)));
}

/// gemm_micro for a runtime row count mr in [1, MR_].
template <class Isa, int MR_, int NV>
inline void gemm_micro_rows(int mr, int64_t kc, const float *x, int64_t ldx, const float *pk,
                            const float *addend, int64_t ld_add, float *c, int64_t ldc) {
  if constexpr (MR_ > 1) {
    if (mr < MR_)
      return gemm_micro_rows<Isa, MR_ - 1, NV>(mr, kc, x, ldx, pk, addend, ld_add, c, ldc);
  }
  gemm_micro<Isa, MR_, NV>(kc, x, ldx, pk, addend, ld_add, c, ldc);
}

/// Row source of a dense weight (f32, bf16 or f16 storage).
template <class Isa, int K, class WT> struct DenseRows {
  const WT *w;
  void operator()(int64_t n, int64_t k0, int64_t kc, float *out) const {
    const WT *r = w + n * K + k0;
    int64_t k = 0;
    if constexpr (Isa::W > 1)
      for (; k + Isa::W <= kc; k += Isa::W)
        Isa::store(out + k, Isa::load(r + k));
    for (; k < kc; ++k)
      out[k] = to_f32(r[k]);
  }
};

/// y[M, N] = x[M, K] * W^T + bias, W's rows produced by `rows` (see DenseRows).
template <class Isa, int K, int N, class T = DefaultTiling, class Rows>
void gemm_packed(const qlc_exec_ctx *c, int64_t M, const float *x, const Rows &rows,
                 const float *bias, float *y) {
  using B = GemmBlocking<Isa, T>;
  constexpr int NR = B::NR, KC = B::KC;
  constexpr int64_t PANELS = (N + NR - 1) / NR;
  if (M <= 0)
    return;
  const int64_t grain = grain_for(static_cast<int64_t>(NR) * K * M, 1 << 18);
  parallel_for(c, PANELS, grain, [&](int64_t p0, int64_t p1) {
    alignas(64) float pk[KC * NR];
    alignas(64) float bpan[NR];
    alignas(64) float tile[B::MR * NR];
    alignas(64) float rowbuf[KC];
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * NR;
      const int nr = N - n0 < NR ? static_cast<int>(N - n0) : NR;
      for (int j = 0; j < NR; ++j)
        bpan[j] = (bias != nullptr && j < nr) ? bias[n0 + j] : 0.0f;
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        for (int j = 0; j < nr; ++j) {
          rows(n0 + j, k0, kc, rowbuf);
          for (int64_t k = 0; k < kc; ++k)
            pk[k * NR + j] = rowbuf[k];
        }
        for (int j = nr; j < NR; ++j)
          for (int64_t k = 0; k < kc; ++k)
            pk[k * NR + j] = 0.0f;
        const bool first = k0 == 0;
        for (int64_t m = 0; m < M; m += B::MR) {
          const int mr = M - m < B::MR ? static_cast<int>(M - m) : B::MR;
          const float *xm = x + m * K + k0;
          float *ym = y + m * N + n0;
          if (nr == NR) {
            gemm_micro_rows<Isa, B::MR, B::NV>(mr, kc, xm, K, pk, first ? bpan : ym,
                                               first ? 0 : N, ym, N);
            continue;
          }
          // A partial panel goes through a tile so no column past N is written.
          if (!first)
            for (int i = 0; i < mr; ++i)
              for (int j = 0; j < NR; ++j)
                tile[i * NR + j] = j < nr ? ym[i * N + j] : 0.0f;
          gemm_micro_rows<Isa, B::MR, B::NV>(mr, kc, xm, K, pk, first ? bpan : tile,
                                             first ? 0 : NR, tile, NR);
          for (int i = 0; i < mr; ++i)
            for (int j = 0; j < nr; ++j)
              ym[i * N + j] = tile[i * NR + j];
        }
      }
    }
  });
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_GEMM_H
