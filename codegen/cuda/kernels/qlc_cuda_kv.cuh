// qlc_cuda_kv.cuh - the paged KV cache: formats of a head, the row of a position, the store.
//
// Cache layout and byte formats are those of the x86 kernels (qlc_x86_kv.h,
// qlc_x86_attention.h): a pool of pages of P positions, each [layer][k|v][P][KVH heads],
// a slot's position pos in page block_table[slot * max_pages + pos / P] at row pos % P
// (qlc/abi.h); a head of HD channels in KV::head_bytes<HD>() bytes:
//   KvF32  HD floats;  KvF16  HD IEEE halves (round to nearest even);
//   KvI8   f16 scale, f16 zero, HD uint8 codes padded to 4 bytes: x ~= zero + scale * code,
//          zero rounded down from the head's min, scale up from (max - zero) / 255,
//          with the same f32 operations, unfused, as the x86 store (bit-identical codes).
#ifndef QLC_CUDA_KV_CUH
#define QLC_CUDA_KV_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_cuda_elementwise.cuh"

#include <cstdint>

namespace qlc {
namespace cuda {

/// q·k over HD channels, q in shared memory (zero past HD up to a multiple of 4).
struct KvF32 {
  /// Whether decode steps store k and v in the attention kernel (attention_store_kernel):
  /// on an H200 that halved the int8 cache's time per layer and made the f16 cache's 1.3x
  /// slower (bench/attention_graph.cu, docs/cuda.md), so only int8 does.
  static constexpr bool kDecodeStoreFused = false;
  template <int HD> __host__ __device__ static constexpr int64_t head_bytes() { return 4 * HD; }
  template <int HD> __device__ static void store_warp(uint8_t *dst, const float *x, int lane) {
    float *d = reinterpret_cast<float *>(dst);
    for (int i = lane; i < HD; i += kWarpSize)
      d[i] = x[i];
  }
  template <int HD> __device__ static float dot(const float *q, float, const uint8_t *h) {
    const float *k = reinterpret_cast<const float *>(h);
    float s = 0.0f;
    if constexpr (HD % 4 == 0) {
#pragma unroll 4
      for (int i = 0; i < HD; i += 4) {
        const float4 v = *reinterpret_cast<const float4 *>(k + i);
        s = fmaf(q[i], v.x, s);
        s = fmaf(q[i + 1], v.y, s);
        s = fmaf(q[i + 2], v.z, s);
        s = fmaf(q[i + 3], v.w, s);
      }
    } else {
#pragma unroll 4
      for (int i = 0; i < HD; i += 2) {
        const float2 v = *reinterpret_cast<const float2 *>(k + i);
        s = fmaf(q[i], v.x, s);
        s = fmaf(q[i + 1], v.y, s);
      }
    }
    return s;
  }
  template <int HD> __device__ static float value(const uint8_t *h, int c) {
    return reinterpret_cast<const float *>(h)[c];
  }
  /// Channels c0 .. c0 + C - 1 (C % 4 == 0, c0 % C == 0, all < HD) in 16-byte loads.
  template <int HD, int C> __device__ static void values(const uint8_t *h, int c0, float (&v)[C]) {
    const float4 *p = reinterpret_cast<const float4 *>(h) + c0 / 4;
#pragma unroll
    for (int i = 0; i < C / 4; ++i) {
      const float4 f = p[i];
      v[4 * i] = f.x;
      v[4 * i + 1] = f.y;
      v[4 * i + 2] = f.z;
      v[4 * i + 3] = f.w;
    }
  }
};

struct KvF16 {
  static constexpr bool kDecodeStoreFused = false;
  template <int HD> __host__ __device__ static constexpr int64_t head_bytes() { return 2 * HD; }
  template <int HD> __device__ static void store_warp(uint8_t *dst, const float *x, int lane) {
    f16 *d = reinterpret_cast<f16 *>(dst);
    for (int i = lane; i < HD; i += kWarpSize)
      d[i] = __float2half_rn(x[i]);
  }
  template <int HD> __device__ static float dot(const float *q, float, const uint8_t *h) {
    float s = 0.0f;
    if constexpr (HD % 8 == 0) { // 16-byte loads (rows and heads are 16-byte aligned then)
      const uint4 *k = reinterpret_cast<const uint4 *>(h);
#pragma unroll 8
      for (int i = 0; i < HD / 8; ++i) {
        const uint4 v = k[i];
        const __half2 *hv = reinterpret_cast<const __half2 *>(&v);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float2 f = __half22float2(hv[j]);
          s = fmaf(q[8 * i + 2 * j], f.x, s);
          s = fmaf(q[8 * i + 2 * j + 1], f.y, s);
        }
      }
      return s;
    }
    const __half2 *k = reinterpret_cast<const __half2 *>(h);
#pragma unroll 8
    for (int i = 0; i < HD / 2; ++i) {
      const float2 v = __half22float2(k[i]);
      s = fmaf(q[2 * i], v.x, s);
      s = fmaf(q[2 * i + 1], v.y, s);
    }
    return s;
  }
  template <int HD> __device__ static float value(const uint8_t *h, int c) {
    return __half2float(reinterpret_cast<const f16 *>(h)[c]);
  }
  /// Channels c0 .. c0 + C - 1 (C % 4 == 0, c0 % C == 0, all < HD) in 8-byte loads.
  template <int HD, int C> __device__ static void values(const uint8_t *h, int c0, float (&v)[C]) {
    const uint2 *p = reinterpret_cast<const uint2 *>(h) + c0 / 4;
#pragma unroll
    for (int i = 0; i < C / 4; ++i) {
      const uint2 u = p[i];
      const float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&u.x));
      const float2 b = __half22float2(*reinterpret_cast<const __half2 *>(&u.y));
      v[4 * i] = a.x;
      v[4 * i + 1] = a.y;
      v[4 * i + 2] = b.x;
      v[4 * i + 3] = b.y;
    }
  }
};

