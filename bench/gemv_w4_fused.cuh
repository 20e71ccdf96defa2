// gemv_w4_fused.cuh - an experiment, not used by the artifacts: the streaming int4 decode GEMV (qlc_cuda_gemv_w4.cuh) with
// the kernels around it folded in, for 1-4 token rows:
//   * a prologue that makes x itself: RMSNorm of the input (x = w * a / rms(a)), or of a
//     residual sum (h = a + b, written to `sum` by block 0, x = w * h / rms(h)); every
//     block computes the norm of its tokens (the rows are 4-16 KiB and stay in L2), so the
//     separate norm kernel and its launch are gone;
//   * an epilogue for a fused [gate | up] projection: y[t, i] = silu(gate) * up, with a
//     block's first RT/2 tiles the gate rows and its last RT/2 the up rows of the same
//     features, added across the block's shared-memory reduction; the SwiGLU kernel and
//     the write and read of the 2I-wide projection are gone;
//   * an optional tile layout of the weights (W4Layout::Tiles): a 16-row tile's quad of
//     chunks (16 rows x 64 bytes) is one KiB, lane L's chunk of row g at 16 L and of row
//     g + 8 at 512 + 16 L, so each of a warp's loads is 512 contiguous bytes; the scales
//     and zeros of a tile's group are packed per row pair as {half2(s_g, s_g+8),
//     z_g | z_g+8 << 16} (one 8-byte load per quad instead of four).
// The arithmetic of a row's sum is the streaming GEMV's (same quads, same order), so
// without prologue and epilogue the results are bit-identical to it.
#ifndef QLC_BENCH_GEMV_W4_FUSED_CUH
#define QLC_BENCH_GEMV_W4_FUSED_CUH

#include "qlc_cuda_elementwise.cuh"
#include "qlc_cuda_gemv_w4.cuh"

