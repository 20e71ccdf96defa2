// qlc_cuda_mma.cuh - the tensor-core GEMM of the projections: y[M, N] = x[M, K] * W^T (+ bias)
// for M > kGemvMaxM, with W in any half-or-narrower format (f16, bf16, int4/int8, NF4).
//
// mma.sync.m16n8k16 with f16 operands and f32 accumulation (sm_80 and newer; no wgmma).
// A block computes a BM x BN tile of y over a range of K in steps of BK = 32, through two
// shared-memory stages of f16 (rows padded by 8 halves: ldmatrix is then free of bank
// conflicts); each warp owns a (BM / WARPS_M) x (BN / WARPS_N) sub-tile.
//   x (f32 in global memory) is loaded into registers one step ahead (float4 when K % 4 == 0
//     and x is 16-byte aligned, else element by element), rounded to f16 (round to nearest)
//     and stored to shared memory after the current step's mma: activations are f16 here.
//   W: f16 rows that are 16-byte aligned (K % 8 == 0, aligned pointer) are copied by
//     cp.async (16 bytes, zero-filled past N and K) into the next stage while the current
//     one is consumed. Every other format goes through its weight source in chunks of 8
//     consecutive elements of a row: Src::fetch() issues the global loads one step ahead
//     (raw bits in registers), Src::expand() turns them into 8 f16 after the mma (dequant
//     in f32, then rounded to f16). bf16 is converted to f16: exact for |w| in
//     [2^-14, 65504] (bf16 has fewer mantissa bits); larger magnitudes become inf and
//     smaller ones lose bits (f16 subnormals) or flush to zero - fine for trained weights,
//     which sit far inside that range, but not for arbitrary bf16 data.
// Tiles: "small" (M <= 32: 32 x 128, 4 warps) and "large" (128 x 128, 8 warps). When the
// grid has fewer blocks than twice the SMs, K is split over gridDim.z blocks that add their
// partial sums into y with atomics after y was set to the bias (or 0) by a first kernel;
// the sum order then varies from run to run (last-bit differences in f32).
//
// A weight source Src provides, for the generic path (see DenseSrc, IntSrc, Nf4Src):
//   Chunk                              registers holding 8 elements in flight;
//   fetch(n, k, Chunk &)               loads for elements [k, k + 8) of row n (n < N, k < K,
//                                      k % 8 == 0); elements past K must come out as 0;
//   expand(const Chunk &) -> uint4     the 8 elements as f16, element j in half j.
#ifndef QLC_CUDA_MMA_CUH
#define QLC_CUDA_MMA_CUH

#include "qlc_cuda_common.cuh"