struct KvI8 {
  static constexpr bool kDecodeStoreFused = true;
  template <int HD> __host__ __device__ static constexpr int64_t head_bytes() {
    return 4 + (HD + 3) / 4 * 4;
  }
  /// The x86 store, by one warp: min/max by shuffles, then every lane derives the same
  /// scale and zero and writes its codes.
  template <int HD> __device__ static void store_warp(uint8_t *dst, const float *x, int lane) {
    float lo = INFINITY, hi = -INFINITY;
    for (int i = lane; i < HD; i += kWarpSize) {
      lo = fminf(lo, x[i]);
      hi = fmaxf(hi, x[i]);
    }
    lo = warp_min(lo);
    hi = warp_max(hi);
    constexpr float kMax = 65504.0f;
    lo = lo < -kMax ? -kMax : (lo > kMax ? kMax : lo);
    hi = hi > kMax ? kMax : (hi < lo ? lo : hi);
    unsigned short zb = __half_as_ushort(__float2half_rn(lo));
    if (__half2float(__ushort_as_half(zb)) > lo) // one half-ulp step toward -inf
      zb = (zb & 0x7fffu) == 0 ? 0x8001u : (zb & 0x8000u) ? zb + 1 : zb - 1;
    const float zf = __half2float(__ushort_as_half(zb));
    const float range = __fsub_rn(hi, zf);
    unsigned short sb = __half_as_ushort(__float2half_rn(__fdiv_rn(range, 255.0f)));
    if (__fmul_rn(__half2float(__ushort_as_half(sb)), 255.0f) < range)
      ++sb;
    const float sf = __half2float(__ushort_as_half(sb));
    const float inv = sf > 0.0f ? __fdiv_rn(1.0f, sf) : 0.0f;
    if (lane == 0) {
      reinterpret_cast<unsigned short *>(dst)[0] = sb;
      reinterpret_cast<unsigned short *>(dst)[1] = zb;
    }
    uint8_t *code = dst + 4;
    for (int i = lane; i < (HD + 3) / 4 * 4; i += kWarpSize) {
      uint8_t c = 0;
      if (i < HD) {
        const float u = __fadd_rn(__fmul_rn(__fsub_rn(x[i], zf), inv), 0.5f);
        c = static_cast<uint8_t>(u >= 255.0f ? 255 : (u > 0.0f ? __float2int_rz(u) : 0));
      }
      code[i] = c;
    }
  }
  /// q·k = scale * (q·code) + zero * sum(q), q zero-padded to a multiple of 4.
  template <int HD> __device__ static float dot(const float *q, float qsum, const uint8_t *h) {
    const __half2 p = *reinterpret_cast<const __half2 *>(h);
    const uchar4 *codes = reinterpret_cast<const uchar4 *>(h + 4);
    float s = 0.0f;
#pragma unroll 8
    for (int i = 0; i < (HD + 3) / 4; ++i) {
      const uchar4 c = codes[i];
      s = fmaf(q[4 * i], static_cast<float>(c.x), s);
      s = fmaf(q[4 * i + 1], static_cast<float>(c.y), s);
      s = fmaf(q[4 * i + 2], static_cast<float>(c.z), s);
      s = fmaf(q[4 * i + 3], static_cast<float>(c.w), s);
    }
    return __low2float(p) * s + __high2float(p) * qsum;
  }
  template <int HD> __device__ static float value(const uint8_t *h, int c) {
    const __half2 p = *reinterpret_cast<const __half2 *>(h);
    return __high2float(p) + __low2float(p) * static_cast<float>(h[4 + c]);
  }
  /// Channels c0 .. c0 + C - 1 (C % 4 == 0, c0 % C == 0, all < HD), codes in 4-byte loads;
  /// the same arithmetic as value().
  template <int HD, int C> __device__ static void values(const uint8_t *h, int c0, float (&v)[C]) {
    const __half2 p = *reinterpret_cast<const __half2 *>(h);
    const float sc = __low2float(p), zero = __high2float(p);
    const uchar4 *codes = reinterpret_cast<const uchar4 *>(h + 4) + c0 / 4;
#pragma unroll
    for (int i = 0; i < C / 4; ++i) {
      const uchar4 c = codes[i];
      v[4 * i] = zero + sc * static_cast<float>(c.x);
      v[4 * i + 1] = zero + sc * static_cast<float>(c.y);
      v[4 * i + 2] = zero + sc * static_cast<float>(c.z);
      v[4 * i + 3] = zero + sc * static_cast<float>(c.w);
    }
  }
};