namespace qlc {
namespace cuda {

enum class GemvPro { None, RmsNorm, AddRmsNorm };
enum class GemvEpi { None, SwiGlu };

/// Operands of the fused GEMV. x: the input (None), or the norm's input a; x2: b of
/// AddRmsNorm; norm_w, eps: the norm's weight and epsilon; sum: AddRmsNorm's a + b
/// (written by block 0). q, scales, zeros: the Rows layout; sz: the packed scales and
/// zeros of the Tiles layout (q then holds the tiles).
struct GemvW4Ops {
  const float *x = nullptr, *x2 = nullptr, *norm_w = nullptr;
  float eps = 0.0f;
  float *sum = nullptr;
  const uint8_t *q = nullptr;
  const f16 *scales = nullptr;
  const uint8_t *zeros = nullptr;
  const uint2 *sz = nullptr;
  const float *bias = nullptr;
  float *y = nullptr;
};

/// Byte offset of chunk c (16 bytes, 32 codes) of row r in the Tiles layout of a K x N
/// int4 weight (K % 128 == 0, N % 16 == 0).
template <int K> __host__ __device__ constexpr int64_t w4_tile_offset(int64_t r, int64_t c) {
  constexpr int64_t QD = K / 128;
  const int64_t tile = r / 16, gr = r % 16, quad = c / 4, t = c % 4;
  return (tile * QD + quad) * 1024 + (gr >= 8 ? 512 : 0) + ((gr % 8) * 4 + t) * 16;
}

template <int K, int N, int G, int KW, int RT, int D, W4Layout L, GemvPro P, GemvEpi E>
__global__ void __launch_bounds__(KW *RT *kWarpSize)
    gemv_w4_fused_kernel(int M, GemvW4Ops o) {
  constexpr int CH = K / 32, QD = (CH + 3) / 4, NQ = (QD + KW - 1) / KW, NT = KW * RT * kWarpSize;
  constexpr bool TILES = L == W4Layout::Tiles, GLU = E == GemvEpi::SwiGlu;
  constexpr int NO = GLU ? N / 2 : N; // output features
  static_assert(!TILES || (K % 128 == 0 && N % 16 == 0), "tile layout: K % 128, N % 16");
  static_assert(!GLU || (RT % 2 == 0 && NO % (8 * RT) == 0), "swiglu: whole tile pairs");
  constexpr bool ALL_QUADS = CH % 4 == 0 && QD % KW == 0;
  constexpr bool ALL_ROWS = GLU || N % (16 * RT) == 0;
  constexpr int64_t ROW_BYTES = K / 2;
  constexpr int64_t GROUPS = (K + G - 1) / G;
  constexpr int XS = 4 * CH + 4; // uint4 per token, padded by 64 bytes
  extern __shared__ uint4 xs[];
  __shared__ float red[RT][KW][16][9];
  __shared__ float sred[NT / kWarpSize], sinv[kGemvW4StreamMaxM];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int kw = warp % KW, rt = warp / KW;
  const int g = lane >> 2, t = lane & 3;
  // SwiGLU: the block's tiles rt < RT/2 are gate rows, the others the up rows NO further.
  const int tile = GLU ? (rt < RT / 2 ? blockIdx.x * (RT / 2) + rt
                                      : NO / 16 + blockIdx.x * (RT / 2) + rt - RT / 2)
                       : blockIdx.x * RT + rt;
  const int row0 = tile * 16 + g, row1 = row0 + 8;
  const bool ok0 = ALL_ROWS || row0 < N, ok1 = ALL_ROWS || row1 < N;
  const uint4 *p0, *p1;
  if constexpr (TILES) {
    p0 = reinterpret_cast<const uint4 *>(o.q) + (static_cast<int64_t>(tile) * QD + kw) * 64 + lane;
    p1 = p0 + 32;
  } else {
    p0 = reinterpret_cast<const uint4 *>(o.q + static_cast<int64_t>(ok0 ? row0 : 0) * ROW_BYTES) +
         kw * 4 + t;
    p1 = reinterpret_cast<const uint4 *>(o.q + static_cast<int64_t>(ok1 ? row1 : 0) * ROW_BYTES) +
         kw * 4 + t;
  }
  constexpr int QSTEP = TILES ? KW * 64 : KW * 4; // uint4 from a warp's quad to its next
  const f16 *sc0 = o.scales + static_cast<int64_t>(ok0 ? row0 : 0) * GROUPS;
  const f16 *sc1 = o.scales + static_cast<int64_t>(ok1 ? row1 : 0) * GROUPS;
  const bool has_zeros = o.zeros != nullptr;
  const uint8_t *zr0 = has_zeros ? o.zeros + static_cast<int64_t>(ok0 ? row0 : 0) * GROUPS : nullptr;
  const uint8_t *zr1 = has_zeros ? o.zeros + static_cast<int64_t>(ok1 ? row1 : 0) * GROUPS : nullptr;
  const uint2 *szp = TILES ? o.sz + static_cast<int64_t>(tile) * GROUPS * 8 + g : nullptr;
  uint4 w0[D], w1[D];
  float s0[D], s1[D];
  unsigned z0[D], z1[D];
  auto load = [&](int d, int i) { // quad number i of this warp into slot d
    const int qd = kw + i * KW;
    const bool in = ALL_QUADS ? i < NQ : (i < NQ && qd < QD && qd * 4 + t < CH);
    const int gi = G >= K ? 0 : (ALL_QUADS || (i < NQ && qd < QD) ? qd : 0) * 128 / G;
    if constexpr (TILES) {
      // N % 16 == 0: both rows of a lane exist or neither.
      w0[d] = in && ok0 ? __ldg(p0 + i * QSTEP) : make_uint4(0, 0, 0, 0);
      w1[d] = in && ok0 ? __ldg(p1 + i * QSTEP) : make_uint4(0, 0, 0, 0);
      const uint2 v = ok0 ? __ldg(szp + gi * 8) : make_uint2(0u, 0x00080008u);
      const __half2 s = *reinterpret_cast<const __half2 *>(&v.x);
      s0[d] = __low2float(s);
      s1[d] = __high2float(s);
      z0[d] = v.y & 0xFFFFu;
      z1[d] = v.y >> 16;
    } else {
      w0[d] = in && ok0 ? __ldg(p0 + i * QSTEP) : make_uint4(0, 0, 0, 0);
      w1[d] = in && ok1 ? __ldg(p1 + i * QSTEP) : make_uint4(0, 0, 0, 0);
      s0[d] = ok0 ? __half2float(__ldg(sc0 + gi)) : 0.0f;
      s1[d] = ok1 ? __half2float(__ldg(sc1 + gi)) : 0.0f;
      z0[d] = has_zeros && ok0 ? __ldg(zr0 + gi) : 8u;
      z1[d] = has_zeros && ok1 ? __ldg(zr1 + gi) : 8u;
    }
  };
  pdl_trigger();
#pragma unroll
  for (int d = 0; d < D; ++d)
    load(d, d);
  pdl_wait();
  // The input of token m at float k: a (+ b).
  auto in8 = [&](int64_t off, float4 &lo, float4 &hi) {
    lo = __ldg(reinterpret_cast<const float4 *>(o.x + off));
    hi = __ldg(reinterpret_cast<const float4 *>(o.x + off + 4));
    if constexpr (P == GemvPro::AddRmsNorm) {
      const float4 blo = __ldg(reinterpret_cast<const float4 *>(o.x2 + off));
      const float4 bhi = __ldg(reinterpret_cast<const float4 *>(o.x2 + off + 4));
      lo = make_float4(lo.x + blo.x, lo.y + blo.y, lo.z + blo.z, lo.w + blo.w);
      hi = make_float4(hi.x + bhi.x, hi.y + bhi.y, hi.z + bhi.z, hi.w + bhi.w);
    }
  };
  if constexpr (P != GemvPro::None) {
    // 1/rms of each token's row; block 0 also writes AddRmsNorm's sum.
    for (int m = 0; m < M; ++m) {
      float ss = 0.0f;
      for (int i = threadIdx.x; i < K / 8; i += NT) {
        const int64_t off = static_cast<int64_t>(m) * K + i * 8;
        float4 lo, hi;
        in8(off, lo, hi);
        if (P == GemvPro::AddRmsNorm && blockIdx.x == 0) {
          *reinterpret_cast<float4 *>(o.sum + off) = lo;
          *reinterpret_cast<float4 *>(o.sum + off + 4) = hi;
        }
        ss = fmaf(lo.x, lo.x, ss), ss = fmaf(lo.y, lo.y, ss), ss = fmaf(lo.z, lo.z, ss);
        ss = fmaf(lo.w, lo.w, ss), ss = fmaf(hi.x, hi.x, ss), ss = fmaf(hi.y, hi.y, ss);
        ss = fmaf(hi.z, hi.z, ss), ss = fmaf(hi.w, hi.w, ss);
      }
      ss = block_sum<NT>(ss, sred);
      if (threadIdx.x == 0)
        sinv[m] = 1.0f / sqrtf(ss / static_cast<float>(K) + o.eps);
    }
    __syncthreads();
  }
  // x: SB items (8 floats each) per thread in flight at a time, as f16 pairs in the mma B
  // layout ([token][word][chunk], 16 bytes each).
  constexpr int SB = 4;
  for (int i0 = threadIdx.x; i0 < M * CH * 4; i0 += NT * SB) {
    float4 lo[SB], hi[SB];
#pragma unroll
    for (int u = 0; u < SB; ++u) {
      const int i = i0 + u * NT;
      if (i < M * CH * 4) {
        const int64_t off = static_cast<int64_t>(i / (CH * 4)) * K + i % (CH * 4) * 8;
        if constexpr (P == GemvPro::None) {
          lo[u] = __ldg(reinterpret_cast<const float4 *>(o.x + off));
          hi[u] = __ldg(reinterpret_cast<const float4 *>(o.x + off + 4));
        } else {
          in8(off, lo[u], hi[u]);
          const float inv = sinv[i / (CH * 4)];
          const float *w = o.norm_w + i % (CH * 4) * 8;
          const float4 wl = __ldg(reinterpret_cast<const float4 *>(w));
          const float4 wh = __ldg(reinterpret_cast<const float4 *>(w + 4));
          lo[u] = make_float4(wl.x * (lo[u].x * inv), wl.y * (lo[u].y * inv),
                              wl.z * (lo[u].z * inv), wl.w * (lo[u].w * inv));
          hi[u] = make_float4(wh.x * (hi[u].x * inv), wh.y * (hi[u].y * inv),
                              wh.z * (hi[u].z * inv), wh.w * (hi[u].w * inv));
        }
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
  constexpr int OT = GLU ? RT / 2 : RT; // output tiles of the block
  for (int i = threadIdx.x; i < OT * 16 * 8; i += NT) {
    const int r = i % 16, m = (i / 16) % 8, tr = i / 128;
    const int64_t n = (static_cast<int64_t>(blockIdx.x) * OT + tr) * 16 + r;
    if (m < M && n < NO) {
      float v = 0.0f;
#pragma unroll
      for (int k = 0; k < KW; ++k)
        v += red[tr][k][r][m];
      if (o.bias != nullptr)
        v += o.bias[n];
      if constexpr (GLU) {
        float u = 0.0f;
#pragma unroll
        for (int k = 0; k < KW; ++k)
          u += red[tr + RT / 2][k][r][m];
        if (o.bias != nullptr)
          u += o.bias[NO + n];
        v = silu_times(v, u);
      }
      o.y[static_cast<int64_t>(m) * NO + n] = v;
    }
  }
}

/// Whether the fused GEMV takes M tokens of a K-wide input.
template <int K, int G> constexpr bool gemv_w4_fused_applies(int64_t M) {
  return gemv_w4_applies<K, G>() && M >= 1 && M <= kGemvW4StreamMaxM &&
         gemv_w4_stream_smem<K>(M) <= kGemvW4StreamMaxSmem;
}

/// y = the fused GEMV for 1 <= M <= 4 tokens (gemv_w4_fused_applies); 16-byte aligned q
/// and inputs. N: the projection's rows (2I for SwiGLU, whose y has I columns).
template <int K, int N, int G, int KW, int RT, int D, W4Layout L, GemvPro P, GemvEpi E>
void launch_gemv_w4_fused(cudaStream_t s, int64_t M, const GemvW4Ops &o) {
  const size_t smem = gemv_w4_stream_smem<K>(M);
  const int tiles = ceil_div(N, 16);
  launch_kernel(gemv_w4_fused_kernel<K, N, G, KW, RT, D, L, P, E>,
                static_cast<unsigned>(ceil_div(tiles, RT)), KW * RT * kWarpSize, smem, s,
                static_cast<int>(M), o);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_BENCH_GEMV_W4_FUSED_CUH
