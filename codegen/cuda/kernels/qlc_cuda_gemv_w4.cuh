// qlc_cuda_gemv_w4.cuh - decode projections (M <= 8 token rows) by 4-bit int weights, on the
// tensor cores: y[M, N] = x[M, K] * dequant(W)^T (+ bias), W in the int format of
// qlc_cuda_qlinear.cuh (rows of K/2 bytes, low nibble first; an f16 scale and a uint8 zero per
// row and group of G columns).
//
// Why: the generic GEMV (qlc_cuda_linear.cuh) spends ~8 instructions per 4-bit weight
// (Nsight Compute on an H200: staging x per block, a scale and zero load per 16 codes,
// f32 conversion and FMA per code) and streams 0.7-1.0 TB/s. Here a weight costs about 1.4:
//   * 8 codes of a 32-bit word become four f16 pairs (q_j, q_j+4) with one LOP3 each
//     (w & 0x000F000F | 0x64006400 is the half pair 1024 + q; the high nibbles give
//     1024 + 16 q), then q - zero exactly with one HSUB2 or HFMA2 (w4_decode_word);
//   * mma.sync m16n8k16 multiplies them with x (rounded to f16, as in the tensor-core GEMM)
//     and accumulates in f32: 16 weight rows (the A operand) times up to 8 tokens (B);
//   * the group's scale is applied once per 128 codes, to the f32 partial sums.
// The order of k inside an mma step is free as long as A and B agree: lane (g, t) of a warp
// owns weight rows g and g + 8 of the block's 16 and the 16-byte chunk c = 4 * quad + t of
// each (32 codes); its word w gives the A pairs j = 0..3 (codes 8w + j and 8w + j + 4), two
// per step, and it loads x[token g] at the same 8 positions for B. A quad (4 chunks, 128
// codes) therefore lies in one group when G % 128 == 0 (or G >= K: one group per row).
//
// Two kernels share that arithmetic:
//   * gemv_w4_stream_kernel (1-4 tokens, x staged in shared memory): a block holds RT tiles
//     of 16 rows, KW warps per tile split its quads, and each lane keeps D quads in flight,
//     requesting the next as it decodes one, and x is converted to f16 once per block. On an H200
//     it is 1.2-1.3x faster than the other at batch 1 and up to 1.9x at 4 tokens
//     (bench/gemv_w4_graph.cu).
//   * gemv_w4_kernel (up to 8 tokens, x read from global memory): a block of KW warps takes
//     16 rows, its warps split the quads of K (quad q to warp q % KW), each lane loads UNQ
//     quads (2 x 16 bytes each) before decoding the first, and the warps add their partial
//     sums through shared memory at the end.
// Used by qlinear_int for BITS == 4, M <= kGemvMaxM, K % 32 == 0, G % 128 == 0 or G >= K,
// 16-byte aligned weights and x; other cases take the generic GEMV.
#ifndef QLC_CUDA_GEMV_W4_CUH
#define QLC_CUDA_GEMV_W4_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_cuda_mma.cuh"
#include "qlc_w4_tiles.h"