/// Bytes of one cache row (KVH heads) and the row of (slot, layer, k|v) at `pos`.
template <class KV, int KVH, int HD> __host__ __device__ constexpr int64_t kv_row_bytes() {
  return KVH * KV::template head_bytes<HD>();
}
template <class KV, int L, int KVH, int HD, int P>
__device__ __forceinline__ uint8_t *kv_row(void *kv, const int32_t *__restrict__ table,
                                           int64_t max_pages, int32_t slot, int layer, int which,
                                           int64_t pos) {
  const int64_t page = table[slot * max_pages + pos / P];
  const int64_t row = ((page * L + layer) * 2 + which) * P + pos % P;
  return static_cast<uint8_t *>(kv) + row * kv_row_bytes<KV, KVH, HD>();
}

/// Encodes the k (which = 0, rotated by inv_freq when given) or v head of HD channels at
/// `src` into `dst` by one warp: the cache format's store, after the rope kernel's
/// arithmetic into `rot` (HD floats of shared memory) for a k head. kv_store_kernel and
/// attention_store_kernel both store through it (the same bytes: cuda_attention_test).
/// `rot` may be `src` (a lane reads both channels of a pair before it writes them).
template <class KV, int HD>
__device__ __forceinline__ void encode_head_warp(uint8_t *dst, const float *src, int which,
                                                 const float *__restrict__ inv_freq, float p,
                                                 float *rot, int lane) {
  if (which == 0 && inv_freq != nullptr) {
    for (int i = lane; i < HD / 2; i += kWarpSize)
      rope_pair(p, inv_freq[i], src[i], src[i + HD / 2], &rot[i], &rot[i + HD / 2]);
    __syncwarp();
    src = rot;
  }
  KV::template store_warp<HD>(dst, src, lane);
}

/// One warp per (token, kv head, k|v): encodes the step's rows at their positions.
template <int L, int KVH, int HD, class KV, int P>
__global__ void __launch_bounds__(kWarpSize)
    kv_store_kernel(void *kv, const int32_t *__restrict__ table, int64_t max_pages,
                    const int32_t *__restrict__ positions, const int32_t *__restrict__ slots,
                    int layer, const float *__restrict__ k, const float *__restrict__ v,
                    const float *__restrict__ inv_freq, int64_t ldkv) {
  pdl_enter();
  const int which = blockIdx.x % 2, g = (blockIdx.x / 2) % KVH;
  const int64_t t = blockIdx.x / (2 * KVH);
  const float *src = (which == 0 ? k : v) + t * ldkv + g * HD;
  __shared__ float rot[HD];
  const int32_t pos = positions[t];
  uint8_t *dst = kv_row<KV, L, KVH, HD, P>(kv, table, max_pages, slots[t], layer, which, pos) +
                 g * KV::template head_bytes<HD>();
  encode_head_warp<KV, HD>(dst, src, which, inv_freq, static_cast<float>(pos), rot, threadIdx.x);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_KV_CUH
