// gemv_w4_graph.cu - the int4 g128 decode GEMVs at Llama-2-7B's shapes, timed as a CUDA
// graph of back-to-back launches on rotating weight buffers (as in a decode step, whose
// kernels are replayed from a graph), beside read-only kernels of the same bytes (the most
// a single kernel of that size streams) and a device copy, all in one run.
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I codegen/cuda/kernels \
//        -I ir -I codegen/x86/kernels bench/gemv_w4_graph.cu -o /tmp/gemv_w4_graph
//   /tmp/gemv_w4_graph
//
// Rows: "qlc dispatch" is what the artifacts run (qlinear_int's choice for M tokens),
// "v0 <8,4>" the register-burst GEMV (gemv_w4_kernel), "stream <KW,RT,D>" the streaming
// GEMV in other launch configurations (docs/cuda.md has a run's figures).
//
// `--batch` times 16, 32 and 64 token rows instead: "mma GEMM" (the tensor-core GEMM that
// took them before the token-group kernel), "qlc dispatch" and the token-group kernel
// (qlc_cuda_gemm_w4.cuh) in other configurations "tok <RT,SQ,D>".
#include "qlc_cuda_qlinear.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace cu = qlc::cuda;

namespace {

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

/// K x N int4 g128 weights in rotating copies (at least 768 MiB of them, so the 50-60 MB
/// L2 holds none), x of MAXM token rows and two outputs; prints the shape's header.
template <int K, int N, int MAXM> struct W4Bufs {
  static constexpr int G = 128;
  static constexpr int64_t RB = K / 2, GR = K / G;
  const int64_t qbytes = N * RB, bytes = qbytes + N * GR * 2;
  const int nbuf = int(std::min<int64_t>(64, std::max<int64_t>(8, (int64_t{768} << 20) / bytes)));
  const int launches = std::max(nbuf, 32); // per timed graph
  uint8_t *q = nullptr;
  cu::f16 *sc = nullptr;
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
    cudaDeviceSynchronize();
    std::printf("%5d x %5d (%5.1f MB of codes and scales, %d buffers)\n", K, N, bytes / 1e6, nbuf);
  }
  ~W4Bufs() {
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      std::printf("CUDA error: %s\n", cudaGetErrorString(e));
    cudaFree(q);
    cudaFree(sc);
    cudaFree(x);
    cudaFree(y);
    cudaFree(y2);
  }
  uint8_t *Q(int r) const { return q + (r % nbuf) * qbytes; }
  cu::f16 *S(int r) const { return sc + (r % nbuf) * (N * GR); }
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

template <int K, int N> void shape(int sms) {
  constexpr int G = 128;
  W4Bufs<K, N, 8> w;
  float *x = w.x, *y = w.y, *y2 = w.y2;
  const int L = w.launches;
  const int64_t qbytes = w.qbytes;
  unsigned *sink;
  cudaMalloc(&sink, 4);
  auto Q = [&](int r) { return w.Q(r); };
  auto S = [&](int r) { return w.S(r); };
  auto row = [&](const char *name, double us) { w.row(name, us); };
  for (int M : {1, 2, 4}) {
    // The dispatch against gemv_w4_kernel: both round x to f16 and sum in f32.
    cu::launch_gemv_w4<K, N, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y);
    cu::gemv_w4<K, N, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y2);
    std::printf(" M=%d (dispatch vs v0: max rel. difference %.2g)\n", M, w.maxRelDiff(M));
    if (M == 1) {
      row("read grid-stride", graphUs(L, [&](cudaStream_t s, int r) {
            readGridStride<<<sms * 4, 512, 0, s>>>(qbytes / 16, (const uint4 *)Q(r), sink);
          }));
      row("read one-shot", graphUs(L, [&](cudaStream_t s, int r) {
            readOneShot<<<unsigned(cu::ceil_div(qbytes / 16, 2048)), 256, 0, s>>>(
                qbytes / 16, (const uint4 *)Q(r), sink);
          }));
    }
    row("qlc dispatch", graphUs(L, [&](cudaStream_t s, int r) {
          cu::gemv_w4<K, N, G>(s, M, x, Q(r), S(r), nullptr, nullptr, y);
        }));
    row("v0 <8,4>", graphUs(L, [&](cudaStream_t s, int r) {
          cu::launch_gemv_w4<K, N, G>(s, M, x, Q(r), S(r), nullptr, nullptr, y);
        }));
    if (cu::gemv_w4_stream_smem<K>(M) > 48 * 1024)
      continue;
#define STREAM(kw, rt, d)                                                                          \
  row("stream <" #kw "," #rt "," #d ">", graphUs(L, [&](cudaStream_t s, int r) {                   \
        cu::launch_gemv_w4_stream<K, N, G, kw, rt, d>(s, M, x, Q(r), S(r), nullptr, nullptr, y);   \
      }))
    STREAM(1, 4, 4);
    STREAM(2, 2, 4);
    STREAM(2, 2, 8);
    STREAM(2, 4, 4);
    STREAM(4, 1, 4);
    STREAM(4, 2, 4);
    STREAM(8, 1, 4);