namespace qlc {
namespace cuda {

/// Whether the tensor-core int4 GEMV takes these shapes.
template <int K, int G> constexpr bool gemv_w4_applies() {
  return K % 32 == 0 && K > 0 && (G % 128 == 0 || G >= K);
}

/// The storage of an int4 weight: qlc's rows (qlc_cuda_qlinear.cuh) or, in CUDA artifacts
/// where it applies, the tile layout of qlc_w4_tiles.h.
enum class W4Layout { Rows, Tiles };

/// A lane's view of rows g and g + 8 (g = lane / 4) of a 16-row tile of an int4 weight:
/// quad qd's 16-byte chunk 4 qd + lane % 4 of each row, and the quad's group's scales and
/// zeros. Rows: `scales` [N][groups] f16 and `zeros` [N][groups] (null: 8); Tiles: `scales`
/// holds the 8-byte entries, `zeros` is not read. EXACT: every tile the kernel takes is
/// whole (no row checks).
template <int K, int G, W4Layout L, bool EXACT = false> struct W4Lane {
  static constexpr int64_t ROW_BYTES = K / 2, GROUPS = (K + G - 1) / G;
  static_assert(L == W4Layout::Rows || w4tiles::applies(K, 16, G), "the tile layout's shapes");
  const uint4 *p0, *p1;
  const f16 *sc0 = nullptr, *sc1 = nullptr;
  const uint8_t *zr0 = nullptr, *zr1 = nullptr;
  const uint2 *ent = nullptr;
  bool ok0, ok1;

  __device__ __forceinline__ W4Lane(const uint8_t *q, const f16 *scales, const uint8_t *zeros,
                                    int tile, int lane, int N) {
    const int g = lane >> 2, t = lane & 3;
    const int row0 = tile * 16 + g, row1 = row0 + 8;
    ok0 = EXACT || row0 < N;
    ok1 = EXACT || row1 < N;
    if constexpr (L == W4Layout::Tiles) { // N % 16 == 0: both rows exist or neither
      const int64_t tl = ok0 ? tile : 0;
      p0 = reinterpret_cast<const uint4 *>(q) + tl * (K / 128) * 64 + lane;
      p1 = p0 + 32;
      ent = reinterpret_cast<const uint2 *>(scales) + tl * GROUPS * 8 + g;
    } else {
      p0 =
          reinterpret_cast<const uint4 *>(q + static_cast<int64_t>(ok0 ? row0 : 0) * ROW_BYTES) + t;
      p1 =
          reinterpret_cast<const uint4 *>(q + static_cast<int64_t>(ok1 ? row1 : 0) * ROW_BYTES) + t;
      sc0 = scales + static_cast<int64_t>(ok0 ? row0 : 0) * GROUPS;
      sc1 = scales + static_cast<int64_t>(ok1 ? row1 : 0) * GROUPS;
      if (zeros != nullptr) {
        zr0 = zeros + static_cast<int64_t>(ok0 ? row0 : 0) * GROUPS;
        zr1 = zeros + static_cast<int64_t>(ok1 ? row1 : 0) * GROUPS;
      }
    }
  }
  /// Quad qd (a quad of the row; `in`: this lane's chunk of it lies inside the row, else
  /// its codes are zeros) into w0, w1, the scales s0, s1 and zeros z0, z1 of the two rows.
  __device__ __forceinline__ void load(int qd, bool in, uint4 &w0, uint4 &w1, float &s0, float &s1,
                                       unsigned &z0, unsigned &z1) const {
    const int gi = G >= K ? 0 : qd * 128 / G;
    if constexpr (L == W4Layout::Tiles) {
      w0 = in && ok0 ? __ldg(p0 + qd * 64) : make_uint4(0, 0, 0, 0);
      w1 = in && ok0 ? __ldg(p1 + qd * 64) : make_uint4(0, 0, 0, 0);
      const uint2 e = ok0 ? __ldg(ent + gi * 8) : make_uint2(0u, 0x00080008u);
      const __half2 h = *reinterpret_cast<const __half2 *>(&e.x);
      s0 = __low2float(h);
      s1 = __high2float(h);
      z0 = e.y & 0xFFFFu;
      z1 = e.y >> 16;
    } else {
      w0 = in && ok0 ? __ldg(p0 + qd * 4) : make_uint4(0, 0, 0, 0);
      w1 = in && ok1 ? __ldg(p1 + qd * 4) : make_uint4(0, 0, 0, 0);
      s0 = ok0 ? __half2float(__ldg(sc0 + gi)) : 0.0f;
      s1 = ok1 ? __half2float(__ldg(sc1 + gi)) : 0.0f;
      z0 = zr0 != nullptr && ok0 ? __ldg(zr0 + gi) : 8u;
      z1 = zr1 != nullptr && ok1 ? __ldg(zr1 + gi) : 8u;
    }
  }
};

/// Launch configuration of the int4 GEMV: KW warps per block, UNQ quads (2 x 16 bytes) each
/// lane loads before decoding the first. <8, 4> was the fastest or within 5 % of it on the
/// Llama-2-7B shapes at M = 1 on an H200 (docs/cuda.md; a cp.async pipeline through shared
/// memory instead of registers was slower).
template <int KW_, int UNQ_> struct GemvW4Cfg {
  static constexpr int KW = KW_, UNQ = UNQ_;
};
using GemvW4Default = GemvW4Cfg<8, 4>;

__device__ __forceinline__ unsigned half2_bits(__half2 h) {
  return *reinterpret_cast<const unsigned *>(&h);
}

/// (a & b) | c in one LOP3 (ptxas otherwise emits an AND and an OR here).
__device__ __forceinline__ unsigned and_or(unsigned a, unsigned b, unsigned c) {
  unsigned d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

/// The A pairs j = 0..3 of mma_16816 (as f16 q - zero, exact) of one 32-bit word of 8
/// codes: a LOP3 puts codes (j, j + 4) of the low or high nibbles into f16 pairs 1024 + q
/// (j even) or 1024 + 16 q (j odd); an HSUB2 with 1024 + zero or an HFMA2 by 1/16 with
/// -(64 + zero) makes them q - zero. `zb` and `zb16` are those two f16 pairs' bits.
__device__ __forceinline__ void w4_decode_word(unsigned w, unsigned zb, unsigned zb16,
                                               unsigned (&a)[4]) {
  const __half2 sixteenth = __float2half2_rn(0.0625f);
  const __half2 bz = *reinterpret_cast<const __half2 *>(&zb);
  const __half2 bz16 = *reinterpret_cast<const __half2 *>(&zb16);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const unsigned v = h == 0 ? w : w >> 8;
    const unsigned lo = and_or(v, 0x000F000Fu, 0x64006400u);
    const unsigned hi = and_or(v, 0x00F000F0u, 0x64006400u);
    a[2 * h] = half2_bits(__hsub2(*reinterpret_cast<const __half2 *>(&lo), bz));
    a[2 * h + 1] = half2_bits(__hfma2(*reinterpret_cast<const __half2 *>(&hi), sixteenth, bz16));
  }
}

template <int K, int N, int G, class Cfg, W4Layout L = W4Layout::Rows>
__global__ void __launch_bounds__(Cfg::KW *kWarpSize)
    gemv_w4_kernel(int M, const float *__restrict__ x, const uint8_t *__restrict__ q,
                   const f16 *__restrict__ scales, const uint8_t *__restrict__ zeros,
                   const float *__restrict__ bias, float *__restrict__ y) {
  constexpr int KW = Cfg::KW, UNQ = Cfg::UNQ;
  constexpr int CH = K / 32;            // 16-byte chunks per row
  constexpr int QD = (CH + 3) / 4;      // quads of chunks
  __shared__ float red[KW][16][9];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int g = lane >> 2, t = lane & 3;
  const W4Lane<K, G, L> wl(q, scales, zeros, blockIdx.x, lane, N);
  const bool tok = g < M;
  const float *xr = x + static_cast<int64_t>(tok ? g : 0) * K;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  pdl_trigger();
  // The first quads' weights are requested before waiting for the previous kernel (x is
  // its output): their latency overlaps that kernel's tail.
  bool waited = false;
  for (int qb = warp; qb < QD; qb += KW * UNQ) {
    uint4 w0[UNQ], w1[UNQ];
    float s0[UNQ], s1[UNQ];
    unsigned z0[UNQ], z1[UNQ];
#pragma unroll
    for (int u = 0; u < UNQ; ++u) {
      const int qd = qb + u * KW;
      wl.load(qd < QD ? qd : 0, qd < QD && qd * 4 + t < CH, w0[u], w1[u], s0[u], s1[u], z0[u],
              z1[u]);
    }
    if (!waited) {
      pdl_wait();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < UNQ; ++u) {
      const int qd = qb + u * KW;
      if (qd >= QD) // the same for the whole warp
        break;
      const int c = qd * 4 + t;
      const bool xin = tok && c < CH;
      // f16 pairs 1024 + z and -(64 + z) for w4_decode_word, built from the integer z.
      const unsigned zb0 = 0x64006400u | (z0[u] * 0x10001u), zb1 = 0x64006400u | (z1[u] * 0x10001u);
      const unsigned zc0 = 0xD400D400u | (z0[u] * 0x100010u),
                     zc1 = 0xD400D400u | (z1[u] * 0x100010u);
      const unsigned wa[4] = {w0[u].x, w0[u].y, w0[u].z, w0[u].w};
      const unsigned wb[4] = {w1[u].x, w1[u].y, w1[u].z, w1[u].w};
      float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        unsigned b[4] = {0u, 0u, 0u, 0u};
        if (xin) {
          const float4 lo = __ldg(reinterpret_cast<const float4 *>(xr + c * 32 + w * 8));
          const float4 hi = __ldg(reinterpret_cast<const float4 *>(xr + c * 32 + w * 8 + 4));
          b[0] = half2_bits(__floats2half2_rn(lo.x, hi.x));
          b[1] = half2_bits(__floats2half2_rn(lo.y, hi.y));
          b[2] = half2_bits(__floats2half2_rn(lo.z, hi.z));
          b[3] = half2_bits(__floats2half2_rn(lo.w, hi.w));
        }
        unsigned a0[4], a1[4];
        w4_decode_word(wa[w], zb0, zc0, a0);
        w4_decode_word(wb[w], zb1, zc1, a1);
        const unsigned s0a[4] = {a0[0], a1[0], a0[1], a1[1]};
        const unsigned s1a[4] = {a0[2], a1[2], a0[3], a1[3]};
        mma_16816(part, s0a, b[0], b[1]);
        mma_16816(part, s1a, b[2], b[3]);
      }
      acc[0] = fmaf(s0[u], part[0], acc[0]);
      acc[1] = fmaf(s0[u], part[1], acc[1]);
      acc[2] = fmaf(s1[u], part[2], acc[2]);
      acc[3] = fmaf(s1[u], part[3], acc[3]);
    }
  }
  if (!waited)
    pdl_wait();
  // acc: rows g (0, 1) and g + 8 (2, 3) of the block, tokens 2t and 2t + 1.
  red[warp][g][2 * t] = acc[0];
  red[warp][g][2 * t + 1] = acc[1];
  red[warp][g + 8][2 * t] = acc[2];
  red[warp][g + 8][2 * t + 1] = acc[3];
  __syncthreads();
  for (int i = threadIdx.x; i < 16 * 8; i += KW * kWarpSize) {
    const int r = i % 16, m = i / 16;
    const int64_t n = static_cast<int64_t>(blockIdx.x) * 16 + r;
    if (m < M && n < N) {
      float v = 0.0f;
#pragma unroll
      for (int k = 0; k < KW; ++k)
        v += red[k][r][m];
      y[static_cast<int64_t>(m) * N + n] = bias != nullptr ? v + bias[n] : v;
    }
  }
}

/// Streaming variant of the int4 GEMV for few tokens: a block holds RT tiles of 16 rows,
/// KW warps per tile split its quads (warp k takes quads k, k + KW, ...); each lane keeps D
/// quads of both its rows (with their scales and zeros) in flight, requesting the next as it
/// decodes one, so the loads of a warp overlap its arithmetic; x is staged once per block in
/// shared memory as f16 pairs in the mma B layout ([token][word][chunk], 16 bytes each).
/// Bounds checks that the shapes make unnecessary are left out at compile time.
template <int K, int N, int G, int KW, int RT, int D, W4Layout L = W4Layout::Rows>
__global__ void __launch_bounds__(KW *RT *kWarpSize)
    gemv_w4_stream_kernel(int M, const float *__restrict__ x, const uint8_t *__restrict__ q,
                          const f16 *__restrict__ scales, const uint8_t *__restrict__ zeros,
                          const float *__restrict__ bias, float *__restrict__ y) {
  constexpr int CH = K / 32, QD = (CH + 3) / 4, NQ = (QD + KW - 1) / KW, NT = KW * RT * kWarpSize;
  constexpr bool ALL_QUADS = CH % 4 == 0 && QD % KW == 0; // every (warp, i < NQ) quad is whole
  constexpr bool ALL_ROWS = N % (16 * RT) == 0;
  constexpr int XS = 4 * CH + 4; // uint4 per token, padded by 64 bytes
  extern __shared__ uint4 xs[];
  __shared__ float red[RT][KW][16][9];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int kw = warp % KW, rt = warp / KW;
  const int g = lane >> 2, t = lane & 3;
  const W4Lane<K, G, L, ALL_ROWS> wl(q, scales, zeros, blockIdx.x * RT + rt, lane, N);
  uint4 w0[D], w1[D];
  float s0[D], s1[D];
  unsigned z0[D], z1[D];
  auto load = [&](int d, int i) { // quad number i of this warp into slot d
    const int qd = kw + i * KW;
    const bool in = ALL_QUADS ? i < NQ : (i < NQ && qd < QD && qd * 4 + t < CH);
    // The quad's group for every lane, also one whose chunk lies past K: its C fragment
    // holds tokens 2t, 2t + 1 of the quad's rows, which take the quad's scale.
    wl.load(ALL_QUADS || (i < NQ && qd < QD) ? qd : 0, in, w0[d], w1[d], s0[d], s1[d], z0[d],
            z1[d]);
  };
  pdl_trigger();
#pragma unroll
  for (int d = 0; d < D; ++d)
    load(d, d);
  pdl_wait();
  // x: SB items (8 floats each) per thread in flight at a time.
  constexpr int SB = 4;
  for (int i0 = threadIdx.x; i0 < M * CH * 4; i0 += NT * SB) {
    float4 lo[SB], hi[SB];
#pragma unroll
    for (int u = 0; u < SB; ++u) {
      const int i = i0 + u * NT;
      if (i < M * CH * 4) {
        const float *p = x + static_cast<int64_t>(i / (CH * 4)) * K + i % (CH * 4) * 8;
        lo[u] = __ldg(reinterpret_cast<const float4 *>(p));
        hi[u] = __ldg(reinterpret_cast<const float4 *>(p + 4));
      }
    }
#pragma unroll
    for (int u = 0; u < SB; ++u) {
      const int i = i0 + u * NT;
      if (i < M * CH * 4) {
        const int m = i / (CH * 4), r = i % (CH * 4), c = r / 4, w = r % 4;
        xs[m * XS + w * CH + c] = make_uint4(half2_bits(__floats2half2_rn(lo[u].x, hi[u].x)),
                                             half2_bits(__floats2half2_rn(lo[u].y, hi[u].y)),
                                             half2_bits(__floats2half2_rn(lo[u].z, hi[u].z)),
                                             half2_bits(__floats2half2_rn(lo[u].w, hi[u].w)));
      }
    }
  }
  __syncthreads();
  const bool tok = g < M;
  const uint4 *xr = xs + (tok ? g : 0) * XS + kw * 4 + t;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int i0 = 0; i0 < NQ; i0 += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      const int i = i0 + d, qd = kw + i * KW;
      if (NQ % D == 0 || i < NQ) {
        if (ALL_QUADS || qd < QD) { // the same for the whole warp
          const bool xin = tok && (ALL_QUADS || qd * 4 + t < CH);
          // f16 pairs 1024 + z and -(64 + z), built from the integer z < 64.
          const unsigned zb0 = 0x64006400u | (z0[d] * 0x10001u),
                         zb1 = 0x64006400u | (z1[d] * 0x10001u);
          const unsigned zc0 = 0xD400D400u | (z0[d] * 0x100010u),
                         zc1 = 0xD400D400u | (z1[d] * 0x100010u);
          const unsigned wa[4] = {w0[d].x, w0[d].y, w0[d].z, w0[d].w};
          const unsigned wb[4] = {w1[d].x, w1[d].y, w1[d].z, w1[d].w};
          // Two chains of mma accumulators (words 0, 2 and 1, 3) halve the dependent latency.
          float part[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
          for (int w = 0; w < 4; ++w) {
            const uint4 b = xin ? xr[w * CH + i * KW * 4] : make_uint4(0, 0, 0, 0);
            unsigned a0[4], a1[4];
            w4_decode_word(wa[w], zb0, zc0, a0);
            w4_decode_word(wb[w], zb1, zc1, a1);
            const unsigned s0a[4] = {a0[0], a1[0], a0[1], a1[1]};
            const unsigned s1a[4] = {a0[2], a1[2], a0[3], a1[3]};
            mma_16816(part[w % 2], s0a, b.x, b.y);
            mma_16816(part[w % 2], s1a, b.z, b.w);
          }
          acc[0] = fmaf(s0[d], part[0][0] + part[1][0], acc[0]);
          acc[1] = fmaf(s0[d], part[0][1] + part[1][1], acc[1]);
          acc[2] = fmaf(s1[d], part[0][2] + part[1][2], acc[2]);
          acc[3] = fmaf(s1[d], part[0][3] + part[1][3], acc[3]);
        }
        if (i + D < NQ)
          load(d, i + D);
      }
    }
  }
  red[rt][kw][g][2 * t] = acc[0];
  red[rt][kw][g][2 * t + 1] = acc[1];
  red[rt][kw][g + 8][2 * t] = acc[2];
  red[rt][kw][g + 8][2 * t + 1] = acc[3];
  __syncthreads();
  for (int i = threadIdx.x; i < RT * 16 * 8; i += NT) {
    const int r = i % 16, m = (i / 16) % 8, tr = i / 128;
    const int64_t n = (static_cast<int64_t>(blockIdx.x) * RT + tr) * 16 + r;
    if (m < M && n < N) {
      float v = 0.0f;
#pragma unroll
      for (int k = 0; k < KW; ++k)
        v += red[tr][k][r][m];
      y[static_cast<int64_t>(m) * N + n] = bias != nullptr ? v + bias[n] : v;
    }
  }
}

