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

#include "qlc_x86_gemm.h"
#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

#include <type_traits>
#include <vector>

namespace qlc {
namespace x86 {

/// The NF4 code book, by 4-bit code (bitsandbytes' get_4bit_type("nf4")).
alignas(64) inline constexpr float nf4_values[16] = {
    -0x1.0p+0f,      -0x1.647362p-1f, -0x1.0cd66p-1f,  -0x1.94654p-2f,
    -0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f,
    0x1.45f5fep-4f,  0x1.4995c6p-3f,  0x1.f809bap-3f,  0x1.5a0674p-2f,
    0x1.c3497p-2f,   0x1.200f56p-1f,  0x1.722766p-1f,  0x1.0p+0f};

/// bitsandbytes' signed dynamic 8-bit map (create_dynamic_map()), for double quantization.
alignas(64) inline constexpr float nf4_dynamic_map[256] = {
    -0x1.fc6666p-1f, -0x1.f53334p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f, -0x1.df999ap-1f, -0x1.d86666p-1f,
    -0x1.d13334p-1f, -0x1.cap-1f, -0x1.c2ccccp-1f, -0x1.bb999ap-1f, -0x1.b46666p-1f, -0x1.ad3334p-1f,
    -0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.97999ap-1f, -0x1.906666p-1f, -0x1.893334p-1f, -0x1.82p-1f,
    -0x1.7accccp-1f, -0x1.73999ap-1f, -0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56ccccp-1f,
    -0x1.4f999ap-1f, -0x1.486668p-1f, -0x1.413334p-1f, -0x1.3ap-1f, -0x1.32ccccp-1f, -0x1.2b999ap-1f,
    -0x1.246668p-1f, -0x1.1d3334p-1f, -0x1.16p-1f, -0x1.0eccccp-1f, -0x1.079998p-1f, -0x1.006666p-1f,
    -0x1.f26664p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f, -0x1.b8ccccp-2f, -0x1.aa6666p-2f,
    -0x1.9cp-2f, -0x1.8d9998p-2f, -0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626666p-2f, -0x1.54p-2f,
    -0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f, -0x1.0cp-2f, -0x1.fb3332p-3f,
    -0x1.de6666p-3f, -0x1.c1999ap-3f, -0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3334p-3f, -0x1.4e6666p-3f,
    -0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f, -0x1.93d70ap-4f, -0x1.8851eep-4f,
    -0x1.7ccccep-4f, -0x1.7147aep-4f, -0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb854p-4f, -0x1.433334p-4f,
    -0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f, -0x1.09999ap-4f, -0x1.fc28f6p-5f,
    -0x1.e51ebap-5f, -0x1.ce147ap-5f, -0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f,
    -0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c29p-5f, -0x1.fd70a4p-6f, -0x1.cf5c2ap-6f,
    -0x1.a147aep-6f, -0x1.733334p-6f, -0x1.451ebap-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
    -0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f, -0x1.e978d4p-8f, -0x1.c49ba6p-8f,
    -0x1.9fbe76p-8f, -0x1.7ae148p-8f, -0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f,
    -0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f, -0x1.eecbfep-11f, -0x1.b3d07cp-11f,
    -0x1.78d5p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f,
    -0x1.27476ep-21f, 0.0f, 0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f,
    0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f,
    0x1.02de02p-11f, 0x1.3dd982p-11f, 0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
    0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f,
    0x1.56041ap-8f, 0x1.7ae148p-8f, 0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f,
    0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f,
    0x1.451ebap-6f, 0x1.733334p-6f, 0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c29p-5f,
    0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f,
    0x1.b70a3ep-5f, 0x1.ce147ap-5f, 0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f,
    0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb854p-4f, 0x1.5a3d7p-4f,
    0x1.65c29p-4f, 0x1.7147aep-4f, 0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
    0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3334p-3f, 0x1.88p-3f,
    0x1.a4ccccp-3f, 0x1.c1999ap-3f, 0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f,
    0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f, 0x1.626666p-2f, 0x1.70ccccp-2f,
    0x1.7f3334p-2f, 0x1.8d9998p-2f, 0x1.9cp-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
    0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26664p-2f, 0x1.006666p-1f, 0x1.079998p-1f, 0x1.0eccccp-1f,
    0x1.16p-1f, 0x1.1d3334p-1f, 0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f,
    0x1.413334p-1f, 0x1.486668p-1f, 0x1.4f999ap-1f, 0x1.56ccccp-1f, 0x1.5ep-1f, 0x1.653334p-1f,
    0x1.6c6668p-1f, 0x1.73999ap-1f, 0x1.7accccp-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
    0x1.97999ap-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3334p-1f, 0x1.b46666p-1f, 0x1.bb999ap-1f,
    0x1.c2ccccp-1f, 0x1.cap-1f, 0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f,
    0x1.eep-1f, 0x1.f53334p-1f, 0x1.fc6666p-1f, 0x1.0p+0f,
};

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
template <class Isa, int K, int N, int BLOCK, bool DQ>
void qlinear_nf4(const qlc_exec_ctx *c, int64_t M, const float *x, const uint8_t *qweight,
                 const std::conditional_t<DQ, uint8_t, float> *absmax, const float *absmax2,
                 float offset, const float *bias, float *y) {
  static_assert(BLOCK > 0, "NF4 blocks hold at least one element");
  constexpr int W = Isa::W;
  if (M <= 0)
    return;
  if (M >= 4) {
    gemm_packed<Isa, K, N>(c, M, x, Nf4Rows<Isa, K, BLOCK, DQ>{qweight, absmax, absmax2, offset},
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
