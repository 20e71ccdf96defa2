// qlc_cuda_linear.cuh - projections y[M, N] = x[M, K] * W^T (+ bias), W row-major [N, K].
//
// Two kernels, generic over a weight source (how W is stored: f32/f16/bf16 here, the
// quantized formats in qlc_cuda_qlinear.cuh), both accumulating in f32:
//   gemv_kernel  few token rows (decode): W is read once. A warp takes NR weight rows; its
//                lanes stride over the rows in units of E elements read with one wide load
//                (16 bytes for f16/bf16/f32 when the row stride allows), the units are
//                widened/dequantized in registers, and every token's x, staged in shared
//                memory in chunks of K, is applied to the NR rows. Warp sums at the end.
//   gemm_kernel  many token rows, f32 weights: a 64x64 output tile per block of 256
//                threads, 4x4 per thread, x and W tiles through shared memory (f32 exact).
// Many token rows with f16/bf16 (and quantized) weights take the tensor-core GEMM of
// qlc_cuda_mma.cuh instead, which rounds the activations to f16, or from kBlasMinM rows
// in an artifact's step cuBLAS on f16 weights (qlc_cuda_blas.cuh).
//
// A weight source Src provides:
//   E, NR                        elements per unit, weight rows per warp in the GEMV;
//   UNROLL                       units per lane loaded before the first is decoded;
//   prepare()                    per-block setup (shared tables), followed by a barrier;
//   Raw load(n, u)               the bytes of unit u of row n (one load);
//   decode(raw, n, u, float (&w)[E])  its elements [u*E, u*E+E) (past K: finite values);
//   at(n, k)                     element k of row n, for the GEMM;
//   Chunk, fetch(), expand()     8 elements at a time as f16, for the tensor-core GEMM
//                                (qlc_cuda_mma.cuh).
#ifndef QLC_CUDA_LINEAR_CUH
#define QLC_CUDA_LINEAR_CUH

#include "qlc_cuda_blas.cuh"
#include "qlc_cuda_common.cuh"
#include "qlc_cuda_mma.cuh"

#include <type_traits>