/// Shared memory of the streaming GEMV's staged x for M tokens.
template <int K> constexpr size_t gemv_w4_stream_smem(int64_t M) {
  return static_cast<size_t>(M) * (4 * (K / 32) + 4) * 16;
}
/// Its static shared memory (the warps' partial sums) with KW warps per tile, RT tiles.
template <int KW, int RT> constexpr size_t gemv_w4_stream_red_bytes() {
  return static_cast<size_t>(RT) * KW * 16 * 9 * sizeof(float);
}

/// The streaming GEMV takes up to this many tokens (more: gemv_w4_kernel, which reads x
/// from global memory), and at most this much shared memory for x and its partial sums
/// (the default limit, so that no opt-in is needed, e.g. while a graph is captured):
/// Llama-2-7B's K = 4096 projections up to 4 tokens, its K = 11008 one up to 2.
constexpr int kGemvW4StreamMaxM = 4;
constexpr size_t kGemvW4StreamMaxSmem = 48 * 1024;

/// Launch configuration of the streaming GEMV by the number of 16-row tiles, the quads per
/// row and the layout: the fastest of <KW, RT, D> in {1, 2, 4, 8, 16} x {1, 2, 4} x
/// {1, 2, 4, 8} on an H100 at M = 1 for Llama-2-7B's shapes (bench/gemv_w4_graph.cu,
/// docs/cuda.md). Few tiles (o, down: 256) want many warps per tile: 16 with one quad in
/// flight each, except for rows of many quads (down: 86) in the row layout, where <8, 1, 4>
/// is 1.2x faster than that; 768 (q/k/v) and 1,376 (gate/up) four warps per tile, two
/// tiles a block, two quads in flight (the previous choices, <2,2,8> and <4,1,4>, picked on
/// an H200, were 1.01-1.13x slower on the H100, o's <8,1,4> 1.13-1.17x); 2,000 (a
/// 32,000-word vocabulary) two warps and four tiles with rows, eight warps with tiles. Steps whose x and partial sums
/// exceed 48 KiB in this configuration take GemvW4StreamFallback.
template <int K, int N, W4Layout L = W4Layout::Rows> struct GemvW4StreamCfg {
  static constexpr int TILES = (N + 15) / 16, QD = (K / 32 + 3) / 4;
  static constexpr bool T = L == W4Layout::Tiles;
  static constexpr int KW0 = TILES <= 384    ? (QD <= 48 || T ? 16 : 8)
                             : TILES <= 1536 ? 4
                                             : (T ? 8 : 2);
  static constexpr int RT = TILES <= 384 ? 1 : TILES <= 1536 ? 2 : (T ? 1 : 4);
  static constexpr int KW = KW0 <= QD ? KW0 : (QD >= 4 ? 4 : QD >= 2 ? 2 : 1);
  static constexpr int NQ = (QD + KW - 1) / KW;
  static constexpr int D0 = TILES <= 384    ? (QD <= 48 || T ? 1 : 4)
                            : TILES <= 1536 ? 2
                                            : (T ? 2 : 4);
  static constexpr int D = D0 <= NQ ? D0 : NQ;
};
/// The configuration for steps whose staged x does not fit beside GemvW4StreamCfg's
/// partial sums: eight warps a tile (half the sums), four quads in flight.
template <int K, int N> struct GemvW4StreamFallback {
  static constexpr int QD = (K / 32 + 3) / 4;
  static constexpr int KW = QD >= 8 ? 8 : QD >= 4 ? 4 : QD >= 2 ? 2 : 1, RT = 1;
  static constexpr int D = 4 <= (QD + KW - 1) / KW ? 4 : (QD + KW - 1) / KW;
};