namespace qlc {
namespace cuda {

constexpr int kMmaBK = 32;
constexpr int kMmaPad = 8; // halves of padding per shared-memory row
constexpr int kMmaSmallM = 32;

/// The 8 halves of a chunk packed as a uint4 (element j in half j).
__device__ __forceinline__ uint4 pack_halves(const float (&v)[8]) {
  uint4 r;
  unsigned *u = reinterpret_cast<unsigned *>(&r);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __half2 h = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    u[i] = *reinterpret_cast<const unsigned *>(&h);
  }
  return r;
}

__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma_16816(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                          unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Tile configuration: BM x BN per block, WARPS_M x WARPS_N warps; the launcher splits K
/// over at most MAX_SPLITS blocks (1: never). Tile: the kernel's part (split-K is the
/// launcher's), so configs that differ only in MAX_SPLITS share one kernel.
template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int MAX_SPLITS_ = 16> struct MmaCfg {
  static constexpr int BM = BM_, BN = BN_, BK = kMmaBK, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
  static constexpr int MAX_SPLITS = MAX_SPLITS_;
  using Tile = MmaCfg<BM_, BN_, WARPS_M_, WARPS_N_>;
  static_assert(MAX_SPLITS >= 1 && MAX_SPLITS <= 16, "split-K of 1 to 16");
  static constexpr int THREADS = WARPS_M * WARPS_N * kWarpSize;
  static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N; // warp tile
  static constexpr int MI = WTM / 16, NI = WTN / 8;            // mma tiles per warp
  static constexpr int LDS = BK + kMmaPad;                     // halves per smem row
  static constexpr int XCH = BM * BK / 4 / THREADS;            // 4-float x chunks per thread
  static constexpr int WCH = BN * BK / 8 / THREADS;            // 8-half W chunks per thread
  static constexpr int MIN_BLOCKS = THREADS <= 128 ? 3 : 1; // no spills: up to 170 / 255 regs
  static_assert(MI >= 1 && NI % 2 == 0 && WTM % 16 == 0, "warp tile of 16 x 16k");
  static_assert(XCH * 4 * THREADS == BM * BK && WCH * 8 * THREADS == BN * BK, "whole chunks");
};
using MmaSmall = MmaCfg<32, 128, 1, 4>;
using MmaLarge = MmaCfg<128, 128, 2, 4>;

/// XV: 4 when x rows can be read as float4 (K % 4 == 0, x 16-byte aligned), else 1.
/// ASYNC: W is f16, 16-byte aligned with K % 8 == 0, read from src.w by cp.async.
template <class Cfg, class Src, int K, int N, int XV, bool ASYNC>
__global__ void __launch_bounds__(Cfg::THREADS, Cfg::MIN_BLOCKS)
    mma_gemm_kernel(int64_t M, const float *__restrict__ x, Src src,
                    const float *__restrict__ bias, float *__restrict__ y, int ktiles_per_split) {
  pdl_enter();
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, LDS = Cfg::LDS;
  constexpr int MI = Cfg::MI, NI = Cfg::NI, XCH = Cfg::XCH, WCH = Cfg::WCH;
  constexpr int NT = Cfg::THREADS;
  constexpr int KT = static_cast<int>(ceil_div(K, BK));
  __shared__ __align__(16) f16 as[2][BM * LDS];
  __shared__ __align__(16) f16 bs[2][BN * LDS];

  src.prepare();
  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int wm = warp / Cfg::WARPS_N, wn = warp % Cfg::WARPS_N;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int kt0 = blockIdx.z * ktiles_per_split;
  const int kt1 = kt0 + ktiles_per_split < KT ? kt0 + ktiles_per_split : KT;

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c)
        acc[i][j][c] = 0.0f;

  float4 xr[XCH];
  typename Src::Chunk wr[ASYNC ? 1 : WCH];

  auto load_x = [&](int kt) {
#pragma unroll
    for (int i = 0; i < XCH; ++i) {
      const int c = tid + i * NT, r = c / (BK / 4), k = kt * BK + (c % (BK / 4)) * 4;
      const int64_t m = m0 + r;
      float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (m < M) {
        const float *p = x + m * K + k;
        if constexpr (XV == 4) {
          if (k < K) {
            const float4 f = __ldg(reinterpret_cast<const float4 *>(p));
            v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
          }
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (k + j < K)
              v[j] = __ldg(p + j);
        }
      }
      xr[i] = make_float4(v[0], v[1], v[2], v[3]);
    }
  };
  auto store_x = [&](int buf) {
#pragma unroll
    for (int i = 0; i < XCH; ++i) {
      const int c = tid + i * NT, r = c / (BK / 4), kc = (c % (BK / 4)) * 4;
      const __half2 lo = __floats2half2_rn(xr[i].x, xr[i].y);
      const __half2 hi = __floats2half2_rn(xr[i].z, xr[i].w);
      uint2 u;
      u.x = *reinterpret_cast<const unsigned *>(&lo);
      u.y = *reinterpret_cast<const unsigned *>(&hi);
      *reinterpret_cast<uint2 *>(&as[buf][r * LDS + kc]) = u;
    }
  };
  // W: fetch (registers) or cp.async (straight to the stage).
  auto load_w = [&](int kt, int buf) {
#pragma unroll
    for (int i = 0; i < WCH; ++i) {
      const int c = tid + i * NT, r = c / (BK / 8), kc = (c % (BK / 8)) * 8, k = kt * BK + kc;
      const int64_t n = n0 + r;
      if constexpr (ASYNC) {
        const bool in = n < N && k < K;
        const f16 *p = in ? src.w + n * K + k : src.w;
        cp_async16(&bs[buf][r * LDS + kc], p, in ? 16 : 0);
      } else {
        if (n < N && k < K)
          src.fetch(n, k, wr[i]);
        else
          wr[i] = typename Src::Chunk{};
      }
    }
    if constexpr (ASYNC)
      cp_async_commit();
  };
  auto store_w = [&](int buf) {
    if constexpr (!ASYNC) {
#pragma unroll
      for (int i = 0; i < WCH; ++i) {
        const int c = tid + i * NT, r = c / (BK / 8), kc = (c % (BK / 8)) * 8;
        *reinterpret_cast<uint4 *>(&bs[buf][r * LDS + kc]) = src.expand(wr[i]);
      }
    }
  };

  __syncthreads(); // prepare() is done
  if (kt0 < kt1) {
    load_x(kt0);
    load_w(kt0, 0);
    store_x(0);
    store_w(0);
    if constexpr (ASYNC)
      cp_async_wait_all();
    __syncthreads();
  }
  int buf = 0;
  for (int kt = kt0; kt < kt1; ++kt) {
    const bool next = kt + 1 < kt1;
    if (next) {
      load_x(kt + 1);
      load_w(kt + 1, buf ^ 1);
    }
    const f16 *A = as[buf], *B = bs[buf];
#pragma unroll
    for (int ks = 0; ks < BK; ks += 16) {
      unsigned a[MI][4], b[NI][2];
#pragma unroll
      for (int i = 0; i < MI; ++i)
        ldsm_x4(a[i], A + (wm * Cfg::WTM + i * 16 + lane % 16) * LDS + ks + (lane / 16) * 8);
#pragma unroll
      for (int j = 0; j < NI; j += 2) {
        unsigned r[4];
        ldsm_x4(r, B + (wn * Cfg::WTN + j * 8 + (lane / 16) * 8 + lane % 8) * LDS + ks +
                       ((lane / 8) % 2) * 8);
        b[j][0] = r[0], b[j][1] = r[1], b[j + 1][0] = r[2], b[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
          mma_16816(acc[i][j], a[i], b[j][0], b[j][1]);
    }
    if (next) {
      store_x(buf ^ 1);
      store_w(buf ^ 1);
    }
    if constexpr (ASYNC)
      cp_async_wait_all();
    __syncthreads();
    buf ^= 1;
  }

  const bool split = gridDim.z > 1;
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + wm * Cfg::WTM + i * 16 + lane / 4 + h * 8;
      if (m >= M)
        continue;
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t n = n0 + wn * Cfg::WTN + j * 8 + (lane % 4) * 2 + e;
          if (n >= N)
            continue;
          const float v = acc[i][j][h * 2 + e];
          if (split)
            atomicAdd(y + m * N + n, v);
          else
            y[m * N + n] = bias != nullptr ? v + bias[n] : v;
        }
    }
}

/// y[m, n] = bias[n] (or 0): the start of a split-K sum.
template <int N>
__global__ void mma_init_kernel(int64_t M, const float *__restrict__ bias, float *__restrict__ y) {
  pdl_enter();
  const int64_t total = M * N;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = bias != nullptr ? bias[i % N] : 0.0f;
}

/// The SM count of the current device, asked once per process.
inline int mma_sm_count() {
  static int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0)
      n = 108;
    return n;
  }();
  return sms;
}

