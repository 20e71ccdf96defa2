// qlc_x86_isa.h - vector ISA descriptions for the x86 kernels.
//
// Each ISA is a struct of static functions over its vector type; kernels are templates
// over the ISA, so one kernel source serves every x86 target and the generated code
// picks the ISA by name. Only the ISA the artifact is compiled for is instantiated.
#ifndef QLC_X86_ISA_H
#define QLC_X86_ISA_H

#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace qlc {

// Storage types of weights. bf16 and f16 are bit patterns; they are widened to f32 in
// registers by the ISA's loads.
struct bf16 { uint16_t bits; };
struct f16 { uint16_t bits; };

inline float to_f32(float v) { return v; }
inline float to_f32(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float to_f32(f16 v) {
  uint32_t h = v.bits, sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else { // subnormal: renormalize
      int e = -1;
      do { ++e; man <<= 1; } while (!(man & 0x400));
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
/// f32 to IEEE half, rounding to nearest even (overflow to infinity, NaN kept quiet).
inline f16 to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a >= 0x7f800000u)
    return {static_cast<uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u))};
  if (a >= 0x477ff000u) // rounds to 65520 or more
    return {static_cast<uint16_t>(sign | 0x7c00u)};
  if (a < 0x38800000u) { // a subnormal half: units of 2^-24, rounded to even
    float m;
    std::memcpy(&m, &a, 4);
    return {static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(m * 16777216.0f)))};
  }
  uint32_t h = ((a >> 23) - 112) << 10 | (a & 0x7fffffu) >> 13;
  const uint32_t rest = a & 0x1fffu;
  h += rest > 0x1000u || (rest == 0x1000u && (h & 1u));
  return {static_cast<uint16_t>(sign | h)};
}

namespace x86 {

// Portable fallback (baseline x86-64): one float per "vector"; the compiler may still
// auto-vectorize the loops around it.
struct Generic {
  static constexpr const char *name = "generic";
  static constexpr int W = 1;
  using V = float;
  static V zero() { return 0.0f; }
  static V set1(float a) { return a; }
  template <class T> static V load(const T *p) { return to_f32(*p); }
  static void store(float *p, V v) { *p = v; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
  static V mul(V a, V b) { return a * b; }
  static float hsum(V v) { return v; }
  static float widen(f16 h) { return to_f32(h); }
  static V load_u8(const uint8_t *p) { return static_cast<float>(*p); }
  // One element at an even nibble index (low nibble); u4 loads need W even otherwise.
  static V load_u4(const uint8_t *p) { return static_cast<float>(*p & 0xF); }
};

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
struct Avx2 {
  static constexpr const char *name = "avx2";
  static constexpr int W = 8;
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V load(const float *p) { return _mm256_loadu_ps(p); }
  static V load(const bf16 *p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static V load(const f16 *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
  }
  static void store(float *p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  /// One half widened to float.
  static float widen(f16 h) { return _cvtsh_ss(h.bits); }
  /// 8 unsigned bytes widened to float.
  static V load_u8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
  }
  /// 8 unsigned nibbles from 4 bytes, low nibble first, widened to float.
  static V load_u4(const uint8_t *p) {
    uint32_t word;
    std::memcpy(&word, p, 4);
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts);
    return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xF)));
  }
};
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
struct Avx512 {
  static constexpr const char *name = "avx512";
  static constexpr int W = 16;
  using V = __m512;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V load(const float *p) { return _mm512_loadu_ps(p); }
  static V load(const bf16 *p) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static V load(const f16 *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
  }
  static void store(float *p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  using Narrow = Avx2; // finishes rows whose length is not a multiple of 16
  static float widen(f16 h) { return _cvtsh_ss(h.bits); }
  static V load_u8(const uint8_t *p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))));
  }
  /// 16 unsigned nibbles from 8 bytes, low nibble first.
  static V load_u4(const uint8_t *p) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20,
                                             24, 28);
    const __m512i halves = _mm512_inserti64x4(
        _mm512_set1_epi32(static_cast<int>(word & 0xffffffffu)),
        _mm256_set1_epi32(static_cast<int>(word >> 32)), 1);
    __m512i v = _mm512_srlv_epi32(halves, shifts);
    return _mm512_cvtepi32_ps(_mm512_and_si512(v, _mm512_set1_epi32(0xF)));
  }
};
#endif

} // namespace x86
} // namespace qlc

#endif // QLC_X86_ISA_H