/// y[M, N] for M tokens (1 <= M <= 8 and gemv_w4_stream_smem<K>(M) <= 48 KiB); the caller
/// checks gemv_w4_applies<K, G>() and 16-byte alignment
/// of qweight and x.
template <int K, int N, int G, int KW = GemvW4StreamCfg<K, N>::KW,
          int RT = GemvW4StreamCfg<K, N>::RT, int D = GemvW4StreamCfg<K, N>::D,
          W4Layout L = W4Layout::Rows>
void launch_gemv_w4_stream(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                           const f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(gemv_w4_applies<K, G>(), "gemv_w4: K % 32 == 0 and G % 128 == 0 or G >= K");
  const size_t smem = gemv_w4_stream_smem<K>(M);
  launch_kernel(gemv_w4_stream_kernel<K, N, G, KW, RT, D, L>,
                static_cast<unsigned>(ceil_div(ceil_div(N, 16), RT)), KW * RT * kWarpSize, smem, s,
                static_cast<int>(M), x, qweight, scales, zeros, bias, y);
}

/// y[M, N] for 1 <= M <= 8; the caller checks gemv_w4_applies<K, G>() and 16-byte alignment
/// of qweight and x.
template <int K, int N, int G, class Cfg = GemvW4Default, W4Layout L = W4Layout::Rows>
void launch_gemv_w4(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                    const f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(gemv_w4_applies<K, G>(), "gemv_w4: K % 32 == 0 and G % 128 == 0 or G >= K");
  const unsigned blocks = static_cast<unsigned>(ceil_div(N, 16));
  launch_kernel(gemv_w4_kernel<K, N, G, Cfg, L>, blocks, Cfg::KW * kWarpSize, 0, s,
                static_cast<int>(M), x, qweight, scales, zeros, bias, y);
}

