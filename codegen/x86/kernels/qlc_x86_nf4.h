// qlc_x86_nf4.h - projection by a weight kept in bitsandbytes' NF4 format.
//
// W [N, K] is flattened and split in blocks of BLOCK elements (blocks straddle rows when
// K % BLOCK != 0); element e is NF4 code (byte e/2, high nibble first for even e) times
// its block's absmax. With double quantization (DQ) the absmax is itself a code of the
// dynamic 8-bit map, scaled by one f32 per 256 blocks, plus an offset:
//   absmax[b] = dyn[code8[b]] * absmax2[b / 256] + offset   (rounded as bitsandbytes).
// Per output row the kernel decodes the row's codes through a 16-entry table held in
// registers, scales them by the block absmax into a row buffer (exactly bitsandbytes'
// dequantized weight), then takes its dot product with every token's x.
#ifndef QLC_X86_NF4_H
#define QLC_X86_NF4_H

#include "qlc_nf4_tables.h"
#include "qlc_x86_gemm.h"
#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

#include <type_traits>
#include <vector>

namespace qlc {
namespace x86 {

/// Code of flattened element e.
inline int nf4_code_at(const uint8_t *q, int64_t e) {
  return e % 2 == 0 ? q[e / 2] >> 4 : q[e / 2] & 0xF;
}

/// Decodes NF4 codes into floats W at a time, from an even element: the portable one
/// decodes none (W = 0) and leaves every element to the scalar loop.
template <class Isa> struct Nf4Decoder {
  static constexpr int W = 0;
  static void decode(const uint8_t *, float, float *) {}
};

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
/// 8 codes from 4 bytes: nibbles to int32 lanes (high first), then the table lookup
/// as two 8-entry permutes blended on bit 3 of the code.
template <> struct Nf4Decoder<Avx2> {
  static constexpr int W = 8;
  static void decode(const uint8_t *q, float scale, float *out) {
    int32_t word;
    std::memcpy(&word, q, 4);
    const __m128i raw = _mm_cvtsi32_si128(word), mask = _mm_set1_epi8(0x0F);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask), lo = _mm_and_si128(raw, mask);
    const __m256i idx = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
    const __m256 low = _mm256_permutevar8x32_ps(_mm256_load_ps(nf4_values), idx);
    const __m256 high = _mm256_permutevar8x32_ps(_mm256_load_ps(nf4_values + 8), idx);
    const __m256 v =
        _mm256_blendv_ps(low, high, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
    _mm256_storeu_ps(out, _mm256_mul_ps(v, _mm256_set1_ps(scale)));
  }
};
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
/// 16 codes from 8 bytes: one 16-entry permute.
template <> struct Nf4Decoder<Avx512> {
  static constexpr int W = 16;
  static void decode(const uint8_t *q, float scale, float *out) {
    const __m128i raw = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(q));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask), lo = _mm_and_si128(raw, mask);
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
    const __m512 v = _mm512_permutexvar_ps(idx, _mm512_load_ps(nf4_values));
    _mm512_storeu_ps(out, _mm512_mul_ps(v, _mm512_set1_ps(scale)));
  }
};
#endif

/// The absmax of block b: stored f32, or (DQ) a dynamic-map code scaled and offset.
template <bool DQ>
inline float nf4_block_absmax(const std::conditional_t<DQ, uint8_t, float> *absmax,
                              const float *absmax2, float offset, int64_t b) {
  if constexpr (DQ) {
    volatile float scaled = nf4_dynamic_map[absmax[b]] * absmax2[b / 256]; // no fused add
    return scaled + offset;
  } else {
    (void)absmax2;
    (void)offset;
    return absmax[b];
  }
}

