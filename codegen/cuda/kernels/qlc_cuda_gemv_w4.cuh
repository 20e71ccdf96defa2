// qlc_cuda_gemv_w4.cuh - decode projections (M <= 8 token rows) by 4-bit int weights, on the
// tensor cores: y[M, N] = x[M, K] * dequant(W)^T (+ bias), W in the int format of
// qlc_cuda_qlinear.cuh (rows of K/2 bytes, low nibble first; an f16 scale and a uint8 zero per
// row and group of G columns).
//
// Why: the generic GEMV (qlc_cuda_linear.cuh) spends ~8 instructions per 4-bit weight
// (Nsight Compute on an H200: staging x per block, a scale and zero load per 16 codes,
// f32 conversion and FMA per code) and streams 0.7-1.0 TB/s. Here a weight costs about 1.4:
//   * 8 codes of a 32-bit word become four f16 pairs (q_j, q_j+4) with one shift and one
//     LOP3 each ((w >> 4j) & 0x000F000F | 0x64006400 is the half pair 1024 + q), then
//     q - zero exactly with one HSUB2 (the pair minus 1024 + zero);
//   * mma.sync m16n8k16 multiplies them with x (rounded to f16, as in the tensor-core GEMM)
//     and accumulates in f32: 16 weight rows (the A operand) times up to 8 tokens (B);
//   * the group's scale is applied once per 128 codes, to the f32 partial sums.
// The order of k inside an mma step is free as long as A and B agree: lane (g, t) of a warp
// owns weight rows g and g + 8 of the block's 16 and the 16-byte chunk c = 4 * quad + t of
// each (32 codes); its word w gives the A pairs j = 0..3 (codes 8w + j and 8w + j + 4), two
// per step, and it loads x[token g] at the same 8 positions for B. A quad (4 chunks, 128
// codes) therefore lies in one group when G % 128 == 0 (or G >= K: one group per row).
//
// A block of KW warps takes 16 rows; its warps split the quads of K (quad q to warp q % KW)
// and add their partial sums through shared memory at the end. Each lane loads UNQ quads
// (2 x 16 bytes each) before decoding the first, to keep enough bytes in flight.
// Used by qlinear_int for BITS == 4, M <= kGemvMaxM, K % 32 == 0, G % 128 == 0 or G >= K,
// 16-byte aligned weights and x; other cases take the generic GEMV.
#ifndef QLC_CUDA_GEMV_W4_CUH
#define QLC_CUDA_GEMV_W4_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_cuda_mma.cuh"

namespace qlc {
namespace cuda {

/// Whether the tensor-core int4 GEMV takes these shapes.
template <int K, int G> constexpr bool gemv_w4_applies() {
  return K % 32 == 0 && K > 0 && (G % 128 == 0 || G >= K);
}

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

template <int K, int N, int G, class Cfg>
__global__ void __launch_bounds__(Cfg::KW * kWarpSize)
    gemv_w4_kernel(int M, const float *__restrict__ x, const uint8_t *__restrict__ q,
                   const f16 *__restrict__ scales, const uint8_t *__restrict__ zeros,
                   const float *__restrict__ bias, float *__restrict__ y) {
  constexpr int KW = Cfg::KW, UNQ = Cfg::UNQ;
  constexpr int CH = K / 32;            // 16-byte chunks per row
  constexpr int QD = (CH + 3) / 4;      // quads of chunks
  constexpr int64_t ROW_BYTES = K / 2;
  constexpr int64_t GROUPS = (K + G - 1) / G;
  __shared__ float red[KW][16][9];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int g = lane >> 2, t = lane & 3;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16 + g, row1 = row0 + 8;
  const bool ok0 = row0 < N, ok1 = row1 < N;
  const bool tok = g < M;
  const float *xr = x + static_cast<int64_t>(tok ? g : 0) * K;
  const uint8_t *q0 = q + (ok0 ? row0 : 0) * ROW_BYTES, *q1 = q + (ok1 ? row1 : 0) * ROW_BYTES;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  pdl_trigger();
  // The first quads' weights are requested before waiting for the previous kernel (x is
  // its output): their latency overlaps that kernel's tail.
  bool waited = false;
  for (int qb = warp; qb < QD; qb += KW * UNQ) {
    uint4 w0[UNQ], w1[UNQ];
#pragma unroll
    for (int u = 0; u < UNQ; ++u) {
      const int qd = qb + u * KW, c = qd * 4 + t;
      const bool in = qd < QD && c < CH;
      w0[u] = in && ok0 ? __ldg(reinterpret_cast<const uint4 *>(q0 + c * 16)) : make_uint4(0, 0, 0, 0);
      w1[u] = in && ok1 ? __ldg(reinterpret_cast<const uint4 *>(q1 + c * 16)) : make_uint4(0, 0, 0, 0);
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
      const int64_t gi = (G >= K ? 0 : static_cast<int64_t>(qd) * 128 / G);
      const float s0 = ok0 ? __half2float(scales[row0 * GROUPS + gi]) : 0.0f;
      const float s1 = ok1 ? __half2float(scales[row1 * GROUPS + gi]) : 0.0f;
      const float z0 = zeros != nullptr && ok0 ? static_cast<float>(zeros[row0 * GROUPS + gi]) : 8.0f;
      const float z1 = zeros != nullptr && ok1 ? static_cast<float>(zeros[row1 * GROUPS + gi]) : 8.0f;
      const __half2 bias0 = __float2half2_rn(1024.0f + z0), bias1 = __float2half2_rn(1024.0f + z1);
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
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const unsigned p0 = ((wa[w] >> (4 * j)) & 0x000F000Fu) | 0x64006400u;
          const unsigned p1 = ((wb[w] >> (4 * j)) & 0x000F000Fu) | 0x64006400u;
          a0[j] = half2_bits(__hsub2(*reinterpret_cast<const __half2 *>(&p0), bias0));
          a1[j] = half2_bits(__hsub2(*reinterpret_cast<const __half2 *>(&p1), bias1));
        }
        const unsigned s0a[4] = {a0[0], a1[0], a0[1], a1[1]};
        const unsigned s1a[4] = {a0[2], a1[2], a0[3], a1[3]};
        mma_16816(part, s0a, b[0], b[1]);
        mma_16816(part, s1a, b[2], b[3]);
      }
      acc[0] = fmaf(s0, part[0], acc[0]);
      acc[1] = fmaf(s0, part[1], acc[1]);
      acc[2] = fmaf(s1, part[2], acc[2]);
      acc[3] = fmaf(s1, part[3], acc[3]);
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

/// y[M, N] for 1 <= M <= 8; the caller checks gemv_w4_applies<K, G>() and 16-byte alignment
/// of qweight and x.
template <int K, int N, int G, class Cfg = GemvW4Default>
void launch_gemv_w4(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                    const f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(gemv_w4_applies<K, G>(), "gemv_w4: K % 32 == 0 and G % 128 == 0 or G >= K");
  const unsigned blocks = static_cast<unsigned>(ceil_div(N, 16));
  launch_kernel(gemv_w4_kernel<K, N, G, Cfg>, blocks, Cfg::KW * kWarpSize, 0, s,
                static_cast<int>(M), x, qweight, scales, zeros, bias, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_GEMV_W4_CUH
