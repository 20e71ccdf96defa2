// qlc_x86_kv.h - storage formats of the KV cache.
//
// The cache (see qlc/abi.h) holds, per page, layer, k|v and position, one row of KVH
// heads; a head of HD channels takes `head_bytes<HD>()` bytes, so a row takes
// KVH * head_bytes. A format encodes the step's f32 rows when they are appended
// (`store`) and reads a cached head back for attention, widening or dequantizing it in
// registers: `dot` for q·k (with `qsum`, computed once per query head) and `axpy` for
// the softmax-weighted sum of values.
//
//   KvF32  HD floats, exact.
//   KvF16  HD IEEE halves, rounded to nearest even.
//   KvI8   per token and head: f16 scale, f16 zero, then HD uint8 codes (padded to 4
//          bytes). x ~= zero + scale * code with zero ~= min and scale ~= (max - min) / 255
//          over the head's HD values: asymmetric, computed online as the token is
//          written, so no calibration and the same codes for prefill and decode.
#ifndef QLC_X86_KV_H
#define QLC_X86_KV_H

#include "qlc_x86_isa.h"

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace qlc {
namespace x86 {

/// A head's elements as floats: stored f32, f16 or uint8 codes, a vector or one at a time.
template <class Isa> inline typename Isa::V loadv(const float *p) { return Isa::load(p); }
template <class Isa> inline typename Isa::V loadv(const f16 *p) { return Isa::load(p); }
template <class Isa> inline typename Isa::V loadv(const uint8_t *p) { return Isa::load_u8(p); }
template <class Isa> inline float widen1(float x) { return x; }
template <class Isa> inline float widen1(f16 x) { return Isa::widen(x); }
template <class Isa> inline float widen1(uint8_t x) { return static_cast<float>(x); }

/// The narrower ISA that finishes a head's tail (AVX-512 -> AVX2), or void.
template <class Isa, class = void> struct NarrowOf { using type = void; };
template <class Isa> struct NarrowOf<Isa, std::void_t<typename Isa::Narrow>> {
  using type = typename Isa::Narrow;
};

/// `acc[0:N) += p * x[0:N)` for T = float, f16 or uint8_t codes.
template <class Isa, int N, class T> inline void axpy_wide(float p, const T *x, float *acc) {
  constexpr int DV = (N / Isa::W) * Isa::W;
  const typename Isa::V vp = Isa::set1(p);
  for (int i = 0; i < DV; i += Isa::W)
    Isa::store(acc + i, Isa::fma(vp, loadv<Isa>(x + i), Isa::load(acc + i)));
  using Narrow = typename NarrowOf<Isa>::type;
  if constexpr (!std::is_void_v<Narrow> && N - DV > 0) {
    axpy_wide<Narrow, N - DV>(p, x + DV, acc + DV);
  } else {
    for (int i = DV; i < N; ++i)
      acc[i] += p * widen1<Isa>(x[i]);
  }
}

/// q·x over N elements for T = float, f16 or uint8_t codes.
template <class Isa, int N, class T> inline float dot_wide(const float *q, const T *x) {
  constexpr int DV = (N / Isa::W) * Isa::W;
  typename Isa::V acc = Isa::zero();
  for (int i = 0; i < DV; i += Isa::W)
    acc = Isa::fma(Isa::load(q + i), loadv<Isa>(x + i), acc);
  float s = DV > 0 ? Isa::hsum(acc) : 0.0f;
  using Narrow = typename NarrowOf<Isa>::type;
  if constexpr (!std::is_void_v<Narrow> && N - DV > 0) {
    s += dot_wide<Narrow, N - DV>(q + DV, x + DV);
  } else {
    for (int i = DV; i < N; ++i)
      s += q[i] * widen1<Isa>(x[i]);
  }
  return s;
}

struct KvF32 {
  static constexpr const char *name = "f32";
  template <int HD> static constexpr int64_t head_bytes() { return 4 * HD; }
  template <int HD> static void store(uint8_t *dst, const float *x) {
    std::memcpy(dst, x, sizeof(float) * HD);
  }
  /// What `dot` needs of a query head besides the head itself (nothing here).
  template <int HD> static float qsum(const float * /*q*/) { return 0.0f; }
  template <class Isa, int HD> static float dot(const float *q, float /*qs*/, const uint8_t *h) {
    return dot_wide<Isa, HD>(q, reinterpret_cast<const float *>(h));
  }
  /// `acc += p * v`; `bias` collects a term common to every channel (none here).
  template <class Isa, int HD>
  static void axpy(float p, const uint8_t *h, float *acc, float & /*bias*/) {
    axpy_wide<Isa, HD>(p, reinterpret_cast<const float *>(h), acc);
  }
};

struct KvF16 {
  static constexpr const char *name = "f16";
  template <int HD> static constexpr int64_t head_bytes() { return 2 * HD; }
  template <int HD> static void store(uint8_t *dst, const float *x) {
    f16 *d = reinterpret_cast<f16 *>(dst);
    for (int i = 0; i < HD; ++i)
      d[i] = to_f16(x[i]);
  }
  template <int HD> static float qsum(const float * /*q*/) { return 0.0f; }
  template <class Isa, int HD> static float dot(const float *q, float /*qs*/, const uint8_t *h) {
    return dot_wide<Isa, HD>(q, reinterpret_cast<const f16 *>(h));
  }
  template <class Isa, int HD>
  static void axpy(float p, const uint8_t *h, float *acc, float & /*bias*/) {
    axpy_wide<Isa, HD>(p, reinterpret_cast<const f16 *>(h), acc);
  }
};

struct KvI8 {
  static constexpr const char *name = "int8";
  template <int HD> static constexpr int64_t head_bytes() { return 4 + (HD + 3) / 4 * 4; }
  template <int HD> static void store(uint8_t *dst, const float *x) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < HD; ++i) {
      lo = x[i] < lo ? x[i] : lo;
      hi = x[i] > hi ? x[i] : hi;
    }
    // Scale and zero are halves: the zero rounds down and the scale up, so that
    // [zero, zero + 255 * scale] still covers [lo, hi] and every value lies within half
    // a step of its code. Values beyond the half range (+-65504) are clipped to it.
    constexpr float kMax = 65504.0f;
    lo = lo < -kMax ? -kMax : (lo > kMax ? kMax : lo);
    hi = hi > kMax ? kMax : (hi < lo ? lo : hi);
    f16 zero = to_f16(lo);
    if (to_f32(zero) > lo) // one half-ulp step toward -inf (from +-0: the smallest negative)
      zero.bits = (zero.bits & 0x7fffu) == 0 ? 0x8001u
                  : (zero.bits & 0x8000u)    ? zero.bits + 1
                                             : zero.bits - 1;
    const float zf = to_f32(zero);
    f16 scale = to_f16((hi - zf) / 255.0f);
    if (to_f32(scale) * 255.0f < hi - zf)
      ++scale.bits;
    const float sf = to_f32(scale), inv = sf > 0.0f ? 1.0f / sf : 0.0f;
    std::memcpy(dst, &scale, 2);
    std::memcpy(dst + 2, &zero, 2);
    uint8_t *code = dst + 4;
    for (int i = 0; i < HD; ++i) {
      const float u = (x[i] - zf) * inv + 0.5f;
      code[i] = static_cast<uint8_t>(u >= 255.0f ? 255 : (u > 0.0f ? static_cast<int>(u) : 0));
    }
    for (int i = HD; i < (HD + 3) / 4 * 4; ++i)
      code[i] = 0;
  }
  template <class Isa> static void params(const uint8_t *h, float &scale, float &zero) {
    f16 p[2];
    std::memcpy(p, h, 4);
    scale = Isa::widen(p[0]);
    zero = Isa::widen(p[1]);
  }
  /// q·k = scale * (q·code) + zero * sum(q): the sum is taken once per query head.
  template <int HD> static float qsum(const float *q) {
    float s = 0.0f;
    for (int i = 0; i < HD; ++i)
      s += q[i];
    return s;
  }
  template <class Isa, int HD> static float dot(const float *q, float qs, const uint8_t *h) {
    float scale, zero;
    params<Isa>(h, scale, zero);
    return scale * dot_wide<Isa, HD>(q, h + 4) + zero * qs;
  }
  /// p * (zero + scale * code): the codes are scaled into `acc`, p * zero goes to `bias`.
  template <class Isa, int HD>
  static void axpy(float p, const uint8_t *h, float *acc, float &bias) {
    float scale, zero;
    params<Isa>(h, scale, zero);
    axpy_wide<Isa, HD>(p * scale, h + 4, acc);
    bias += p * zero;
  }
};

/// Bytes one position of a sequence takes in the cache (a page holds page_size of them):
/// every layer's k and v rows.
template <class KV, int L, int KVH, int HD> constexpr int64_t kv_position_bytes() {
  return int64_t{L} * 2 * KVH * KV::template head_bytes<HD>();
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_KV_H