/// Writes the `len` dequantized elements starting at flattened element e0 into `row`.
template <class Isa, int BLOCK, bool DQ>
inline void nf4_dequant(const uint8_t *q, const std::conditional_t<DQ, uint8_t, float> *absmax,
                        const float *absmax2, float offset, int64_t e0, int64_t len,
                        float *row) {
  using D = Nf4Decoder<Isa>;
  const int64_t e1 = e0 + len;
  for (int64_t e = e0; e < e1;) {
    const int64_t b = e / BLOCK, end = (b + 1) * BLOCK < e1 ? (b + 1) * BLOCK : e1;
    const float scale = nf4_block_absmax<DQ>(absmax, absmax2, offset, b);
    if constexpr (D::W > 0) {
      for (; e < end && e % 2 != 0; ++e)
        row[e - e0] = nf4_values[nf4_code_at(q, e)] * scale;
      for (; e + D::W <= end; e += D::W)
        D::decode(q + e / 2, scale, row + (e - e0));
    }
    for (; e < end; ++e)
      row[e - e0] = nf4_values[nf4_code_at(q, e)] * scale;
  }
}

/// Row source for gemm_packed: W[n][k0, k0+kc) exactly as bitsandbytes dequantizes it.
template <class Isa, int K, int BLOCK, bool DQ> struct Nf4Rows {
  const uint8_t *q;
  const std::conditional_t<DQ, uint8_t, float> *absmax;
  const float *absmax2;
  float offset;
  void operator()(int64_t n, int64_t k0, int64_t kc, float *out) const {
    nf4_dequant<Isa, BLOCK, DQ>(q, absmax, absmax2, offset, n * static_cast<int64_t>(K) + k0,
                                kc, out);
  }
};

/// y[M, N] = x[M, K] * dequant(W)^T + bias. DQ: `absmax` holds ui8 codes, `absmax2`
/// one scale per 256 blocks and `offset` the mean added back; otherwise f32 absmax.
template <class Isa, int K, int N, int BLOCK, bool DQ, class T = DefaultTiling>
void qlinear_nf4(const qlc_exec_ctx *c, int64_t M, const float *x, const uint8_t *qweight,
                 const std::conditional_t<DQ, uint8_t, float> *absmax, const float *absmax2,
                 float offset, const float *bias, float *y) {
  static_assert(BLOCK > 0, "NF4 blocks hold at least one element");
  constexpr int W = Isa::W;
  if (M <= 0)
    return;
  if (M >= 4) {
    gemm_packed<Isa, K, N, T>(c, M, x, Nf4Rows<Isa, K, BLOCK, DQ>{qweight, absmax, absmax2, offset},
                           bias, y);
    return;
  }
  const int64_t grain = grain_for(static_cast<int64_t>(K) * (M < 64 ? M + 1 : 64), 32768);
  parallel_for(c, N, grain < 4 ? 4 : grain, [&](int64_t n0, int64_t n1) {
    std::vector<float> row(K);
    for (int64_t n = n0; n < n1; ++n) {
      nf4_dequant<Isa, BLOCK, DQ>(qweight, absmax, absmax2, offset,
                                  n * static_cast<int64_t>(K), K, row.data());
      for (int64_t m = 0; m < M; ++m) {
        const float *xr = x + m * K;
        // Four independent accumulators, so the FMA latency is hidden.
        typename Isa::V a0 = Isa::zero(), a1 = Isa::zero(), a2 = Isa::zero(), a3 = Isa::zero();
        const float *r = row.data();
        int64_t k = 0;
        for (; k + 4 * W <= K; k += 4 * W) {
          a0 = Isa::fma(Isa::load(r + k), Isa::load(xr + k), a0);
          a1 = Isa::fma(Isa::load(r + k + W), Isa::load(xr + k + W), a1);
          a2 = Isa::fma(Isa::load(r + k + 2 * W), Isa::load(xr + k + 2 * W), a2);
          a3 = Isa::fma(Isa::load(r + k + 3 * W), Isa::load(xr + k + 3 * W), a3);
        }
        for (; k + W <= K; k += W)
          a0 = Isa::fma(Isa::load(r + k), Isa::load(xr + k), a0);
        float s = Isa::hsum(Isa::add(Isa::add(a0, a1), Isa::add(a2, a3)));
        for (; k < K; ++k)
          s += row[k] * xr[k];
        y[m * N + n] = bias != nullptr ? s + bias[n] : s;
      }
    }
  });
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_NF4_H