namespace qlc {
namespace cuda {

/// Up to this many token rows the GEMV is used, the tiled GEMM from the next row on.
constexpr int kGemvMaxM = 8;
/// Floats of shared memory for the staged x chunk (MT token rows of KC columns).
constexpr int kGemvSmemFloats = 8192;

constexpr int kGemmBM = 64, kGemmBN = 64, kGemmBK = 16, kGemmThreads = 256;

/// Columns of x staged per chunk for MT token rows: all of K (rounded up to whole units)
/// when it fits, else the most whole units that do.
template <int K, int E, int MT> __host__ __device__ constexpr int gemv_chunk() {
  constexpr int kpad = static_cast<int>(round_up(K, E));
  constexpr int fit = (kGemvSmemFloats / MT) / E * E;
  return kpad < fit ? kpad : (fit > E ? fit : E);
}

/// The GEMV's shape: WARPS warps a block, ROWS weight rows a warp, UNROLL units a lane
/// loads before decoding the first (ROWS, UNROLL 0: the weight source's defaults).
template <int WARPS_ = 4, int ROWS_ = 0, int UNROLL_ = 0> struct GemvCfg {
  static constexpr int WARPS = WARPS_, ROWS = ROWS_, UNROLL = UNROLL_;
  static constexpr int THREADS = WARPS * kWarpSize;
  static_assert(WARPS >= 1 && WARPS <= 8 && ROWS >= 0 && ROWS <= 4 && UNROLL >= 0 &&
                    UNROLL <= 8, "GEMV shape out of range");
  template <class Src> __host__ __device__ static constexpr int rows() {
    return ROWS ? ROWS : Src::NR;
  }
  template <class Src> __host__ __device__ static constexpr int unroll() {
    return UNROLL ? UNROLL : Src::UNROLL;
  }
};

/// The projections' tiling per M-range, chosen by qlc-select-tiling (passes/Tiling.cpp
/// lists the legal values): the GEMV for M <= kGemvMaxM, the tensor-core GEMM's tiles for
/// M <= kMmaSmallM and above (each with its cap on split-K).
template <class GEMV = GemvCfg<>, class SMALL = MmaSmall, class LARGE = MmaLarge> struct Tiling {
  using Gemv = GEMV;
  using Small = SMALL;
  using Large = LARGE;
};
using DefaultTiling = Tiling<>;

template <class Src, int K, int N, int MT, class Cfg = GemvCfg<>>
__global__ void __launch_bounds__(Cfg::THREADS, 16 / Cfg::WARPS)
    gemv_kernel(int M, const float *__restrict__ x, Src src, const float *__restrict__ bias,
                float *__restrict__ y) {
  pdl_enter();
  constexpr int E = Src::E, NR = Cfg::template rows<Src>(), UN = Cfg::template unroll<Src>();
  constexpr int kGemvWarps = Cfg::WARPS, kGemvThreads = Cfg::THREADS;
  constexpr int KPAD = static_cast<int>(round_up(K, E));
  constexpr int KC = gemv_chunk<K, E, MT>();
  __shared__ __align__(16) float xs[MT * KC];
  src.prepare();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp) * NR;
  float acc[MT][NR];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < NR; ++r)
      acc[m][r] = 0.0f;
  for (int k0 = 0; k0 < KPAD; k0 += KC) {
    __syncthreads(); // prepare() is done, and the previous chunk is consumed
    for (int i = threadIdx.x; i < MT * KC; i += kGemvThreads) {
      const int m = i / KC, k = k0 + i % KC;
      xs[i] = (m < M && k < K) ? x[static_cast<int64_t>(m) * K + k] : 0.0f;
    }
    __syncthreads();
    const int units = (KPAD - k0 < KC ? KPAD - k0 : KC) / E;
    // UN units of NR rows per lane are loaded before any is used, so that enough bytes
    // are in flight to cover the memory latency; then each is decoded and applied.
    for (int ub = lane; ub < units; ub += kWarpSize * UN) {
      typename Src::Raw raw[UN][NR];
#pragma unroll
      for (int i = 0; i < UN; ++i)
#pragma unroll
        for (int r = 0; r < NR; ++r)
          if (ub + kWarpSize * i < units && n0 + r < N)
            raw[i][r] = src.load(n0 + r, k0 / E + ub + kWarpSize * i);
#pragma unroll
      for (int i = 0; i < UN; ++i) {
        const int uu = ub + kWarpSize * i;
        if (uu < units) {
          float w[NR][E], sc[NR];
#pragma unroll
          for (int r = 0; r < NR; ++r) {
            sc[r] = 0.0f;
            if (n0 + r >= N) {
#pragma unroll
              for (int e = 0; e < E; ++e)
                w[r][e] = 0.0f;
            } else if constexpr (Src::kUnitScale) {
              src.decode_unscaled(raw[i][r], n0 + r, k0 / E + uu, w[r], sc[r]);
            } else {
              src.decode(raw[i][r], n0 + r, k0 / E + uu, w[r]);
            }
          }
#pragma unroll
          for (int m = 0; m < MT; ++m) {
            float xv[E];
            load_smem<E>(xs + m * KC + uu * E, xv);
#pragma unroll
            for (int r = 0; r < NR; ++r) {
              if constexpr (Src::kUnitScale) {
                float d = 0.0f;
#pragma unroll
                for (int e = 0; e < E; ++e)
                  d = fmaf(xv[e], w[r][e], d);
                acc[m][r] = fmaf(sc[r], d, acc[m][r]);
              } else {
#pragma unroll
                for (int e = 0; e < E; ++e)
                  acc[m][r] = fmaf(xv[e], w[r][e], acc[m][r]);
              }
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      const float v = warp_sum(acc[m][r]);
      if (lane == 0 && m < M && n0 + r < N)
        y[static_cast<int64_t>(m) * N + n0 + r] = bias != nullptr ? v + bias[n0 + r] : v;
    }
}

/// The GEMV for M <= kGemvMaxM token rows, on a kernel sized for the next power of two.
template <int K, int N, class Cfg = GemvCfg<>, class Src>
void launch_gemv(cudaStream_t s, int64_t M, const float *x, const Src &src, const float *bias,
                 float *y) {
  const unsigned blocks =
      static_cast<unsigned>(ceil_div(N, Cfg::WARPS * Cfg::template rows<Src>()));
  const int m = static_cast<int>(M);
  constexpr int T = Cfg::THREADS;
  if (M == 1)
    launch_kernel(gemv_kernel<Src, K, N, 1, Cfg>, blocks, T, 0, s, m, x, src, bias, y);
  else if (M == 2)
    launch_kernel(gemv_kernel<Src, K, N, 2, Cfg>, blocks, T, 0, s, m, x, src, bias, y);
  else if (M <= 4)
    launch_kernel(gemv_kernel<Src, K, N, 4, Cfg>, blocks, T, 0, s, m, x, src, bias, y);
  else
    launch_kernel(gemv_kernel<Src, K, N, 8, Cfg>, blocks, T, 0, s, m, x, src, bias, y);
}

template <class Src, int K, int N>
__global__ void __launch_bounds__(kGemmThreads, 2)
    gemm_kernel(int64_t M, const float *__restrict__ x, Src src, const float *__restrict__ bias,
                float *__restrict__ y) {
  pdl_enter();
  constexpr int BM = kGemmBM, BN = kGemmBN, BK = kGemmBK;
  constexpr int TM = BM / 16, TN = BN / 16;
  static_assert(BM * BK == 4 * kGemmThreads && BN * BK == 4 * kGemmThreads, "4 loads each");
  __shared__ float xs[BK][BM + 4];
  __shared__ float ws[BK][BN + 4];
  src.prepare();
  __syncthreads();
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int idx = tid + kGemmThreads * i, r = idx / BK, c = idx % BK, k = k0 + c;
      const int64_t m = m0 + r, n = n0 + r;
      xs[c][r] = (m < M && k < K) ? x[m * K + k] : 0.0f;
      ws[c][r] = (n < N && k < K) ? src.at(n, k) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i)
        a[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < TN; ++j)
        b[j] = ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t m = m0 + ty + 16 * i;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t n = n0 + tx + 16 * j;
      if (m < M && n < N)
        y[m * N + n] = bias != nullptr ? acc[i][j] + bias[n] : acc[i][j];
    }
  }
}

template <int K, int N, class Src>
void launch_gemm(cudaStream_t s, int64_t M, const float *x, const Src &src, const float *bias,
                 float *y) {
  const dim3 grid(static_cast<unsigned>(ceil_div(N, kGemmBN)),
                  static_cast<unsigned>(ceil_div(M, kGemmBM)));
  launch_kernel(gemm_kernel<Src, K, N>, grid, kGemmThreads, 0, s, M, x, src, bias, y);
}

/// W stored as float, f16 or bf16; units of VE elements (one load of VE * sizeof(WT) bytes).
template <int K, class WT, int VE> struct DenseSrc {
  static constexpr int E = VE;
  static constexpr int NR = 2;
  static constexpr int UNROLL = 4;
  static constexpr bool kUnitScale = false;
  using Raw = typename RawOf<VE * static_cast<int>(sizeof(WT))>::type;
  const WT *w;
  __device__ __forceinline__ void prepare() {}
  __device__ __forceinline__ Raw load(int64_t n, int u) const {
    return __ldg(reinterpret_cast<const Raw *>(w + n * K + static_cast<int64_t>(u) * E));
  }
  __device__ __forceinline__ void decode(const Raw &r, int64_t, int, float (&o)[E]) const {
    widen_raw<E, WT>(r, o);
  }
  __device__ __forceinline__ float at(int64_t n, int k) const { return to_f32(w[n * K + k]); }

  struct Chunk {
    uint4 v; // E == 8: the raw 16 bytes (f16 or bf16); else 8 f16
  };
  __device__ __forceinline__ void fetch(int64_t n, int k, Chunk &c) const {
    if constexpr (E == 8 && sizeof(WT) == 2) {
      c.v = __ldg(reinterpret_cast<const uint4 *>(w + n * K + k));
    } else {
      float f[8];
#pragma unroll
      for (int j = 0; j < 8; ++j)
        f[j] = k + j < K ? to_f32(w[n * K + k + j]) : 0.0f;
      c.v = pack_halves(f);
    }
  }
  __device__ __forceinline__ uint4 expand(const Chunk &c) const {
    if constexpr (E == 8 && sizeof(WT) == 2 && !std::is_same<WT, f16>::value) { // bf16
      uint4 r;
      const unsigned *in = reinterpret_cast<const unsigned *>(&c.v);
      unsigned *out = reinterpret_cast<unsigned *>(&r);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const __half2 h = __floats2half2_rn(__uint_as_float(in[i] << 16),
                                            __uint_as_float(in[i] & 0xffff0000u));
        out[i] = *reinterpret_cast<const unsigned *>(&h);
      }
      return r;
    } else {
      return c.v;
    }
  }
};

/// y[M, N] = x[M, K] * w[N, K]^T + bias[N] (bias may be null). T: the tiling
/// (qlc_cuda_mma.cuh); the f32 SIMT GEMM has one shape.
template <int K, int N, class WT, class T = DefaultTiling>
void linear(cudaStream_t s, int64_t M, const float *x, const WT *w, const float *bias,
            float *y) {
  if (M <= 0)
    return;
  constexpr int VE = vec_elems<WT, K>();
  using G = typename T::Gemv;
  if (M <= kGemvMaxM) {
    if (is_aligned(w, VE * static_cast<int>(sizeof(WT))))
      launch_gemv<K, N, G>(s, M, x, DenseSrc<K, WT, VE>{w}, bias, y);
    else
      launch_gemv<K, N, G>(s, M, x, DenseSrc<K, WT, 1>{w}, bias, y);
    return;
  }
  if constexpr (std::is_same<WT, float>::value) {
    launch_gemm<K, N>(s, M, x, DenseSrc<K, WT, 1>{w}, bias, y); // f32: exact products
  } else {
    static_assert(sizeof(WT) == 2, "f16 or bf16");
    constexpr bool wide = K % 8 == 0;
    constexpr bool half = std::is_same<WT, f16>::value;
    if (wide && is_aligned(w, 16)) // f16: cuBLAS reads W as it is
      launch_large<K, N, half, T>(s, M, x, DenseSrc<K, WT, wide ? 8 : 1>{w},
                                  half ? reinterpret_cast<const f16 *>(w) : nullptr, bias, y);
    else
      launch_large<K, N, false, T>(s, M, x, DenseSrc<K, WT, 1>{w}, nullptr, bias, y);
  }
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_LINEAR_CUH
