// bench_cuda_util.cuh - what the CUDA kernel benchmarks share: fills of random bytes,
// halves and floats, read-only kernels (the most a kernel of a size streams), and the
// timing of back-to-back launches captured in a CUDA graph (as a decode step replays them).
#ifndef QLC_BENCH_CUDA_UTIL_CUH
#define QLC_BENCH_CUDA_UTIL_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_w4_tiles.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace bench {
namespace cu = qlc::cuda;

__device__ uint32_t mix(int64_t i, uint32_t seed) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
  h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
  return h;
}
__global__ void fillBytes(int64_t n, uint32_t seed, uint8_t *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = static_cast<uint8_t>(mix(i, seed) >> 8);
}
__global__ void fillHalf(int64_t n, uint32_t seed, cu::f16 *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = __float2half_rn(0.01f + 0.01f * ((mix(i, seed) & 0xFFFFu) / 65536.0f - 0.5f));
}
__global__ void fillFloat(int64_t n, uint32_t seed, float *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = 2.0f * ((mix(i, seed) & 0xFFFFu) / 65536.0f - 0.5f);
}

/// Reads n16 x 16 bytes, grid-stride, 4 loads in flight per thread.
__global__ void readGridStride(int64_t n16, const uint4 *__restrict__ p, unsigned *out) {
  unsigned a = 0;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t st = int64_t{gridDim.x} * blockDim.x;
  for (; i + 3 * st < n16; i += 4 * st) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u)
      v[u] = __ldg(p + i + u * st);
#pragma unroll
    for (int u = 0; u < 4; ++u)
      a ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n16; i += st) {
    const uint4 v = __ldg(p + i);
    a ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (a == 0x12345678u)
    out[0] = a;
}
/// Reads n16 x 16 bytes, each thread 8 loads issued at once (32 KiB a block of 256).
__global__ void readOneShot(int64_t n16, const uint4 *__restrict__ p, unsigned *out) {
  unsigned a = 0;
  uint4 v[8];
  const int64_t base = blockIdx.x * int64_t{2048};
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int64_t i = base + j * 256 + threadIdx.x;
    v[j] = i < n16 ? __ldg(p + i) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int j = 0; j < 8; ++j)
    a ^= v[j].x ^ v[j].y ^ v[j].z ^ v[j].w;
  if (a == 0x12345678u)
    out[0] = a;
}

/// Microseconds per launch: `launches` calls of launch(stream, r) captured in one graph,
/// the graph's replay timed 15 times after 3 warm-ups (median).
template <class L> double graphUs(int launches, L launch) {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaGraph_t g;
  cudaGraphExec_t ge;
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  for (int r = 0; r < launches; ++r)
    launch(s, r);
  cudaStreamEndCapture(s, &g);
  cudaGraphInstantiate(&ge, g, 0);
  for (int i = 0; i < 3; ++i)
    cudaGraphLaunch(ge, s);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < 15; ++i) {
    cudaEventRecord(a, s);
    cudaGraphLaunch(ge, s);
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(ge);
  cudaGraphDestroy(g);
  cudaStreamDestroy(s);
  return ms[7] * 1e3 / launches;
}

/// The row layout's codes and scales (symmetric: zero 8) of an N-row int4 weight into the
/// tile layout of CUDA artifacts (qlc_w4_tiles.h).
template <int K, int G>
__global__ void toTiles(int N, const uint8_t *q, const cu::f16 *sc, uint8_t *qt, uint2 *ent) {
  constexpr int CH = K / 32, GR = (K + G - 1) / G;
  const int64_t n = static_cast<int64_t>(N) * CH, st = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += st) {
    const int64_t r = i / CH, c = i % CH;
    *reinterpret_cast<uint4 *>(qt + qlc::w4tiles::chunk_offset(K, r, c)) =
        *reinterpret_cast<const uint4 *>(q + r * (K / 2) + c * 16);
  }
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < int64_t{N} / 2 * GR;
       i += st) {
    const int64_t tile = i / (GR * 8), gi = (i / 8) % GR, g = i % 8;
    const __half2 h =
        __halves2half2(sc[(tile * 16 + g) * GR + gi], sc[(tile * 16 + g + 8) * GR + gi]);
    ent[qlc::w4tiles::entry(K, G, tile * 16 + g, gi)] =
        make_uint2(*reinterpret_cast<const unsigned *>(&h), 0x00080008u);
  }
}