/// The int4 GEMV for 1 <= M <= kGemvMaxM: the streaming kernel where it takes M, else
/// gemv_w4_kernel. Same conditions as launch_gemv_w4.
template <int K, int N, int G, W4Layout L = W4Layout::Rows>
void gemv_w4(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight, const f16 *scales,
             const uint8_t *zeros, const float *bias, float *y) {
  using C = GemvW4StreamCfg<K, N, L>;
  using F = GemvW4StreamFallback<K, N>;
  const size_t xs = gemv_w4_stream_smem<K>(M);
  if (M <= kGemvW4StreamMaxM &&
      xs + gemv_w4_stream_red_bytes<C::KW, C::RT>() <= kGemvW4StreamMaxSmem)
    launch_gemv_w4_stream<K, N, G, C::KW, C::RT, C::D, L>(s, M, x, qweight, scales, zeros, bias, y);
  else if (M <= kGemvW4StreamMaxM &&
           xs + gemv_w4_stream_red_bytes<F::KW, F::RT>() <= kGemvW4StreamMaxSmem)
    launch_gemv_w4_stream<K, N, G, F::KW, F::RT, F::D, L>(s, M, x, qweight, scales, zeros, bias, y);
  else
    launch_gemv_w4<K, N, G, GemvW4Default, L>(s, M, x, qweight, scales, zeros, bias, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_GEMV_W4_CUH
