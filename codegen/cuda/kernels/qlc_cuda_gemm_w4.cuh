// qlc_cuda_gemm_w4.cuh - int4 projections of 9 to 64 token rows (batched decode) with the
// streaming GEMV's arithmetic (qlc_cuda_gemv_w4.cuh): y[M, N] = x[M, K] * dequant(W)^T
// (+ bias), W in the int format of qlc_cuda_qlinear.cuh.
//
// Why: the tensor-core GEMM (qlc_cuda_mma.cuh) dequantizes every weight in f32 into shared
// memory and keeps only a few bytes a thread in flight; at 16-64 rows it ran 2-8x slower than
// cuBLAS on the f16 weights (docs/cuda.md), although it reads 3.6x fewer bytes. Here, as in
// the GEMV, a warp owns 16 weight rows, decodes each 32-bit word of codes with one LOP3 and
// one HSUB2/HFMA2 per f16 pair straight into mma A fragments, and keeps D quads (128 codes of
// both its rows) in flight; the decoded fragments then serve TG mma steps, one per group of
// 8 tokens (B), so the decode is paid once per weight for up to 64 tokens. (From 32 tokens
// on the group's scale is applied to the decoded weights in f16, below.)
//
// x is staged per slice of SQ quads (128 SQ columns) for all 8 TG token rows in shared
// memory, as f16 pairs in the mma B layout of the GEMV ([token][word][chunk], 16 bytes; rows
// padded by 64 bytes: conflict-free reads), and shared by the block's RT warps (RT tiles of
// 16 rows); the next slice is loaded into registers while the current one is multiplied.
// The weight loads run ahead across the slices' barriers. Where the row tiles alone
// leave SMs idle, K is split over gridDim.y blocks (whole slices each) that add their sums
// into y with atomics after mma_init_kernel set it to the bias (sum order then varies from
// run to run: last-bit differences in f32, as in the split-K GEMM).
// Applies when K % 128 == 0 and G % 128 == 0 or G >= K (a quad lies in one group).
#ifndef QLC_CUDA_GEMM_W4_CUH
#define QLC_CUDA_GEMM_W4_CUH

#include "qlc_cuda_gemv_w4.cuh"

