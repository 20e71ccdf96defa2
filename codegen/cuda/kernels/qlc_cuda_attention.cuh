// qlc_cuda_attention.cuh - causal grouped-query attention over the paged KV cache of
// qlc_cuda_kv.cuh (its formats, layout and store).
//
// attention() first encodes the step's k and v rows (one warp per head row; for the int8
// cache in decode steps the attention kernel does it, attention_store_kernel), then one
// block per (token, query head) attends positions [lo, pos] of the token's slot: its
// 16 warps take tiles of 32 positions in turn, each with its own online softmax (q in
// shared memory, the cached head widened or dequantized as it is read), and their partial
// sums are combined at the end. Prefill steps (more than 8 tokens) take one block per 8
// consecutive tokens and query head instead, a warp per token, which share each tile of
// the cache through shared memory when the 8 tokens are one slot's (attention_prefill_kernel;
// the 4-warp configuration of attention_kernel where two tiles do not fit in 40 KiB: f32
// heads of more than 128 channels). With inv_freq (qlc-fuse-rope)
// q and k arrive unrotated: a k head is rotated into shared memory before it is
// encoded, a q head as it is loaded into shared memory (rope_pair, the rope kernel's
// arithmetic).
#ifndef QLC_CUDA_ATTENTION_CUH
#define QLC_CUDA_ATTENTION_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_cuda_elementwise.cuh"
#include "qlc_cuda_kv.cuh"

#include <cstdint>
#include <type_traits>