#undef STREAM
  }
  cudaFree(sink);
}

/// 16-64 token rows: the tensor-core GEMM against the token-group kernel's configurations.
template <int K, int N> void batchShape() {
  constexpr int G = 128;
  W4Bufs<K, N, 64> w;
  float *x = w.x, *y = w.y, *y2 = w.y2;
  const int L = w.launches;
  auto Q = [&](int r) { return w.Q(r); };
  auto S = [&](int r) { return w.S(r); };
  auto row = [&](const char *name, double us) { w.row(name, us); };
  using Mma = cu::IntSrc<K, 4, G, 8>;
  for (int M : {16, 32, 64}) {
    cu::launch_mma<K, N, false, cu::DefaultTiling>(0, M, x, Mma{Q(0), S(0), nullptr}, nullptr, y);
    cu::qlinear_int<K, N, 4, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y2);
    std::printf(" M=%d (dispatch vs mma GEMM: max rel. difference %.2g)\n", M, w.maxRelDiff(M));
    row("mma GEMM", graphUs(L, [&](cudaStream_t s, int r) {
          cu::launch_mma<K, N, false, cu::DefaultTiling>(s, M, x, Mma{Q(r), S(r), nullptr}, nullptr,
                                                         y);
        }));
    row("qlc dispatch", graphUs(L, [&](cudaStream_t s, int r) {
          cu::qlinear_int<K, N, 4, G>(s, M, x, Q(r), S(r), nullptr, nullptr, y);
        }));
#define TOK(tg, rt, sq, d)                                                                         \
  if ((M + 7) / 8 <= tg && cu::gemm_w4_tok_smem<tg, sq>() <= 48 * 1024)                            \
  row("tok TG" #tg " <" #rt "," #sq "," #d ">", graphUs(L, [&](cudaStream_t s, int r) {            \
        cu::launch_gemm_w4_tok<K, N, G, tg, cu::GemmW4TokCfg<rt, sq, d>>(s, M, x, Q(r), S(r),      \
                                                                         nullptr, nullptr, y);     \
      }))
    if (M <= 16) {
      TOK(2, 8, 4, 4);
      TOK(2, 16, 4, 4);
      TOK(2, 8, 8, 4);
      TOK(2, 16, 2, 2);
    } else if (M <= 32) {
      TOK(4, 8, 4, 4);
      TOK(4, 16, 4, 4);
      TOK(4, 8, 2, 2);
      TOK(4, 16, 2, 2);
    } else {
      TOK(8, 8, 2, 2);
      TOK(8, 16, 2, 2);
      TOK(8, 8, 1, 1);
      TOK(8, 16, 1, 1);
    }
#undef TOK
  }
}

} // namespace

int main(int argc, char **argv) {
  const bool batch = argc > 1 && std::string(argv[1]) == "--batch";
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  std::printf("%s, %d SMs\n", p.name, p.multiProcessorCount);
  {
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
    std::printf("copy of 1 GiB: %.0f GB/s (read + write)\n", 2.0 * n * 5 / (t * 1e-3) / 1e9);
    cudaFree(a);
    cudaFree(b);
  }
  if (batch) {
    batchShape<4096, 4096>();
    batchShape<4096, 12288>();
    batchShape<4096, 22016>();
    batchShape<11008, 4096>();
    return 0;
  }
  shape<4096, 4096>(p.multiProcessorCount);
  shape<4096, 12288>(p.multiProcessorCount);
  shape<4096, 22016>(p.multiProcessorCount);
  shape<11008, 4096>(p.multiProcessorCount);
  shape<4096, 32000>(p.multiProcessorCount);
  return 0;
}
