// qlc_x86_attention.h - causal grouped-query attention over a paged KV cache.
//
// KV cache layout (see qlc/abi.h): a pool of pages of P positions, each
// [layer][k|v][P][KVH heads]; the block table maps a slot's position pos to page
// block_table[slot * max_pages_per_seq + pos / P], row pos % P. Each head is stored in
// the format KV (qlc_x86_kv.h: f32, f16 or int8 with per-token, per-head scale and
// zero). First the step's k and v rows are encoded at their positions, then every
// (token, head) pair attends to positions [lo, pos] of its slot with an online softmax
// over blocks of positions that never cross a page (so a block's rows are contiguous),
// so no score buffer of max_seq floats is needed; cached heads are widened or
// dequantized in registers as they are read.
// With inv_freq (qlc-fuse-rope) q and k arrive unrotated: each k head is rotated before
// it is encoded, each q head when it is loaded, by the rope kernel's own functions.
#ifndef QLC_X86_ATTENTION_H
#define QLC_X86_ATTENTION_H

#include "qlc_x86_elementwise.h"
#include "qlc_x86_isa.h"
#include "qlc_x86_kv.h"
#include "qlc_x86_parallel.h"

#include <cmath>
#include <cstring>

namespace qlc {
namespace x86 {

/// The cache row of (slot, layer, k|v) at position `pos`; rows are ROWB bytes, pages P
/// positions.
template <int L, int64_t ROWB, int P>
inline uint8_t *kv_row(const qlc_exec_ctx *c, int32_t slot, int layer, int which, int32_t pos) {
  const int64_t page = c->block_table[static_cast<int64_t>(slot) * c->max_pages_per_seq + pos / P];
  const int64_t base = ((page * L + layer) * 2 + which) * P + pos % P;
  return static_cast<uint8_t *>(c->kv) + base * ROWB;
}

/// L layers, H query heads, KVH key/value heads of HD channels; WINDOW = 0 for none;
/// KV: the cache's storage format; P: positions per page. inv_freq: the rotary embedding
/// to apply to q and k (HD/2 inverse frequencies), or nullptr when they arrive rotated.
/// ldq, ldkv: floats from one token's q (k, v) row to the next's (wider than the heads when
/// they are column ranges of the fused q/k/v projection's rows, qlc-fold-qkv-split).
template <class Isa, int L, int H, int KVH, int HD, int WINDOW, class KV = KvF32, int P = 32>
void attention(const qlc_exec_ctx *c, const qlc_step *st, int layer, float scale, const float *q,
               const float *k, const float *v, float *out, const float *inv_freq = nullptr,
               int64_t ldq = H * HD, int64_t ldkv = KVH * HD) {
  constexpr int G = H / KVH;
  constexpr int BLK = 32;
  constexpr int64_t HB = KV::template head_bytes<HD>(), ROWB = KVH * HB;
  const int64_t M = st->n_tokens;
  for (int64_t t = 0; t < M; ++t) {
    uint8_t *kr = kv_row<L, ROWB, P>(c, st->slots[t], layer, 0, st->positions[t]);
    uint8_t *vr = kv_row<L, ROWB, P>(c, st->slots[t], layer, 1, st->positions[t]);
    float cs[HD / 2], sn[HD / 2], kh[HD];
    if (inv_freq)
      rope_angles<HD>(st->positions[t], inv_freq, cs, sn);
    for (int g = 0; g < KVH; ++g) {
      const float *ks = k + t * ldkv + g * HD;
      if (inv_freq)
        rope_rotate<HD>(cs, sn, ks, kh);
      KV::template store<HD>(kr + g * HB, inv_freq ? kh : ks);
      KV::template store<HD>(vr + g * HB, v + t * ldkv + g * HD);
    }
  }
  parallel_for(c, M * H, 1, [&](int64_t b, int64_t e) {
    float acc[HD];
    float sc[BLK];
    float cs[HD / 2], sn[HD / 2], qr[HD];
    for (int64_t th = b; th < e; ++th) {
      const int64_t t = th / H;
      const int h = static_cast<int>(th % H), g = h / G;
      const int32_t slot = st->slots[t], pos = st->positions[t];
      const int32_t lo = (WINDOW > 0 && pos >= WINDOW) ? pos - WINDOW + 1 : 0;
      const float *qh = q + t * ldq + h * HD;
      if (inv_freq) {
        rope_angles<HD>(pos, inv_freq, cs, sn);
        rope_rotate<HD>(cs, sn, qh, qr);
        qh = qr;
      }
      const float qs = KV::template qsum<HD>(qh);
      float mx = -INFINITY, den = 0.0f, bias = 0.0f;
      for (int i = 0; i < HD; ++i)
        acc[i] = 0.0f;
      for (int32_t j0 = lo; j0 <= pos;) {
        // A block ends at the page's end: its rows are contiguous.
        int n = pos - j0 + 1 < BLK ? pos - j0 + 1 : BLK;
        n = P - j0 % P < n ? P - j0 % P : n;
        const uint8_t *kc = kv_row<L, ROWB, P>(c, slot, layer, 0, j0) + g * HB;
        const uint8_t *vc = kv_row<L, ROWB, P>(c, slot, layer, 1, j0) + g * HB;
        float bmx = -INFINITY;
        for (int j = 0; j < n; ++j) {
          sc[j] = KV::template dot<Isa, HD>(qh, qs, kc + static_cast<int64_t>(j) * ROWB) * scale;
          bmx = sc[j] > bmx ? sc[j] : bmx;
        }
        const float nmx = bmx > mx ? bmx : mx;
        const float corr = std::exp(mx - nmx);
        den *= corr;
        bias *= corr;
        for (int i = 0; i < HD; ++i)
          acc[i] *= corr;
        for (int j = 0; j < n; ++j) {
          const float p = std::exp(sc[j] - nmx);
          den += p;
          KV::template axpy<Isa, HD>(p, vc + static_cast<int64_t>(j) * ROWB, acc, bias);
        }
        mx = nmx;
        j0 += n;
      }
      float *o = out + t * (H * HD) + h * HD;
      const float inv = 1.0f / den;
      for (int i = 0; i < HD; ++i)
        o[i] = (acc[i] + bias) * inv;
    }
  });
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_ATTENTION_H