namespace qlc {
namespace cuda {

/// acc[i] += p_u * value(row u, channel c0 + i) for rows u = r .. r + R - 1 of a tile: the
/// row offsets `off` and weights `p` come from the lanes that scored them (shuffles); all
/// loads are issued before the products. Channels c0 .. c0 + CPL - 1 are read in 8- or
/// 16-byte loads where HD == 32 * CPL and CPL % 4 == 0.
template <class KV, int HD, int CPL, int R>
__device__ __forceinline__ void accumulate_rows(float (&acc)[CPL], const uint8_t *vbase,
                                                int64_t off, float p, int r, int c0) {
  constexpr bool WIDE = HD == kWarpSize * CPL && CPL % 4 == 0;
  float vv[R][CPL];
#pragma unroll
  for (int u = 0; u < R; ++u) {
    const uint8_t *vr = vbase + __shfl_sync(kFullMask, off, r + u);
    if constexpr (WIDE) {
      KV::template values<HD, CPL>(vr, c0, vv[u]);
    } else {
#pragma unroll
      for (int i = 0; i < CPL; ++i)
        vv[u][i] = c0 + i < HD ? KV::template value<HD>(vr, c0 + i) : 0.0f;
    }
  }
#pragma unroll
  for (int u = 0; u < R; ++u) {
    const float pu = __shfl_sync(kFullMask, p, r + u);
#pragma unroll
    for (int i = 0; i < CPL; ++i)
      acc[i] = fmaf(pu, vv[u][i], acc[i]);
  }
}

/// A query head into shared memory `qs` (HDP floats, zero past HD), rotated for position
/// `pos` when inv_freq is given; threads i0, i0 + stride, ... share the work.
template <int HD, int HDP>
__device__ __forceinline__ void load_q_head(const float *qh, int32_t pos, const float *inv_freq,
                                            float *qs, int i0, int stride) {
  if (inv_freq != nullptr) {
    for (int i = i0; i < HD / 2; i += stride)
      rope_pair(static_cast<float>(pos), inv_freq[i], qh[i], qh[i + HD / 2], &qs[i],
                &qs[i + HD / 2]);
    for (int i = HD + i0; i < HDP; i += stride)
      qs[i] = 0.0f;
  } else {
    for (int i = i0; i < HDP; i += stride)
      qs[i] = i < HD ? qh[i] : 0.0f;
  }
}

/// One block of NW warps per (token, query head). The warps take tiles of 32 positions in
/// turn (warp w: positions lo + 32 (w + NW i) ...): each lane scores one position of the
/// tile, the warp keeps its own online softmax (maximum, denominator) by shuffles, and each
/// lane accumulates the weighted values of its CPL consecutive channels over the tile's
/// rows, RB rows' loads (8 or 16 bytes each where HD % 128 == 0) in flight before their
/// products. The warps' partial results are combined at the end through shared memory
/// (flash-decoding within a block). Decode steps (few tokens, so few blocks) take 16 warps,
/// so that a head's positions are read by many loads at once; prefill takes 4.
template <int L, int H, int KVH, int HD, int WINDOW, class KV, int P, int NW>
__global__ void __launch_bounds__(NW *kWarpSize)
    attention_kernel(void *kv, const int32_t *__restrict__ table, int64_t max_pages,
                     const int32_t *__restrict__ positions, const int32_t *__restrict__ slots,
                     int layer, float scale, const float *__restrict__ q, float *__restrict__ out,
                     const float *__restrict__ inv_freq, int64_t ldq) {
  pdl_enter();
  constexpr int NT = NW * kWarpSize, RB = 16;
  constexpr int HDP = (HD + 3) / 4 * 4;
  constexpr int CPL = (HD + kWarpSize - 1) / kWarpSize; // channels per lane
  constexpr int G = H / KVH;
  constexpr int64_t HB = KV::template head_bytes<HD>(), ROWB = kv_row_bytes<KV, KVH, HD>();
  __shared__ __align__(16) float qs[HDP];
  __shared__ float wmx[NW], wden[NW];
  __shared__ float wacc[NW][CPL * kWarpSize];
  const int64_t t = blockIdx.x / H;
  const int h = blockIdx.x % H, g = h / G, tid = threadIdx.x;
  const int warp = tid / kWarpSize, lane = tid % kWarpSize, c0 = lane * CPL;
  const int32_t slot = slots[t], pos = positions[t];
  const int32_t lo = (WINDOW > 0 && pos >= WINDOW) ? pos - WINDOW + 1 : 0;
  load_q_head<HD, HDP>(q + t * ldq + h * HD, pos, inv_freq, qs, tid, NT);
  __syncthreads();
  float qsum = 0.0f;
  for (int i = 0; i < HD; ++i)
    qsum += qs[i];
  const int32_t *pages = table + slot * max_pages;
  constexpr int64_t PAGE_STRIDE = int64_t{L} * 2 * P * ROWB; // bytes of one page
  const uint8_t *kbase = static_cast<const uint8_t *>(kv) + (int64_t{layer} * 2 * P) * ROWB + g * HB;
  const uint8_t *vbase = kbase + int64_t{P} * ROWB;
  float mx = -INFINITY, den = 0.0f, acc[CPL];
#pragma unroll
  for (int i = 0; i < CPL; ++i)
    acc[i] = 0.0f;
  for (int32_t j0 = lo + warp * kWarpSize; j0 <= pos; j0 += NW * kWarpSize) {
    const int32_t j = j0 + lane;
    const bool valid = j <= pos;
    // The lane's row: its key now, and (shuffled) every lane's value row below.
    const int64_t off = valid ? pages[j / P] * PAGE_STRIDE + (j % P) * ROWB : 0;
    const float sc = valid ? KV::template dot<HD>(qs, qsum, kbase + off) * scale : -INFINITY;
    const float nmx = fmaxf(mx, warp_max(sc)); // finite: position j0 is valid
    const float corr = expf(mx - nmx);
    const float p = valid ? expf(sc - nmx) : 0.0f;
    den = den * corr + warp_sum(p);
#pragma unroll
    for (int i = 0; i < CPL; ++i)
      acc[i] *= corr;
    const int n = pos - j0 + 1 < kWarpSize ? pos - j0 + 1 : kWarpSize;
    int r = 0;
    for (; r + RB <= n; r += RB)
      accumulate_rows<KV, HD, CPL, RB>(acc, vbase, off, p, r, c0);
    for (; r + 4 <= n; r += 4)
      accumulate_rows<KV, HD, CPL, 4>(acc, vbase, off, p, r, c0);
    for (; r < n; ++r)
      accumulate_rows<KV, HD, CPL, 1>(acc, vbase, off, p, r, c0);
    mx = nmx;
  }
  if (lane == 0) {
    wmx[warp] = mx;
    wden[warp] = den;
  }
#pragma unroll
  for (int i = 0; i < CPL; ++i)
    wacc[warp][c0 + i] = acc[i];
  __syncthreads();
  float m = -INFINITY; // finite: warp 0 scored position lo
#pragma unroll
  for (int w = 0; w < NW; ++w)
    m = fmaxf(m, wmx[w]);
  float f[NW], d = 0.0f;
#pragma unroll
  for (int w = 0; w < NW; ++w) {
    f[w] = wmx[w] == -INFINITY ? 0.0f : expf(wmx[w] - m); // a warp with no positions: 0
    d += wden[w] * f[w];
  }
  const float inv = 1.0f / d;
  float *o = out + t * (H * HD) + h * HD;
  for (int c = tid; c < HD; c += NT) {
    float a = 0.0f;
#pragma unroll
    for (int w = 0; w < NW; ++w)
      a = fmaf(wacc[w][c], f[w], a);
    o[c] = a * inv;
  }
}

/// accumulate_rows for rows given by address (`vrow`, some of them in shared memory).
template <class KV, int HD, int CPL, int R>
__device__ __forceinline__ void accumulate_rows_at(float (&acc)[CPL], const uint8_t *vrow, float p,
                                                   int r, int c0) {
  constexpr bool WIDE = HD == kWarpSize * CPL && CPL % 4 == 0;
  const unsigned long long va = reinterpret_cast<unsigned long long>(vrow);
  float vv[R][CPL];
#pragma unroll
  for (int u = 0; u < R; ++u) {
    const uint8_t *vr = reinterpret_cast<const uint8_t *>(__shfl_sync(kFullMask, va, r + u));
    if constexpr (WIDE) {
      KV::template values<HD, CPL>(vr, c0, vv[u]);
    } else {
#pragma unroll
      for (int i = 0; i < CPL; ++i)
        vv[u][i] = c0 + i < HD ? KV::template value<HD>(vr, c0 + i) : 0.0f;
    }
  }
#pragma unroll
  for (int u = 0; u < R; ++u) {
    const float pu = __shfl_sync(kFullMask, p, r + u);
#pragma unroll
    for (int i = 0; i < CPL; ++i)
      acc[i] = fmaf(pu, vv[u][i], acc[i]);
  }
}

/// accumulate_rows_at over rows 0 .. n - 1 of a tile: 16, then 4, then 1 at a time.
template <class KV, int HD, int CPL>
__device__ __forceinline__ void accumulate_tile(float (&acc)[CPL], const uint8_t *vrow, float p,
                                                int n, int c0) {
  constexpr int RB = 16;
  int r = 0;
  for (; r + RB <= n; r += RB)
    accumulate_rows_at<KV, HD, CPL, RB>(acc, vrow, p, r, c0);
  for (; r + 4 <= n; r += 4)
    accumulate_rows_at<KV, HD, CPL, 4>(acc, vrow, p, r, c0);
  for (; r < n; ++r)
    accumulate_rows_at<KV, HD, CPL, 1>(acc, vrow, p, r, c0);
}

/// attention_kernel's decode configuration (NW warps, M <= NW / 2 tokens) that also stores
/// the step's k and v rows, in place of kv_store_kernel: a launch a layer fewer. Warp w
/// encodes head g of token w / 2's k (w even) or v row into shared memory when that token
/// belongs to the block's slot (the last warps meanwhile load q), and the block of query
/// head g * (H / KVH) also writes its own token's rows to the cache. Positions of the step's
/// tokens are read from shared memory, every other position from the cache, so no block
/// reads a row that another block of the launch writes. Used for the formats whose
/// KV::kDecodeStoreFused is set (attention()). Its tile loop and combine repeat
/// attention_kernel's on purpose: one kernel with both paths (a template flag, row offsets
/// or addresses) left attention_kernel's f16 decode 1.26x slower on an H200 (9.2 -> 11.6 us
/// a layer at position 160, bench/attention_graph.cu) with nearly the same PTX.
template <int L, int H, int KVH, int HD, int WINDOW, class KV, int P, int NW>
__global__ void __launch_bounds__(NW *kWarpSize)
    attention_store_kernel(void *kv, const int32_t *__restrict__ table, int64_t max_pages,
                           const int32_t *__restrict__ positions, const int32_t *__restrict__ slots,
                           int layer, float scale, const float *__restrict__ q,
                           float *__restrict__ out, const float *__restrict__ inv_freq, int64_t ldq,
                           int M, const float *__restrict__ k, const float *__restrict__ v,
                           int64_t ldkv) {
  pdl_enter();
  constexpr int NT = NW * kWarpSize;
  constexpr int HDP = (HD + 3) / 4 * 4;
  constexpr int CPL = (HD + kWarpSize - 1) / kWarpSize; // channels per lane
  constexpr int G = H / KVH;
  constexpr int64_t HB = KV::template head_bytes<HD>(), ROWB = kv_row_bytes<KV, KVH, HD>();
  constexpr int ST = NW / 2;                   // step tokens
  constexpr int64_t HBS = (HB + 15) / 16 * 16; // their rows' stride in shared memory
  constexpr int EPL = (HD + kWarpSize - 1) / kWarpSize;
  static_assert(NT >= HDP, "a thread for each q channel");
  __shared__ __align__(16) float qs[HDP];
  __shared__ float wmx[NW], wden[NW];
  __shared__ __align__(16) float wacc[NW][CPL * kWarpSize];
  __shared__ __align__(16) uint8_t enc[ST][2][HBS];
  __shared__ int32_t step_pos[ST];
  const int64_t t = blockIdx.x / H;
  const int h = blockIdx.x % H, g = h / G, tid = threadIdx.x;
  const int warp = tid / kWarpSize, lane = tid % kWarpSize, c0 = lane * CPL;
  const int32_t slot = slots[t], pos = positions[t];
  const int32_t lo = (WINDOW > 0 && pos >= WINDOW) ? pos - WINDOW + 1 : 0;
  const float *qh = q + t * ldq + h * HD;
  // Every load first, so that their latencies overlap: the step row of warp w (k or v of
  // token u = w / 2, head g), that token's slot and position, and the thread's q channels
  // (channel NT - 1 - tid: a rope pair, or one channel).
  const int u = warp / 2, which = warp % 2, qi = NT - 1 - tid;
  const bool step = u < M;
  const int32_t su = step ? slots[u] : -1, pu = step ? positions[u] : 0;
  const float *src = (which == 0 ? k : v) + (step ? u : 0) * ldkv + g * HD;
  float row[EPL];
#pragma unroll
  for (int e = 0; e < EPL; ++e)
    row[e] = step && lane + e * kWarpSize < HD ? src[lane + e * kWarpSize] : 0.0f;
  float qa = 0.0f, qb = 0.0f, fr = 0.0f;
  if (inv_freq != nullptr) {
    if (qi < HD / 2) {
      qa = qh[qi];
      qb = qh[qi + HD / 2];
      fr = inv_freq[qi];
    }
  } else if (qi < HD) {
    qa = qh[qi];
  }
  const bool mine = step && su == slot;
  if (which == 0 && lane == 0)
    step_pos[u] = mine ? pu : -1;
  if (mine) {
    // wacc[warp] is free until the end: the row is encoded from there (rotated in place).
    float *scr = wacc[warp];
#pragma unroll
    for (int e = 0; e < EPL; ++e)
      if (lane + e * kWarpSize < HD)
        scr[lane + e * kWarpSize] = row[e];
    __syncwarp();
    uint8_t *e = enc[u][which];
    encode_head_warp<KV, HD>(e, scr, which, inv_freq, static_cast<float>(pu), scr, lane);
    if (u == t && h % G == 0) { // this token's rows, to the cache
      __syncwarp();
      uint32_t *dst = reinterpret_cast<uint32_t *>(
          kv_row<KV, L, KVH, HD, P>(kv, table, max_pages, slot, layer, which, pos) + g * HB);
      for (int i = lane; i < HB / 4; i += kWarpSize)
        dst[i] = reinterpret_cast<const uint32_t *>(e)[i];
    }
  }
  if (inv_freq != nullptr) {
    if (qi < HD / 2)
      rope_pair(static_cast<float>(pos), fr, qa, qb, &qs[qi], &qs[qi + HD / 2]);
    if (qi < HDP - HD)
      qs[HD + qi] = 0.0f;
  } else if (qi < HDP) {
    qs[qi] = qi < HD ? qa : 0.0f;
  }
  __syncthreads();
  float qsum = 0.0f;
  for (int i = 0; i < HD; ++i)
    qsum += qs[i];
  const int32_t *pages = table + slot * max_pages;
  constexpr int64_t PAGE_STRIDE = int64_t{L} * 2 * P * ROWB; // bytes of one page
  const uint8_t *kbase =
      static_cast<const uint8_t *>(kv) + (int64_t{layer} * 2 * P) * ROWB + g * HB;
  const uint8_t *vbase = kbase + int64_t{P} * ROWB;
  float mx = -INFINITY, den = 0.0f, acc[CPL];
#pragma unroll
  for (int i = 0; i < CPL; ++i)
    acc[i] = 0.0f;
  for (int32_t j0 = lo + warp * kWarpSize; j0 <= pos; j0 += NW * kWarpSize) {
    const int32_t j = j0 + lane;
    const bool valid = j <= pos;
    const int64_t off = valid ? pages[j / P] * PAGE_STRIDE + (j % P) * ROWB : 0;
    const uint8_t *krow = kbase + off, *vrow = vbase + off;
#pragma unroll
    for (int s = 0; s < ST; ++s)
      if (valid && step_pos[s] == j) { // a row of this step: encoded above
        krow = enc[s][0];
        vrow = enc[s][1];
      }
    const float sc = valid ? KV::template dot<HD>(qs, qsum, krow) * scale : -INFINITY;
    const float nmx = fmaxf(mx, warp_max(sc)); // finite: position j0 is valid
    const float corr = expf(mx - nmx);
    const float p = valid ? expf(sc - nmx) : 0.0f;
    den = den * corr + warp_sum(p);
#pragma unroll
    for (int i = 0; i < CPL; ++i)
      acc[i] *= corr;
    accumulate_tile<KV, HD, CPL>(acc, vrow, p, pos - j0 + 1 < kWarpSize ? pos - j0 + 1 : kWarpSize,
                                 c0);
    mx = nmx;
  }
  if (lane == 0) {
    wmx[warp] = mx;
    wden[warp] = den;
  }
#pragma unroll
  for (int i = 0; i < CPL; ++i)
    wacc[warp][c0 + i] = acc[i];
  __syncthreads();
  float m = -INFINITY; // finite: warp 0 scored position lo
#pragma unroll
  for (int w = 0; w < NW; ++w)
    m = fmaxf(m, wmx[w]);
  float f[NW], d = 0.0f;
#pragma unroll
  for (int w = 0; w < NW; ++w) {
    f[w] = wmx[w] == -INFINITY ? 0.0f : expf(wmx[w] - m); // a warp with no positions: 0
    d += wden[w] * f[w];
  }
  const float inv = 1.0f / d;
  float *o = out + t * (H * HD) + h * HD;
  for (int c = tid; c < HD; c += NT) {
    float a = 0.0f;
#pragma unroll
    for (int w = 0; w < NW; ++w)
      a = fmaf(wacc[w][c], f[w], a);
    o[c] = a * inv;
  }
}

/// One warp's online-softmax step over a tile of up to 32 positions: lane l scores the key
/// row at `krow` (`valid`: its position counts), and the value rows of lanes 0 .. n - 1 are
/// accumulated with their weights (rows in [0, n) that do not count have weight 0 and
/// finite values). Rows may be in global or shared memory.
template <class KV, int HD, int CPL>
__device__ __forceinline__ void
attend_rows(const float *qs, float qsum, float scale, const uint8_t *krow, const uint8_t *vrow,
            bool valid, int n, float &mx, float &den, float (&acc)[CPL], int c0) {
  const float sc = valid ? KV::template dot<HD>(qs, qsum, krow) * scale : -INFINITY;
  const float tmx = warp_max(sc);
  if (tmx == -INFINITY) // no position of the tile counts for this warp
    return;
  const float nmx = fmaxf(mx, tmx);
  const float corr = expf(mx - nmx);
  const float p = valid ? expf(sc - nmx) : 0.0f;
  den = den * corr + warp_sum(p);
#pragma unroll
  for (int i = 0; i < CPL; ++i)
    acc[i] *= corr;
  accumulate_tile<KV, HD, CPL>(acc, vrow, p, n, c0);
  mx = nmx;
}

/// Shared memory stride of a KV head row in attention_prefill_kernel's tiles: 16-byte
/// aligned, plus 16 bytes so that the 16-byte loads of 8 lanes (rows) hit distinct banks.
template <class KV, int HD> __host__ __device__ constexpr int prefill_row_stride() {
  return static_cast<int>((KV::template head_bytes<HD>() + 15) / 16 * 16 + 16);
}
/// Whether a tile of 32 key and 32 value rows fits in 40 KiB of shared memory.
template <class KV, int HD> __host__ __device__ constexpr bool prefill_tiles_fit() {
  return 2 * 32 * prefill_row_stride<KV, HD>() <= 40 * 1024;
}

/// Prefill attention, one block per (QT consecutive tokens, query head), a warp per token.
/// When the QT tokens belong to one slot (a prompt's chunk), each tile of 32 positions of
/// the KV cache is copied into shared memory once and scored by all QT warps, each with its
/// own online softmax over all of its positions - QT times fewer reads of the cache than a
/// block per token; the tokens' causal ranges differ, so lanes past a warp's position do not
/// count. The copies are cp.async, the next tile's in flight while this one is scored where
/// two buffers fit in 40 KiB. Otherwise each warp reads its token's rows from the cache.
template <int L, int H, int KVH, int HD, int WINDOW, class KV, int P, int QT>
__global__ void __launch_bounds__(QT *kWarpSize)
    attention_prefill_kernel(void *kv, const int32_t *__restrict__ table, int64_t max_pages,
                             const int32_t *__restrict__ positions,
                             const int32_t *__restrict__ slots, int layer, float scale,
                             const float *__restrict__ q, float *__restrict__ out,
                             const float *__restrict__ inv_freq, int64_t ldq, int64_t M) {
  pdl_enter();
  constexpr int NT = QT * kWarpSize, HDP = (HD + 3) / 4 * 4;
  constexpr int CPL = (HD + kWarpSize - 1) / kWarpSize;
  constexpr int G = H / KVH, HBS = prefill_row_stride<KV, HD>();
  constexpr int64_t HB = KV::template head_bytes<HD>(), ROWB = kv_row_bytes<KV, KVH, HD>();
  constexpr int64_t PAGE_STRIDE = int64_t{L} * 2 * P * ROWB;
  constexpr int CU = HB % 16 == 0 ? 16 : 4;      // bytes a copy (cp.async)
  constexpr int UPR = static_cast<int>(HB / CU); // copies a row
  // Two buffers where they fit: the next tile is copied while this one is scored.
  constexpr int NBUF = 2 * 2 * 32 * HBS <= 40 * 1024 ? 2 : 1;
  __shared__ __align__(16) float qs[QT][HDP];
  __shared__ __align__(16) uint8_t tiles[NBUF][2][32 * HBS];
  __shared__ int32_t wlo[QT], whi[QT];
  const int tid = threadIdx.x, warp = tid / kWarpSize, lane = tid % kWarpSize, c0 = lane * CPL;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x / H) * QT, t = t0 + warp;
  const int h = blockIdx.x % H, g = h / G;
  const bool has = t < M;
  const int32_t slot0 = slots[t0];
  const int32_t slot = has ? slots[t] : slot0, pos = has ? positions[t] : -1;
  const int32_t lo = (WINDOW > 0 && pos >= WINDOW) ? pos - WINDOW + 1 : 0;
  float *qw = qs[warp];
  if (has)
    load_q_head<HD, HDP>(q + t * ldq + h * HD, pos, inv_freq, qw, lane, kWarpSize);
  if (lane == 0) {
    wlo[warp] = has ? lo : INT32_MAX;
    whi[warp] = pos;
  }
  const bool shared_slot = __syncthreads_and(slot == slot0) != 0; // also publishes qs
  float qsum = 0.0f;
  for (int i = 0; i < HD; ++i)
    qsum += qw[i];
  const uint8_t *kbase =
      static_cast<const uint8_t *>(kv) + (int64_t{layer} * 2 * P) * ROWB + g * HB;
  const uint8_t *vbase = kbase + int64_t{P} * ROWB;
  float mx = -INFINITY, den = 0.0f, acc[CPL];
#pragma unroll
  for (int i = 0; i < CPL; ++i)
    acc[i] = 0.0f;
  if (shared_slot) {
    int32_t glo = INT32_MAX, ghi = -1;
#pragma unroll
    for (int w = 0; w < QT; ++w) {
      glo = min(glo, wlo[w]);
      ghi = max(ghi, whi[w]);
    }
    const int32_t *pages = table + slot0 * max_pages;
    // Copies rows j0 .. min(j0 + 31, ghi) of k, then of v, into buffer b (cp.async).
    auto issue = [&](int32_t j0, int b) {
      const int rows = ghi - j0 + 1 < kWarpSize ? ghi - j0 + 1 : kWarpSize;
      for (int i = tid; i < 2 * rows * UPR; i += NT) {
        const int which = i / (rows * UPR), rem = i - which * rows * UPR;
        const int r = rem / UPR, u = rem - r * UPR, j = j0 + r;
        const uint8_t *src =
            (which == 0 ? kbase : vbase) + pages[j / P] * PAGE_STRIDE + (j % P) * ROWB + u * CU;
        uint8_t *dst = tiles[b][which] + r * HBS + u * CU;
        if constexpr (CU == 16)
          cp_async16(dst, src, 16);
        else
          cp_async4(dst, src);
      }
      cp_async_commit();
    };
    issue(glo, 0);
    int b = 0;
    for (int32_t j0 = glo; j0 <= ghi; j0 += kWarpSize) {
      const bool more = j0 + kWarpSize <= ghi;
      if constexpr (NBUF == 2) {
        if (more)
          issue(j0 + kWarpSize, b ^ 1); // its buffer was last read before the barrier below
        if (more)
          cp_async_wait_one();
        else
          cp_async_wait_all();
      } else {
        cp_async_wait_all();
      }
      __syncthreads();
      const int n = pos - j0 + 1 < kWarpSize ? pos - j0 + 1 : kWarpSize;
      if (has && n > 0) {
        const int32_t j = j0 + lane;
        attend_rows<KV, HD, CPL>(qw, qsum, scale, tiles[b][0] + lane * HBS,
                                 tiles[b][1] + lane * HBS, j >= lo && j <= pos, n, mx, den, acc,
                                 c0);
      }
      __syncthreads();
      if constexpr (NBUF == 2)
        b ^= 1;
      else if (more)
        issue(j0 + kWarpSize, 0);
    }
  } else if (has) {
    const int32_t *pages = table + slot * max_pages;
    for (int32_t j0 = lo; j0 <= pos; j0 += kWarpSize) {
      const int32_t j = j0 + lane;
      const bool valid = j <= pos;
      const int64_t off = valid ? pages[j / P] * PAGE_STRIDE + (j % P) * ROWB : 0;
      const int n = pos - j0 + 1 < kWarpSize ? pos - j0 + 1 : kWarpSize;
      attend_rows<KV, HD, CPL>(qw, qsum, scale, kbase + off, vbase + off, valid, n, mx, den, acc,
                               c0);
    }
  }
  if (has) {
    const float inv = 1.0f / den;
    float *o = out + t * (H * HD) + h * HD;
#pragma unroll
    for (int i = 0; i < CPL; ++i)
      if (c0 + i < HD)
        o[c0 + i] = acc[i] * inv;
  }
}

/// Tokens a block of attention_prefill_kernel (a warp each); a macro so that
/// bench/attention_graph.cu can compare other values.
#ifndef QLC_CUDA_PREFILL_TOKENS
#define QLC_CUDA_PREFILL_TOKENS 8
#endif

/// Steps of up to this many tokens take the decode configuration of attention_kernel (16
/// warps; attention_store_kernel where KV::kDecodeStoreFused).
constexpr int64_t kAttnDecodeTokens = 8;

/// Causal attention of M tokens (q rows [M, H*HD], k/v rows [M, KVH*HD]) over the paged
/// cache `kv` (pages of P positions, block table `table` of max_pages entries a slot),
/// after appending the step's k and v at their positions. WINDOW > 0: sliding window of
/// that many positions. inv_freq: the rotary embedding (HD/2 inverse frequencies, device
/// memory) to apply to q and k, or nullptr when they arrive rotated. ldq, ldkv: floats from
/// one token's q (k, v) row to the next's (qlc-fold-qkv-split: column ranges of the fused
/// q/k/v projection's rows).
template <int L, int H, int KVH, int HD, int WINDOW, class KV, int P>
void attention(cudaStream_t s, void *kv, const int32_t *table, int64_t max_pages, int64_t M,
               const int32_t *positions, const int32_t *slots, int layer, float scale,
               const float *q, const float *k, const float *v, float *out,
               const float *inv_freq = nullptr, int64_t ldq = H * HD, int64_t ldkv = KVH * HD) {
  static_assert(H % KVH == 0, "query heads come in whole groups");
  static_assert(HD % 2 == 0 && HD <= 256, "even head widths up to 256");
  static_assert(P > 0, "pages hold at least one position");
  constexpr int kDecodeWarps = 16, kPrefillTokens = QLC_CUDA_PREFILL_TOKENS;
  static_assert(kAttnDecodeTokens * 2 <= kDecodeWarps, "a warp for each k and v row of a step");
  if (M <= 0)
    return;
  if (M <= kAttnDecodeTokens && KV::kDecodeStoreFused) {
    launch_kernel(attention_store_kernel<L, H, KVH, HD, WINDOW, KV, P, kDecodeWarps>,
                  static_cast<unsigned>(M * H), kDecodeWarps * kWarpSize, 0, s, kv, table,
                  max_pages, positions, slots, layer, scale, q, out, inv_freq, ldq,
                  static_cast<int>(M), k, v, ldkv);
    return;
  }
  launch_kernel(kv_store_kernel<L, KVH, HD, KV, P>, static_cast<unsigned>(M * KVH * 2), kWarpSize,
                0, s, kv, table, max_pages, positions, slots, layer, k, v, inv_freq, ldkv);
  if (M <= kAttnDecodeTokens)
    launch_kernel(attention_kernel<L, H, KVH, HD, WINDOW, KV, P, kDecodeWarps>,
                  static_cast<unsigned>(M * H), kDecodeWarps * kWarpSize, 0, s, kv, table,
                  max_pages, positions, slots, layer, scale, q, out, inv_freq, ldq);
  else if constexpr (prefill_tiles_fit<KV, HD>())
    launch_kernel(attention_prefill_kernel<L, H, KVH, HD, WINDOW, KV, P, kPrefillTokens>,
                  static_cast<unsigned>(ceil_div(M, kPrefillTokens) * H),
                  kPrefillTokens * kWarpSize, 0, s, kv, table, max_pages, positions, slots, layer,
                  scale, q, out, inv_freq, ldq, M);
  else
    launch_kernel(attention_kernel<L, H, KVH, HD, WINDOW, KV, P, 4>, static_cast<unsigned>(M * H),
                  4 * kWarpSize, 0, s, kv, table, max_pages, positions, slots, layer, scale, q, out,
                  inv_freq, ldq);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_ATTENTION_CUH
