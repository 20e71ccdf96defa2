// qlc_x86_elementwise.h - row-wise kernels: embedding, RMSNorm (with a residual add),
// RoPE, SiLU*mul and SwiGLU, add, column split.
#ifndef QLC_X86_ELEMENTWISE_H
#define QLC_X86_ELEMENTWISE_H

#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

#include <cmath>
#include <cstring>

namespace qlc {
namespace x86 {

/// Loads D elements of any storage type into f32 (vectorized where the ISA allows).
template <class Isa, int D, class T> inline void widen_row(const T *src, float *dst) {
  constexpr int DV = (D / Isa::W) * Isa::W;
  for (int i = 0; i < DV; i += Isa::W)
    Isa::store(dst + i, Isa::load(src + i));
  for (int i = DV; i < D; ++i)
    dst[i] = to_f32(src[i]);
}

/// out[t, :] = table[ids[t], :]. The runtime has checked every id against the vocab.
template <class Isa, int D, class T>
void embedding(const qlc_exec_ctx *c, int64_t M, const int32_t *ids, const T *table,
               float *out) {
  parallel_for(c, M, grain_for(D, 8192), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      widen_row<Isa, D>(table + static_cast<int64_t>(ids[t]) * D, out + t * D);
  });
}

/// One row of RMSNorm: out = x / sqrt(mean(x^2) + eps) * w.
template <class Isa, int D>
inline void rms_norm_row(const float *xr, const float *w, float eps, float *o) {
  constexpr int DV = (D / Isa::W) * Isa::W;
  typename Isa::V acc = Isa::zero();
  for (int i = 0; i < DV; i += Isa::W) {
    typename Isa::V v = Isa::load(xr + i);
    acc = Isa::fma(v, v, acc);
  }
  float ss = Isa::hsum(acc);
  for (int i = DV; i < D; ++i)
    ss += xr[i] * xr[i];
  float inv = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
  for (int i = 0; i < D; ++i)
    o[i] = w[i] * (xr[i] * inv);
}

/// out = x / sqrt(mean(x^2) + eps) * w, per row, as LlamaRMSNorm computes it in f32.
template <class Isa, int D>
void rms_norm(const qlc_exec_ctx *c, int64_t M, const float *x, const float *w, float eps,
              float *out) {
  parallel_for(c, M, grain_for(D, 8192), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      rms_norm_row<Isa, D>(x + t * D, w, eps, out + t * D);
  });
}

/// sum = a + b and out = rms_norm(sum), row by row (the same numbers as add, then
/// rms_norm). sum may alias a or b.
template <class Isa, int D>
void add_rms_norm(const qlc_exec_ctx *c, int64_t M, const float *a, const float *b,
                  const float *w, float eps, float *sum, float *out) {
  constexpr int DV = (D / Isa::W) * Isa::W;
  parallel_for(c, M, grain_for(D, 8192), [&](int64_t r0, int64_t r1) {
    for (int64_t t = r0; t < r1; ++t) {
      const float *ar = a + t * D, *br = b + t * D;
      float *sr = sum + t * D;
      for (int i = 0; i < DV; i += Isa::W)
        Isa::store(sr + i, Isa::add(Isa::load(ar + i), Isa::load(br + i)));
      for (int i = DV; i < D; ++i)
        sr[i] = ar[i] + br[i];
      rms_norm_row<Isa, D>(sr, w, eps, out + t * D);
    }
  });
}

/// The cosines and sines of a rotary embedding at position `pos` (HD/2 of each).
template <int HD>
inline void rope_angles(int32_t pos, const float *inv_freq, float *cs, float *sn) {
  const float p = static_cast<float>(pos);
  for (int i = 0; i < HD / 2; ++i) {
    float ang = p * inv_freq[i]; // f32 product, as transformers computes it
    cs[i] = std::cos(ang);
    sn[i] = std::sin(ang);
  }
}

/// Rotate-half rotation of one head of HD channels (out may alias x). The rope kernel
/// and the attention kernel's fused rope (qlc-fuse-rope) both rotate with this. Not
/// inlined: inlined, the compiler contracts the products into FMAs differently in each
/// caller, and fused and unfused artifacts would differ in the last bit.
template <int HD>
__attribute__((noinline)) void rope_rotate(const float *cs, const float *sn, const float *x,
                                           float *out) {
  constexpr int H2 = HD / 2;
  for (int i = 0; i < H2; ++i) {
    float a = x[i], bb = x[i + H2];
    out[i] = a * cs[i] - bb * sn[i];
    out[i + H2] = bb * cs[i] + a * sn[i];
  }
}

/// Rotate-half rotary embedding of every head of HD channels in a row of width D.
/// out may alias x.
template <class Isa, int D, int HD>
void rope(const qlc_exec_ctx *c, int64_t M, const int32_t *pos, const float *inv_freq,
          const float *x, float *out) {
  constexpr int H2 = HD / 2;
  parallel_for(c, M, grain_for(D * 8, 8192), [&](int64_t b, int64_t e) {
    float cs[H2], sn[H2];
    for (int64_t t = b; t < e; ++t) {
      rope_angles<HD>(pos[t], inv_freq, cs, sn);
      for (int h = 0; h < D / HD; ++h)
        rope_rotate<HD>(cs, sn, x + t * D + h * HD, out + t * D + h * HD);
    }
  });
}

/// out = silu(gate) * up.
template <class Isa, int D>
void silu_mul(const qlc_exec_ctx *c, int64_t M, const float *gate, const float *up,
              float *out) {
  parallel_for(c, M * D, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

/// out[t, i] = silu(x[t, i]) * x[t, I + i]: the epilogue of a fused [gate | up]
/// projection of width 2I, with silu_mul's arithmetic.
template <class Isa, int I>
void swiglu(const qlc_exec_ctx *c, int64_t M, const float *x, float *out) {
  parallel_for(c, M, grain_for(I, 16384), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float *gate = x + t * 2 * I, *up = gate + I;
      float *o = out + t * I;
      for (int i = 0; i < I; ++i) {
        float g = gate[i];
        o[i] = g / (1.0f + std::exp(-g)) * up[i];
      }
    }
  });
}

/// out[t, :] = x[t, OFF : OFF + W] for rows of width D: one part of a fused projection.
template <class Isa, int D, int OFF, int W>
void split_cols(const qlc_exec_ctx *, int64_t M, const float *x, float *out) {
  static_assert(OFF >= 0 && W > 0 && OFF + W <= D, "the columns lie inside the row");
  for (int64_t t = 0; t < M; ++t)
    std::memcpy(out + t * W, x + t * D + OFF, sizeof(float) * W);
}

/// out = a + b.
template <class Isa, int D>
void add(const qlc_exec_ctx *c, int64_t M, const float *a, const float *b, float *out) {
  const int64_t n = M * D;
  int64_t i = 0;
  for (; i + Isa::W <= n; i += Isa::W)
    Isa::store(out + i, Isa::add(Isa::load(a + i), Isa::load(b + i)));
  for (; i < n; ++i)
    out[i] = a[i] + b[i];
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_ELEMENTWISE_H