/// K x N int4 g128 weights in rotating copies (at least 768 MiB of them, so the 50-60 MB
/// L2 holds none), x of MAXM token rows and two outputs; prints the shape's header.
template <int K, int N, int MAXM> struct W4Bufs {
  static constexpr int G = 128;
  static constexpr int64_t RB = K / 2, GR = K / G;
  const int64_t qbytes = N * RB, bytes = qbytes + N * GR * 2;
  const int nbuf = int(std::min<int64_t>(64, std::max<int64_t>(8, (int64_t{768} << 20) / bytes)));
  const int launches = std::max(nbuf, 32); // per timed graph
  uint8_t *q = nullptr, *qt = nullptr;     // rows and tiles
  cu::f16 *sc = nullptr;
  uint2 *ent = nullptr; // the tiles' scale/zero entries
  float *x = nullptr, *y = nullptr, *y2 = nullptr;
  W4Bufs() {
    cudaMalloc(&q, qbytes * nbuf);
    cudaMalloc(&sc, N * GR * 2 * nbuf);
    cudaMalloc(&x, int64_t{MAXM} * K * 4);
    cudaMalloc(&y, int64_t{MAXM} * N * 4);
    cudaMalloc(&y2, int64_t{MAXM} * N * 4);
    fillBytes<<<2048, 256>>>(qbytes * nbuf, 11, q);
    fillHalf<<<2048, 256>>>(N * GR * nbuf, 13, sc);
    fillFloat<<<256, 256>>>(int64_t{MAXM} * K, 1, x);
    if constexpr (qlc::w4tiles::applies(K, N, G)) {
      cudaMalloc(&qt, qbytes * nbuf);
      cudaMalloc(&ent, qlc::w4tiles::entry_bytes(K, N, G) * nbuf);
      for (int b = 0; b < nbuf; ++b)
        toTiles<K, G><<<1024, 256>>>(N, Q(b), S(b), QT(b), E(b));
    }
    cudaDeviceSynchronize();
    std::printf("%5d x %5d (%5.1f MB of codes and scales, %d buffers)\n", K, N, bytes / 1e6, nbuf);
  }
  ~W4Bufs() {
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      std::printf("CUDA error: %s\n", cudaGetErrorString(e));
    cudaFree(q);
    cudaFree(qt);
    cudaFree(sc);
    cudaFree(ent);
    cudaFree(x);
    cudaFree(y);
    cudaFree(y2);
  }
  uint8_t *Q(int r) const { return q + (r % nbuf) * qbytes; }
  cu::f16 *S(int r) const { return sc + (r % nbuf) * (N * GR); }
  uint8_t *QT(int r) const { return qt + (r % nbuf) * qbytes; }
  uint2 *E(int r) const { return ent + (r % nbuf) * (qlc::w4tiles::entry_bytes(K, N, G) / 8); }
  /// Largest |y - y2| / (1e-3 + |y|) over the first M rows.
  double maxRelDiff(int M) const {
    std::vector<float> a(int64_t{M} * N), b(int64_t{M} * N);
    cudaMemcpy(a.data(), y, 4 * a.size(), cudaMemcpyDeviceToHost);
    cudaMemcpy(b.data(), y2, 4 * b.size(), cudaMemcpyDeviceToHost);
    double rel = 0;
    for (size_t i = 0; i < a.size(); ++i)
      rel = std::max(rel, std::fabs(double(a[i]) - b[i]) / (1e-3 + std::fabs(double(a[i]))));
    return rel;
  }
  void row(const char *name, double us) const {
    std::printf("  %-22s %7.2f us %7.0f GB/s\n", name, us, bytes / (us * 1e-6) / 1e9);
  }
};

/// Device-to-device copy of 1 GiB, five times: GB/s counted as read + write.
inline double copyGBs() {
  const int64_t n = int64_t{1} << 30;
  uint8_t *a, *b;
  cudaMalloc(&a, n);
  cudaMalloc(&b, n);
  cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventRecord(e0);
  for (int i = 0; i < 5; ++i)
    cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e1);
  cudaEventSynchronize(e1);
  float t = 0;
  cudaEventElapsedTime(&t, e0, e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * n * 5 / (t * 1e-3) / 1e9;
}

} // namespace bench

#endif // QLC_BENCH_CUDA_UTIL_CUH
