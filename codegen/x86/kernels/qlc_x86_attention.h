// qlc_x86_attention.h - causal grouped-query attention over a per-slot KV cache.
//
// KV cache layout (see qlc/abi.h): [slot][layer][k|v][max_seq][KVH*HD] in f32.
// First the step's k and v rows are written at their positions, then every (token,
// head) pair attends to positions [lo, pos] of its slot with an online softmax over
// blocks of positions, so no score buffer of max_seq floats is needed.
#ifndef QLC_X86_ATTENTION_H
#define QLC_X86_ATTENTION_H

#include "qlc_x86_isa.h"
#include "qlc_x86_parallel.h"

#include <cmath>
#include <cstring>

namespace qlc {
namespace x86 {

template <int L, int KVD>
inline float *kv_row(const qlc_exec_ctx *c, int32_t slot, int layer, int which, int32_t pos) {
  int64_t base = ((static_cast<int64_t>(slot) * L + layer) * 2 + which) * c->max_seq + pos;
  return c->kv + base * KVD;
}

template <class Isa, int HD> inline float dot(const float *a, const float *b) {
  constexpr int DV = (HD / Isa::W) * Isa::W;
  typename Isa::V acc = Isa::zero();
  for (int i = 0; i < DV; i += Isa::W)
    acc = Isa::fma(Isa::load(a + i), Isa::load(b + i), acc);
  float s = Isa::hsum(acc);
  for (int i = DV; i < HD; ++i)
    s += a[i] * b[i];
  return s;
}

/// L layers, H query heads, KVH key/value heads of HD channels; WINDOW = 0 for none.
template <class Isa, int L, int H, int KVH, int HD, int WINDOW>
void attention(const qlc_exec_ctx *c, const qlc_step *st, int layer, float scale,
               const float *q, const float *k, const float *v, float *out) {
  constexpr int KVD = KVH * HD;
  constexpr int G = H / KVH;
  constexpr int BLK = 32;
  const int64_t M = st->n_tokens;
  for (int64_t t = 0; t < M; ++t) {
    std::memcpy(kv_row<L, KVD>(c, st->slots[t], layer, 0, st->positions[t]), k + t * KVD,
                sizeof(float) * KVD);
    std::memcpy(kv_row<L, KVD>(c, st->slots[t], layer, 1, st->positions[t]), v + t * KVD,
                sizeof(float) * KVD);
  }
  parallel_for(c, M * H, 1, [&](int64_t b, int64_t e) {
    float acc[HD];
    float sc[BLK];
    for (int64_t th = b; th < e; ++th) {
      const int64_t t = th / H;
      const int h = static_cast<int>(th % H), g = h / G;
      const int32_t slot = st->slots[t], pos = st->positions[t];
      const int32_t lo = (WINDOW > 0 && pos >= WINDOW) ? pos - WINDOW + 1 : 0;
      const float *qh = q + t * (H * HD) + h * HD;
      const float *kc = kv_row<L, KVD>(c, slot, layer, 0, 0) + g * HD;
      const float *vc = kv_row<L, KVD>(c, slot, layer, 1, 0) + g * HD;
      float mx = -INFINITY, den = 0.0f;
      for (int i = 0; i < HD; ++i)
        acc[i] = 0.0f;
      for (int32_t j0 = lo; j0 <= pos; j0 += BLK) {
        const int n = (pos - j0 + 1) < BLK ? (pos - j0 + 1) : BLK;
        float bmx = -INFINITY;
        for (int j = 0; j < n; ++j) {
          sc[j] = dot<Isa, HD>(qh, kc + static_cast<int64_t>(j0 + j) * KVD) * scale;
          bmx = sc[j] > bmx ? sc[j] : bmx;
        }
        const float nmx = bmx > mx ? bmx : mx;
        const float corr = std::exp(mx - nmx);
        den *= corr;
        for (int i = 0; i < HD; ++i)
          acc[i] *= corr;
        for (int j = 0; j < n; ++j) {
          const float p = std::exp(sc[j] - nmx);
          den += p;
          const float *vr = vc + static_cast<int64_t>(j0 + j) * KVD;
          for (int i = 0; i < HD; ++i)
            acc[i] += p * vr[i];
        }
        mx = nmx;
      }
      float *o = out + t * (H * HD) + h * HD;
      const float inv = 1.0f / den;
      for (int i = 0; i < HD; ++i)
        o[i] = acc[i] * inv;
    }
  });
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_ATTENTION_H