namespace qlc {
namespace cuda {

/// Rows up to which the token-group kernel serves int4 projections.
constexpr int kGemmW4TokMaxM = 64;

template <int K, int G> constexpr bool gemm_w4_tok_applies() {
  return K % 128 == 0 && K > 0 && (G % 128 == 0 || G >= K);
}

/// RT warps (16-row tiles) a block, SQ quads a slice of staged x, D quads in flight a lane
/// (SQ % D == 0).
template <int RT_, int SQ_, int D_> struct GemmW4TokCfg {
  static constexpr int RT = RT_, SQ = SQ_, D = D_;
  static_assert(SQ % D == 0 && D >= 1, "a slice holds whole rounds of the ring");
};

/// Shared memory of the staged x: 8 TG token rows of 16 SQ + 4 uint4.
template <int TG, int SQ> constexpr size_t gemm_w4_tok_smem() {
  return static_cast<size_t>(8 * TG) * (16 * SQ + 4) * 16;
}

template <int K, int N, int G, int TG, class Cfg, W4Layout L = W4Layout::Rows>
__global__ void __launch_bounds__(Cfg::RT *kWarpSize)
    gemm_w4_tok_kernel(int M, const float *__restrict__ x, const uint8_t *__restrict__ q,
                       const f16 *__restrict__ scales, const uint8_t *__restrict__ zeros,
                       const float *__restrict__ bias, float *__restrict__ y, int quads_per_split) {
  constexpr int RT = Cfg::RT, SQ = Cfg::SQ, D = Cfg::D;
  constexpr int QD = K / 128, CHS = 4 * SQ, XS = 4 * CHS + 4, MT = 8 * TG;
  constexpr int NT = RT * kWarpSize;
  // From 4 token groups on, the group's scale multiplies the decoded f16 weights (one
  // HMUL2 a pair, paid once for all groups; the weight is then rounded to f16, as in the
  // tensor-core GEMM) instead of each group's f32 partial sums (which need TG x 4 more
  // registers and TG x 4 FMAs a quad).
  constexpr bool SCALE_A = TG >= 4;
  __shared__ uint4 xs[MT * XS];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int g = lane >> 2, t = lane & 3;
  const int row0 = (blockIdx.x * RT + warp) * 16 + g;
  const int qa = blockIdx.y * quads_per_split;
  const int qb = qa + quads_per_split < QD ? qa + quads_per_split : QD;
  const W4Lane<K, G, L> wl(q, scales, zeros, blockIdx.x * RT + warp, lane, N);
  const int row1 = row0 + 8;
  const bool ok0 = wl.ok0, ok1 = wl.ok1;
  uint4 w0[D], w1[D];
  float s0[D], s1[D];
  unsigned z0[D], z1[D];
  auto load = [&](int d, int qd) { // quad qd (< qb) of both rows into slot d
    wl.load(qd, true, w0[d], w1[d], s0[d], s1[d], z0[d], z1[d]);
  };
  // x[m, 128 sq + 32 c + 8 w + (0..7)] of slice sq: item i = (m, c, w) of the slice, IT
  // items a thread, loaded into registers one slice ahead and stored as (k, k + 4) f16
  // pairs at xs[m][w][c].
  constexpr int ITEMS = MT * 4 * CHS, IT = (ITEMS + NT - 1) / NT;
  float4 xl[IT], xh[IT];
  struct Item {
    bool in; // i < ITEMS
    int m, c, w;
  };
  auto item = [&](int u) {
    const int i = threadIdx.x + u * NT, r = i % (4 * CHS);
    return Item{ITEMS % NT == 0 || i < ITEMS, i / (4 * CHS), r / 4, r % 4};
  };
  auto fetch_x = [&](int sq) {
    const int nq = qb - sq < SQ ? qb - sq : SQ;
#pragma unroll
    for (int u = 0; u < IT; ++u) {
      const Item it = item(u);
      xl[u] = xh[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (it.in && it.m < M && it.c < 4 * nq) {
        const float *p = x + static_cast<int64_t>(it.m) * K + (sq * 4 + it.c) * 32 + it.w * 8;
        xl[u] = __ldg(reinterpret_cast<const float4 *>(p));
        xh[u] = __ldg(reinterpret_cast<const float4 *>(p + 4));
      }
    }
  };
  auto store_x = [&]() {
#pragma unroll
    for (int u = 0; u < IT; ++u) {
      const Item it = item(u);
      if (it.in)
        xs[it.m * XS + it.w * CHS + it.c] =
            make_uint4(half2_bits(__floats2half2_rn(xl[u].x, xh[u].x)),
                       half2_bits(__floats2half2_rn(xl[u].y, xh[u].y)),
                       half2_bits(__floats2half2_rn(xl[u].z, xh[u].z)),
                       half2_bits(__floats2half2_rn(xl[u].w, xh[u].w)));
    }
  };
  pdl_trigger();
#pragma unroll
  for (int d = 0; d < D; ++d)
    if (qa + d < qb)
      load(d, qa + d);
  pdl_wait();
  if (qa < qb)
    fetch_x(qa);

  float acc[TG][4] = {};
  for (int sq = qa; sq < qb; sq += SQ) {
    const int nq = qb - sq < SQ ? qb - sq : SQ;
    __syncthreads(); // the previous slice is consumed
    store_x();
    __syncthreads();
    if (sq + SQ < qb) // the next slice's loads run during this one's arithmetic
      fetch_x(sq + SQ);
#pragma unroll
    for (int j = 0; j < SQ; ++j) {
      if (j < nq) { // the same for the whole block
        const int d = j % D, qd = sq + j;
        const unsigned zb0 = 0x64006400u | (z0[d] * 0x10001u),
                       zb1 = 0x64006400u | (z1[d] * 0x10001u);
        const unsigned zc0 = 0xD400D400u | (z0[d] * 0x100010u),
                       zc1 = 0xD400D400u | (z1[d] * 0x100010u);
        const unsigned wa[4] = {w0[d].x, w0[d].y, w0[d].z, w0[d].w};
        const unsigned wb[4] = {w1[d].x, w1[d].y, w1[d].z, w1[d].w};
        const float sa = s0[d], sb = s1[d];
        if (qd + D < qb) // refill the slot now: its words are in wa, wb
          load(d, qd + D);
        // SCALE_A: the scale goes into the weights and the mma into acc; else into the
        // partial sums `part`, scaled into acc after the quad.
        float part[TG][4] = {};
        const __half2 ha = __float2half2_rn(sa), hb = __float2half2_rn(sb);
#pragma unroll
        for (int w = 0; w < 4; ++w) {
          unsigned a0[4], a1[4];
          w4_decode_word(wa[w], zb0, zc0, a0);
          w4_decode_word(wb[w], zb1, zc1, a1);
          if constexpr (SCALE_A) {
#pragma unroll
            for (int p = 0; p < 4; ++p) {
              a0[p] = half2_bits(__hmul2(*reinterpret_cast<const __half2 *>(&a0[p]), ha));
              a1[p] = half2_bits(__hmul2(*reinterpret_cast<const __half2 *>(&a1[p]), hb));
            }
          }
          const unsigned s0a[4] = {a0[0], a1[0], a0[1], a1[1]};
          const unsigned s1a[4] = {a0[2], a1[2], a0[3], a1[3]};
#pragma unroll
          for (int tg = 0; tg < TG; ++tg) {
            const uint4 b = xs[(8 * tg + g) * XS + w * CHS + j * 4 + t];
            float(&c)[4] = SCALE_A ? acc[tg] : part[tg];
            mma_16816(c, s0a, b.x, b.y);
            mma_16816(c, s1a, b.z, b.w);
          }
        }
        if constexpr (!SCALE_A) {
#pragma unroll
          for (int tg = 0; tg < TG; ++tg) {
            acc[tg][0] = fmaf(sa, part[tg][0], acc[tg][0]);
            acc[tg][1] = fmaf(sa, part[tg][1], acc[tg][1]);
            acc[tg][2] = fmaf(sb, part[tg][2], acc[tg][2]);
            acc[tg][3] = fmaf(sb, part[tg][3], acc[tg][3]);
          }
        }
      }
    }
  }

  const bool split = gridDim.y > 1;
#pragma unroll
  for (int tg = 0; tg < TG; ++tg)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int m = 8 * tg + 2 * t + e;
      if (m >= M)
        continue;
      float *yr = y + static_cast<int64_t>(m) * N;
      if (split) {
        if (ok0)
          atomicAdd(yr + row0, acc[tg][e]);
        if (ok1)
          atomicAdd(yr + row1, acc[tg][2 + e]);
      } else {
        if (ok0)
          yr[row0] = bias != nullptr ? acc[tg][e] + bias[row0] : acc[tg][e];
        if (ok1)
          yr[row1] = bias != nullptr ? acc[tg][2 + e] + bias[row1] : acc[tg][2 + e];
      }
    }
}

/// Launch configuration by token groups: 16 warps a block (more row tiles share each staged
/// slice of x), slices of 2 quads (1 at 64 tokens), as many in flight. The fastest of
/// <RT, SQ, D> = <8|16, 1|2|4|8, 1|2|4> on an H200 for Llama-2-7B's q/k/v, gate/up and down
/// shapes at 16, 32 and 64 tokens (bench/gemv_w4_graph.cu --batch, docs/cuda.md).
template <int TG> struct GemmW4TokDefault {
  using type =
      typename std::conditional<TG >= 8, GemmW4TokCfg<16, 1, 1>, GemmW4TokCfg<16, 2, 2>>::type;
};

/// y[M, N] for M <= 8 TG rows with configuration Cfg; the caller checks
/// gemm_w4_tok_applies<K, G>() and 16-byte alignment of qweight and x.
template <int K, int N, int G, int TG, class Cfg = typename GemmW4TokDefault<TG>::type,
          W4Layout L = W4Layout::Rows>
void launch_gemm_w4_tok(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                        const f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(gemm_w4_tok_applies<K, G>(), "gemm_w4_tok: K % 128 == 0, G % 128 == 0 or >= K");
  static_assert(gemm_w4_tok_smem<TG, Cfg::SQ>() <= 48 * 1024, "staged x within 48 KiB");
  constexpr int QD = K / 128, SLICES = (QD + Cfg::SQ - 1) / Cfg::SQ;
  const int64_t blocks = ceil_div(ceil_div(N, 16), Cfg::RT);
  // Split K (whole slices) when the row tiles alone give fewer than two blocks per SM.
  const int64_t want = 2 * static_cast<int64_t>(mma_sm_count());
  int splits = 1;
  if (blocks < want) {
    const int64_t by_grid = ceil_div(want, blocks);
    splits = static_cast<int>(by_grid < SLICES ? by_grid : SLICES);
  }
  const int per = static_cast<int>(ceil_div(SLICES, splits)) * Cfg::SQ; // quads a split
  splits = static_cast<int>(ceil_div(QD, per));                         // none empty
  if (splits > 1)
    launch_kernel(mma_init_kernel<N>, grid_for(M * N, 256, 1024), 256, 0, s, M, bias, y);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(splits));
  launch_kernel(gemm_w4_tok_kernel<K, N, G, TG, Cfg, L>, grid, Cfg::RT * kWarpSize, 0, s,
                static_cast<int>(M), x, qweight, scales, zeros, bias, y, per);
}

/// The token-group int4 GEMM for kGemvMaxM < M <= kGemmW4TokMaxM (any 1 <= M <= 64 works).
template <int K, int N, int G, W4Layout L = W4Layout::Rows>
void gemm_w4_tok(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                 const f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  if (M <= 16)
    launch_gemm_w4_tok<K, N, G, 2, typename GemmW4TokDefault<2>::type, L>(s, M, x, qweight, scales,
                                                                          zeros, bias, y);
  else if (M <= 32)
    launch_gemm_w4_tok<K, N, G, 4, typename GemmW4TokDefault<4>::type, L>(s, M, x, qweight, scales,
                                                                          zeros, bias, y);
  else
    launch_gemm_w4_tok<K, N, G, 8, typename GemmW4TokDefault<8>::type, L>(s, M, x, qweight, scales,
                                                                          zeros, bias, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_GEMM_W4_CUH
