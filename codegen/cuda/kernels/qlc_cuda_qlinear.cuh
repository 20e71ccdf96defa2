// qlc_cuda_qlinear.cuh - projections by weights kept quantized, dequantized in registers.
//
// The byte formats are those of the x86 kernels:
//   int (qlc_x86_qlinear.h)  W [N, K] as unsigned BITS-bit integers (4: two per byte, low
//        nibble first; each row padded to ROW_BYTES = ceil(K * BITS / 8)), an f16 scale
//        and a uint8 zero (null: 2^(BITS-1)) per row and group of G columns (the last
//        group may be shorter): w = (q - zero) * scale.
//   nf4 (qlc_x86_nf4.h)      bitsandbytes: W flattened, blocks of BLOCK elements that may
//        straddle rows, element e is code (byte e/2, high nibble first for even e) times
//        its block's absmax; DQ: absmax = dyn[code8[b]] * absmax2[b / 256] + offset,
//        the product rounded before the add, as bitsandbytes.
// Both run on the GEMV of qlc_cuda_linear.cuh and on the tensor-core GEMM of
// qlc_cuda_mma.cuh (dequantized to f16 as tiles are staged) through a weight source.
#ifndef QLC_CUDA_QLINEAR_CUH
#define QLC_CUDA_QLINEAR_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_cuda_gemm_w4.cuh"
#include "qlc_cuda_linear.cuh"
#include "qlc_nf4_tables.h"

#include <type_traits>

namespace qlc {
namespace cuda {

/// float(q) - z for 0 <= q < 2^23 and an integer z, without an int-to-float conversion.
__device__ __forceinline__ float int_minus(unsigned q, float z) {
  return __int_as_float(0x4B000000u | q) - (8388608.0f + z);
}

/// The int format with units of VE elements (VE * BITS / 8 bytes, one load).
template <int K, int BITS, int G, int VE> struct IntSrc {
  static constexpr int E = VE;
  static constexpr int NR = 2;
  static constexpr int UNROLL = 8;
  static constexpr int64_t GROUPS = (K + G - 1) / G;
  static constexpr int64_t ROW_BYTES = (static_cast<int64_t>(K) * BITS + 7) / 8;
  static constexpr int UB = VE * BITS / 8;
  static_assert(UB >= 1 && VE * BITS % 8 == 0, "units of whole bytes");
  const uint8_t *q;
  const f16 *scales;
  const uint8_t *zeros;

  __device__ __forceinline__ void prepare() {}
  __device__ __forceinline__ float zero(int64_t i) const {
    return zeros != nullptr ? static_cast<float>(zeros[i]) : static_cast<float>(1 << (BITS - 1));
  }
  __device__ __forceinline__ static unsigned code(const uint8_t (&b)[UB], int j) {
    if constexpr (BITS == 8)
      return b[j];
    else
      return (b[j / 2] >> (4 * (j % 2))) & 0xFu;
  }
  using Raw = typename RawOf<UB>::type;
  __device__ __forceinline__ Raw load(int64_t n, int u) const {
    return __ldg(reinterpret_cast<const Raw *>(q + n * ROW_BYTES + int64_t{u} * UB));
  }
  /// With the unit inside one group, the GEMV takes (q - zero) per element and applies
  /// the group's scale once per unit to the partial dot product (one multiply, not E).
  static constexpr bool kUnitScale = G % E == 0;
  __device__ __forceinline__ void decode_unscaled(const Raw &raw, int64_t n, int u,
                                                  float (&o)[E], float &scale) const {
    const int64_t gi = n * GROUPS + int64_t{u} * E / G;
    scale = __half2float(scales[gi]);
    const float z = zero(gi);
    if constexpr (BITS == 4 && UB % 4 == 0) {
      // Two codes at a time: nibbles j and j + 4 of a word become the halves 1024 + q,
      // minus 1024 + zero exactly in f16, then widened.
      unsigned words[UB / 4];
      memcpy(words, &raw, UB);
      const __half2 bias = __float2half2_rn(1024.0f + z);
#pragma unroll
      for (int wi = 0; wi < UB / 4; ++wi)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const unsigned t = ((words[wi] >> (4 * j)) & 0x000F000Fu) | 0x64006400u;
          __half2 h;
          memcpy(&h, &t, 4);
          const float2 f = __half22float2(__hsub2(h, bias));
          o[wi * 8 + j] = f.x;
          o[wi * 8 + j + 4] = f.y;
        }
    } else {
      uint8_t b[UB];
      memcpy(b, &raw, UB);
#pragma unroll
      for (int j = 0; j < E; ++j)
        o[j] = int_minus(code(b, j), z);
    }
  }
  __device__ __forceinline__ void decode(const Raw &raw, int64_t n, int u, float (&o)[E]) const {
    uint8_t b[UB];
    memcpy(b, &raw, UB);
    if constexpr (G % E == 0) { // the unit lies in one group
      const int64_t gi = n * GROUPS + int64_t{u} * E / G;
      const float s = __half2float(scales[gi]), z = zero(gi);
#pragma unroll
      for (int j = 0; j < E; ++j)
        o[j] = int_minus(code(b, j), z) * s;
    } else {
#pragma unroll
      for (int j = 0; j < E; ++j) {
        const int k = u * E + j;
        const int64_t gi = n * GROUPS + (k < K ? k : K - 1) / G; // past K: row padding
        o[j] = int_minus(code(b, j), zero(gi)) * __half2float(scales[gi]);
      }
    }
  }
  __device__ __forceinline__ float at(int64_t n, int k) const {
    const uint8_t *row = q + n * ROW_BYTES;
    const unsigned c = BITS == 8 ? row[k] : (row[k / 2] >> (4 * (k % 2))) & 0xFu;
    const int64_t gi = n * GROUPS + k / G;
    return int_minus(c, zero(gi)) * __half2float(scales[gi]);
  }