template <class Cfg, int K, int N, bool ASYNC, class Src>
void launch_mma_cfg(cudaStream_t s, int64_t M, const float *x, const Src &src, const float *bias,
                    float *y) {
  constexpr int KT = static_cast<int>(ceil_div(K, kMmaBK));
  const int64_t blocks = ceil_div(N, Cfg::BN) * ceil_div(M, Cfg::BM);
  // Split K when the tiles alone leave SMs idle: about two blocks per SM, at least four
  // K steps per split.
  const int64_t want = 2 * static_cast<int64_t>(mma_sm_count());
  int splits = 1;
  if (blocks < want) {
    const int64_t by_grid = ceil_div(want, blocks);
    const int by_k = KT / 4 > 1 ? KT / 4 : 1;
    splits = static_cast<int>(by_grid < by_k ? by_grid : by_k);
    if (splits > Cfg::MAX_SPLITS)
      splits = Cfg::MAX_SPLITS;
  }
  const int per = static_cast<int>(ceil_div(KT, splits));
  splits = static_cast<int>(ceil_div(KT, per)); // no empty split
  if (splits > 1)
    launch_kernel(mma_init_kernel<N>, grid_for(M * N, 256, 1024), 256, 0, s, M, bias, y);
  const dim3 grid(static_cast<unsigned>(ceil_div(N, Cfg::BN)),
                  static_cast<unsigned>(ceil_div(M, Cfg::BM)), static_cast<unsigned>(splits));
  if (K % 4 == 0 && is_aligned(x, 16))
    launch_kernel(mma_gemm_kernel<typename Cfg::Tile, Src, K, N, 4, ASYNC>, grid, Cfg::THREADS, 0,
                  s, M, x, src, bias, y, per);
  else
    launch_kernel(mma_gemm_kernel<typename Cfg::Tile, Src, K, N, 1, ASYNC>, grid, Cfg::THREADS, 0,
                  s, M, x, src, bias, y, per);
}

/// The tensor-core GEMM for M > kGemvMaxM rows. ASYNC: see mma_gemm_kernel. T: a
/// Tiling (qlc_cuda_linear.cuh) whose Small and Large tiles serve M <= kMmaSmallM and
/// above.
template <int K, int N, bool ASYNC, class T, class Src>
void launch_mma(cudaStream_t s, int64_t M, const float *x, const Src &src, const float *bias,
                float *y) {
  if (M <= kMmaSmallM)
    launch_mma_cfg<typename T::Small, K, N, ASYNC>(s, M, x, src, bias, y);
  else
    launch_mma_cfg<typename T::Large, K, N, ASYNC>(s, M, x, src, bias, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_MMA_CUH