  /// For the tensor-core GEMM: with E == 8 (rows of 8k elements, aligned) and 8-element
  /// chunks inside one group, the raw bits and the group's scale and zero; else 8 f16.
  static constexpr bool kWideChunk = E == 8 && G % 8 == 0;
  struct WideChunk {
    typename RawOf<BITS>::type raw; // 8 codes: 4 bytes (int4) or 8 bytes (int8)
    float s, z;
  };
  struct HalfChunk {
    uint4 h;
  };
  using Chunk = typename std::conditional<kWideChunk, WideChunk, HalfChunk>::type;
  __device__ __forceinline__ void fetch(int64_t n, int k, Chunk &c) const {
    if constexpr (kWideChunk) {
      using Raw = typename RawOf<BITS>::type;
      c.raw = __ldg(reinterpret_cast<const Raw *>(q + n * ROW_BYTES + int64_t{k} * BITS / 8));
      const int64_t gi = n * GROUPS + k / G;
      c.s = __half2float(scales[gi]);
      c.z = zero(gi);
    } else {
      float f[8];
#pragma unroll
      for (int j = 0; j < 8; ++j)
        f[j] = k + j < K ? at(n, k + j) : 0.0f;
      c.h = pack_halves(f);
    }
  }
  __device__ __forceinline__ uint4 expand(const Chunk &c) const {
    if constexpr (kWideChunk) {
      float f[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        unsigned code;
        if constexpr (BITS == 8) {
          const unsigned word = j < 4 ? c.raw.x : c.raw.y;
          code = (word >> (8 * (j % 4))) & 0xFFu;
        } else {
          code = (c.raw >> (4 * j)) & 0xFu;
        }
        f[j] = int_minus(code, c.z) * c.s;
      }
      return pack_halves(f);
    } else {
      return c.h;
    }
  }
};

/// Unit bytes of the int GEMV: the widest load, up to 8 bytes (16 int4 or 8 int8 codes),
/// that divides ROW_BYTES.
template <int K, int BITS> constexpr int int_unit_bytes() {
  constexpr int64_t rb = (static_cast<int64_t>(K) * BITS + 7) / 8;
  int b = 8;
  while (b > 1 && rb % b != 0)
    b /= 2;
  return b;
}

/// y[M, N] = x[M, K] * dequant(W)^T + bias. zeros == nullptr: symmetric (2^(BITS-1)).
template <int K, int N, int BITS, int G, class T = DefaultTiling>
void qlinear_int(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                 const f16 *scales, const uint8_t *zeros, const float *bias, float *y) {
  static_assert(BITS == 4 || BITS == 8, "int format is 4 or 8 bits");
  static_assert(G % 2 == 0 || G == K || BITS == 8, "4-bit groups start on whole bytes");
  if (M <= 0)
    return;
  constexpr int UB = int_unit_bytes<K, BITS>();
  constexpr int VE = UB * 8 / BITS, VE1 = 8 / BITS;
  using Gv = typename T::Gemv;
  if (M <= kGemvMaxM) {
    if constexpr (BITS == 4 && gemv_w4_applies<K, G>()) { // tensor cores, x rounded to f16
      if (is_aligned(qweight, 16) && is_aligned(x, 16)) {
        gemv_w4<K, N, G>(s, M, x, qweight, scales, zeros, bias, y);
        return;
      }
    }
    if (is_aligned(qweight, UB))
      launch_gemv<K, N, Gv>(s, M, x, IntSrc<K, BITS, G, VE>{qweight, scales, zeros}, bias, y);
    else
      launch_gemv<K, N, Gv>(s, M, x, IntSrc<K, BITS, G, VE1>{qweight, scales, zeros}, bias, y);
    return;
  }
  if constexpr (BITS == 4 && gemm_w4_tok_applies<K, G>()) { // 9-64 rows: token groups
    if (M <= kGemmW4TokMaxM && is_aligned(qweight, 16) && is_aligned(x, 16)) {
      gemm_w4_tok<K, N, G>(s, M, x, qweight, scales, zeros, bias, y);
      return;
    }
  }
  if constexpr (K % 8 == 0) {
    if (is_aligned(qweight, BITS)) { // 8 codes: one 4- or 8-byte load
      launch_large<K, N, false, T>(s, M, x, IntSrc<K, BITS, G, 8>{qweight, scales, zeros}, nullptr,
                                   bias, y);
      return;
    }
  }
  launch_large<K, N, false, T>(s, M, x, IntSrc<K, BITS, G, VE1>{qweight, scales, zeros}, nullptr,
                               bias, y);
}

/// An int4 weight in the tile layout (qlc_w4_tiles.h) as a weight source of the
/// tensor-core GEMM and the cuBLAS path: the 8 codes at (n, k) (k % 8 == 0) and their
/// group's scale and zero, dequantized as IntSrc's wide chunks are (the same f16 values).
template <int K, int G> struct IntTileSrc {
  static_assert(w4tiles::applies(K, 16, G), "the tile layout's shapes");
  const uint8_t *q;
  const uint2 *entries;

  struct Chunk {
    unsigned raw;
    float s, z;
  };
  __device__ __forceinline__ void prepare() {}
  __device__ __forceinline__ void fetch(int64_t n, int k, Chunk &c) const {
    c.raw = __ldg(
        reinterpret_cast<const unsigned *>(q + w4tiles::chunk_offset(K, n, k / 32) + (k % 32) / 2));
    const uint2 e = __ldg(entries + w4tiles::entry(K, G, n, G >= K ? 0 : k / G));
    const __half2 h = *reinterpret_cast<const __half2 *>(&e.x);
    const bool hi = n % 16 >= 8;
    c.s = hi ? __high2float(h) : __low2float(h);
    c.z = static_cast<float>(hi ? e.y >> 16 : e.y & 0xFFFFu);
  }
  __device__ __forceinline__ uint4 expand(const Chunk &c) const {
    float f[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
      f[j] = int_minus((c.raw >> (4 * j)) & 0xFu, c.z) * c.s;
    return pack_halves(f);
  }
};

/// qlinear_int for an int4 weight in the tile layout (qlc_w4_tiles.h; CUDA artifacts store
/// the projections it applies to so): q the codes' tiles, `entries` the scale/zero entries.
/// The same kernels as the row layout, reading the tiles: the decode GEMV (up to 8 rows),
/// the token-group GEMM (up to 64), the cuBLAS path or tensor-core GEMM (more, or x not
/// 16-byte aligned), each with the row layout's arithmetic.
template <int K, int N, int G, class T = DefaultTiling>
void qlinear_int_tiles(cudaStream_t s, int64_t M, const float *x, const uint8_t *q,
                       const uint8_t *entries, const float *bias, float *y) {
  static_assert(w4tiles::applies(K, N, G), "the tile layout's shapes");
  if (M <= 0)
    return;
  const f16 *e = reinterpret_cast<const f16 *>(entries);
  if (is_aligned(q, 16) && is_aligned(x, 16) && is_aligned(entries, 8)) {
    if (M <= kGemvMaxM) {
      gemv_w4<K, N, G, W4Layout::Tiles>(s, M, x, q, e, nullptr, bias, y);
      return;
    }
    if (M <= kGemmW4TokMaxM) {
      gemm_w4_tok<K, N, G, W4Layout::Tiles>(s, M, x, q, e, nullptr, bias, y);
      return;
    }
  }
  launch_large<K, N, false, T>(
      s, M, x, IntTileSrc<K, G>{q, reinterpret_cast<const uint2 *>(entries)}, nullptr, bias, y);
}

template <int K>
__global__ void gather_cols_kernel(int64_t M, const float *__restrict__ x,
                                   const int32_t *__restrict__ perm, float *__restrict__ xp) {
  pdl_enter();
  const int64_t m = blockIdx.y;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < K; j += gridDim.x * blockDim.x)
    xp[m * K + j] = x[m * K + perm[j]];
}

/// Act-order checkpoints (a GPTQ g_idx that is not k / G): the weight's columns are stored
/// in the order of `perm`, so the input is gathered first, xp[m, j] = x[m, perm[j]] (xp:
/// [M, K] of scratch), and the projection reads xp.
template <int K, int N, int BITS, int G, class T = DefaultTiling>
void qlinear_int_perm(cudaStream_t s, int64_t M, const float *x, const int32_t *perm, float *xp,
                      const uint8_t *qweight, const f16 *scales, const uint8_t *zeros,
                      const float *bias, float *y) {
  if (M <= 0)
    return;
  const dim3 grid(static_cast<unsigned>(ceil_div(K, 256)), static_cast<unsigned>(M));
  launch_kernel(gather_cols_kernel<K>, grid, 256, 0, s, M, x, perm, xp);
  qlinear_int<K, N, BITS, G, T>(s, M, xp, qweight, scales, zeros, bias, y);
}

/// The NF4 code book and the dynamic map, for __constant__ memory.
struct Nf4Tables {
  float code[16];
  float dyn[256];
};
constexpr Nf4Tables make_nf4_tables() {
  Nf4Tables t{};
  for (int i = 0; i < 16; ++i)
    t.code[i] = nf4_values[i];
  for (int i = 0; i < 256; ++i)
    t.dyn[i] = nf4_dynamic_map[i];
  return t;
}
static __constant__ Nf4Tables nf4_tables_c = make_nf4_tables();

/// NF4 with units of VE elements: 16 or 8 (one 8- or 4-byte load; rows then start on
/// such boundaries: K % VE == 0) or 1 (any K; blocks and rows straddle bytes).
template <int K, int BLOCK, bool DQ, int VE> struct Nf4Src {
  static constexpr int E = VE;
  static constexpr int NR = 2;
  static constexpr int UNROLL = 8;
  static_assert(VE == 1 || ((VE == 8 || VE == 16) && K % VE == 0), "units need rows of VE*k");
  static constexpr bool kUnitScale = false;
  using Raw = std::conditional_t<VE == 16, uint2, std::conditional_t<VE == 8, unsigned, float>>;
  const uint8_t *q;
  const void *absmax;
  const float *absmax2;
  float offset;
  const float *tab; // shared: 16 code values, then the 256 dynamic-map values

  /// Copies the tables into shared memory (the kernel's next barrier publishes them).
  __device__ __forceinline__ void prepare() {
    __shared__ float t[16 + 256];
    for (int i = threadIdx.x; i < 16 + 256; i += blockDim.x)
      t[i] = i < 16 ? nf4_tables_c.code[i] : nf4_tables_c.dyn[i - 16];
    tab = t;
  }
  __device__ __forceinline__ float block_absmax(int64_t b) const {
    if constexpr (DQ) {
      const uint8_t c = static_cast<const uint8_t *>(absmax)[b];
      return __fadd_rn(__fmul_rn(tab[16 + c], absmax2[b / 256]), offset);
    } else {
      return static_cast<const float *>(absmax)[b];
    }
  }
  __device__ __forceinline__ float at(int64_t n, int k) const {
    const int64_t e = n * K + k;
    const unsigned byte = q[e / 2];
    const unsigned c = e % 2 == 0 ? byte >> 4 : byte & 0xFu;
    return __fmul_rn(tab[c], block_absmax(e / BLOCK));
  }
  __device__ __forceinline__ Raw load(int64_t n, int u) const {
    if constexpr (VE == 1)
      return u < K ? at(n, u) : 0.0f;
    else
      return __ldg(reinterpret_cast<const Raw *>(q + (n * K + int64_t{u} * VE) / 2));
  }
  __device__ __forceinline__ void decode(const Raw &raw, int64_t n, int u, float (&o)[E]) const {
    if constexpr (VE == 1) {
      o[0] = raw;
    } else {
      const int64_t e0 = n * K + int64_t{u} * VE;
      unsigned words[VE / 8];
      memcpy(words, &raw, sizeof raw);
      float a = 0.0f;
      if constexpr (BLOCK % VE == 0)
        a = block_absmax(e0 / BLOCK);
#pragma unroll
      for (int j = 0; j < VE; ++j) {
        const unsigned byte = (words[j / 8] >> (8 * ((j % 8) / 2))) & 0xFFu;
        const unsigned c = j % 2 == 0 ? byte >> 4 : byte & 0xFu;
        if constexpr (BLOCK % VE != 0)
          a = block_absmax((e0 + j) / BLOCK);
        o[j] = __fmul_rn(tab[c], a);
      }
    }
  }

  /// For the tensor-core GEMM: with 8-element units inside one block, the 4 code bytes
  /// and the block's absmax; else 8 f16.
  static constexpr bool kWideChunk = VE == 8 && BLOCK % 8 == 0;
  struct WideChunk {
    unsigned word;
    float a;
  };
  struct HalfChunk {
    uint4 h;
  };
  using Chunk = typename std::conditional<kWideChunk, WideChunk, HalfChunk>::type;
  __device__ __forceinline__ void fetch(int64_t n, int k, Chunk &c) const {
    if constexpr (kWideChunk) {
      const int64_t e0 = n * K + k;
      c.word = __ldg(reinterpret_cast<const unsigned *>(q + e0 / 2));
      c.a = block_absmax(e0 / BLOCK);
    } else {
      float f[8];
#pragma unroll
      for (int j = 0; j < 8; ++j)
        f[j] = k + j < K ? at(n, k + j) : 0.0f;
      c.h = pack_halves(f);
    }
  }
  __device__ __forceinline__ uint4 expand(const Chunk &c) const {
    if constexpr (kWideChunk) {
      float f[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const unsigned byte = (c.word >> (8 * (j / 2))) & 0xFFu;
        f[j] = __fmul_rn(tab[j % 2 == 0 ? byte >> 4 : byte & 0xFu], c.a);
      }
      return pack_halves(f);
    } else {
      return c.h;
    }
  }
};

/// y[M, N] = x[M, K] * dequant(W)^T + bias. DQ: `absmax` holds uint8 codes, `absmax2` one
/// f32 per 256 blocks and `offset` the mean added back; otherwise `absmax` is f32.
template <int K, int N, int BLOCK, bool DQ, class T = DefaultTiling>
void qlinear_nf4(cudaStream_t s, int64_t M, const float *x, const uint8_t *qweight,
                 const void *absmax, const float *absmax2, float offset, const float *bias,
                 float *y) {
  static_assert(BLOCK > 0, "NF4 blocks hold at least one element");
  if (M <= 0)
    return;
  constexpr int VE = K % 16 == 0 ? 16 : K % 8 == 0 ? 8 : 1;
  using Wide = Nf4Src<K, BLOCK, DQ, VE>;
  using Narrow = Nf4Src<K, BLOCK, DQ, 1>;
  using Gv = typename T::Gemv;
  if (M <= kGemvMaxM) {
    if (is_aligned(qweight, VE > 1 ? VE / 2 : 1))
      launch_gemv<K, N, Gv>(s, M, x, Wide{qweight, absmax, absmax2, offset, nullptr}, bias, y);
    else
      launch_gemv<K, N, Gv>(s, M, x, Narrow{qweight, absmax, absmax2, offset, nullptr}, bias, y);
    return;
  }
  using Mma = Nf4Src<K, BLOCK, DQ, K % 8 == 0 ? 8 : 1>; // 8-code chunks for the mma path
  if (K % 8 == 0 && is_aligned(qweight, 4))
    launch_large<K, N, false, T>(s, M, x, Mma{qweight, absmax, absmax2, offset, nullptr}, nullptr,
                                 bias, y);
  else
    launch_large<K, N, false, T>(s, M, x, Narrow{qweight, absmax, absmax2, offset, nullptr},
                                 nullptr, bias, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_QLINEAR_CUH
