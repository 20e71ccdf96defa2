// cuda_mma_test.cu - the tensor-core GEMM (qlc_cuda_mma.cuh) behind linear, qlinear_int and
// qlinear_nf4 for M > kGemvMaxM, and its benchmark (cuda_kernel_test --bench).
//
// Test: awkward sizes (M 9/17/33/70/300: both tile shapes, split K on the K=1000 and
// K=4096 cases), every weight format and both the wide (aligned, K % 8 == 0) and the
// element-wise staging paths, against a float64 reference over the activations rounded to
// f16 as the kernel stages them. Tolerance (relative, ||y - ref|| / ||ref||): 1e-4 for
// f16/bf16 weights (products exact in f32, only the f32 sum order differs), 1e-3 for
// int4/int8/NF4 (the dequantized weights are rounded to f16 too, about 2^-12 each).
#include "qlc_cuda_kernels.cuh"
#include "qlc_nf4_tables.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace cu = qlc::cuda;
using namespace qlc::cudatest;

namespace {

const int kMmaMs[] = {9, 17, 33, 70, 300};
constexpr double kTolHalf = 1e-4, kTolQuant = 1e-3;

double roundF16(float v) { return __half2float(__float2half_rn(v)); }

/// y = f16(x) W^T + bias in float64.
std::vector<double> refMma(int M, int K, int N, const std::vector<float> &x,
                           const std::vector<double> &w, const float *bias) {
  std::vector<double> xr(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    xr[i] = roundF16(x[i]);
  std::vector<double> y(int64_t{M} * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias != nullptr ? bias[n] : 0.0;
      const double *xa = xr.data() + int64_t{m} * K, *wa = w.data() + int64_t{n} * K;
      for (int k = 0; k < K; ++k)
        s += xa[k] * wa[k];
      y[int64_t{m} * N + n] = s;
    }
  return y;
}

template <class Launch>
void checkMma(const std::string &name, int K, int N, const std::vector<double> &wdec, double tol,
              Launch launch) {
  Rng rng(K * 17 + N);
  auto bias = rng.floats(N, 1.0f);
  DevBuf<float> dbias(bias);
  int i = 0;
  for (int M : kMmaMs) {
    const bool withBias = i++ % 2 == 0;
    auto x = rng.floats(int64_t{M} * K, 1.0f);
    DevBuf<float> dx(x), y(int64_t{M} * N);
    y.poison();
    launch(M, dx.p, withBias ? dbias.p : nullptr, y.p);
    check("mma " + name + (withBias ? " +bias" : ""), M, y,
          refMma(M, K, N, x, wdec, withBias ? bias.data() : nullptr), tol);
  }
}

template <int K, int N, class WT> void mmaDense(const char *tname) {
  Rng rng(K * 3 + N + sizeof(WT));
  auto w = rng.weights<WT>(int64_t{N} * K, 1.0f);
  std::vector<double> wdec(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    wdec[i] = toFloat(w[i]);
  DevBuf<WT> dw(w);
  checkMma(caseName("linear", "K=%d N=%d %s", K, N, tname), K, N, wdec, kTolHalf,
           [&](int M, const float *x, const float *b, float *y) {
             cu::linear<K, N, WT>(0, M, x, dw.p, b, y);
           });
  // One element off a 16-byte boundary: the element-wise staging path.
  std::vector<WT> shifted(w.size() + 1);
  std::copy(w.begin(), w.end(), shifted.begin() + 1);
  DevBuf<WT> dws(shifted);
  checkMma(caseName("linear", "K=%d N=%d %s misaligned", K, N, tname), K, N, wdec, kTolHalf,
           [&](int M, const float *x, const float *b, float *y) {
             cu::linear<K, N, WT>(0, M, x, dws.p + 1, b, y);
           });
}

template <int K, int N, int BITS, int G> void mmaInt(bool asym) {
  Rng rng(K * 11 + N * 5 + BITS + G + asym);
  IntWeights<K, N, BITS, G> w(rng, asym);
  const std::vector<double> &wdec = w.wdec;
  DevBuf<uint8_t> dq(w.q), dz(w.zeros);
  DevBuf<cu::f16> ds(w.scales);
  checkMma(caseName("qlinear_int", "K=%d N=%d b%d g%d %s", K, N, BITS, G, asym ? "asym" : "sym"),
           K, N, wdec, kTolQuant, [&](int M, const float *x, const float *b, float *y) {
             cu::qlinear_int<K, N, BITS, G>(0, M, x, dq.p, ds.p, asym ? dz.p : nullptr, b, y);
           });
}

template <int K, int N, int BLOCK, bool DQ> void mmaNf4() {
  const int64_t numel = int64_t{N} * K, blocks = (numel + BLOCK - 1) / BLOCK;
  Rng rng(K * 13 + N + BLOCK + DQ);
  std::vector<uint8_t> q((numel + 1) / 2), codes(blocks);
  for (auto &b : q)
    b = static_cast<uint8_t>(rng.index(256));
  for (auto &c : codes)
    c = static_cast<uint8_t>(rng.index(256));
  std::vector<float> absmax(blocks), absmax2((blocks + 255) / 256);
  for (auto &a : absmax)
    a = rng.uniform(0.01f, 2.0f);
  for (auto &a : absmax2)
    a = rng.uniform(0.5f, 3.0f);
  const float offset = DQ ? 0.37f : 0.0f;
  std::vector<double> wdec(numel);
  for (int64_t e = 0; e < numel; ++e) {
    const int64_t b = e / BLOCK;
    float a = absmax[b];
    if (DQ) {
      volatile float scaled = qlc::nf4_dynamic_map[codes[b]] * absmax2[b / 256];
      a = scaled + offset;
    }
    const int c = e % 2 == 0 ? q[e / 2] >> 4 : q[e / 2] & 0xF;
    volatile float w = qlc::nf4_values[c] * a;
    wdec[e] = w;
  }
  DevBuf<uint8_t> dq(q), dcodes(codes);
  DevBuf<float> dabs(absmax), dabs2(absmax2);
  const void *am = DQ ? static_cast<const void *>(dcodes.p) : static_cast<const void *>(dabs.p);
  checkMma(caseName("qlinear_nf4", "K=%d N=%d block%d%s", K, N, BLOCK, DQ ? " dq" : ""), K, N,
           wdec, kTolQuant, [&](int M, const float *x, const float *b, float *y) {
             cu::qlinear_nf4<K, N, BLOCK, DQ>(0, M, x, dq.p, am, dabs2.p, offset, b, y);
           });
}

template <int K, int N> void mmaShape() {
  mmaDense<K, N, cu::f16>("f16");
  mmaDense<K, N, cu::bf16>("bf16");
  mmaInt<K, N, 4, 32>(true);
  mmaInt<K, N, 4, 128>(false);
  mmaInt<K, N, 8, 32>(false);
  mmaInt<K, N, 8, 128>(true);
  mmaNf4<K, N, 64, false>();
  mmaNf4<K, N, 64, true>();
}

// --- benchmark ----------------------------------------------------------------------------

__global__ void fillKernel(int64_t n, uint32_t seed, float amp, float *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    out[i] = amp * ((h & 0xFFFFu) / 65536.0f - 0.5f);
  }
}
__global__ void fillHalfKernel(int64_t n, uint32_t seed, float amp, float base, cu::f16 *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    out[i] = __float2half_rn(base + amp * ((h & 0xFFFFu) / 65536.0f - 0.5f));
  }
}
__global__ void fillBytesKernel(int64_t n, uint32_t seed, uint8_t *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    out[i] = static_cast<uint8_t>(h >> 8);
  }
}

/// Median milliseconds of `launch(rep)` over 20 timed runs after 3 warm-up runs.
template <class Launch> double timeMs(Launch launch) {
  for (int r = 0; r < 3; ++r)
    launch(r);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int r = 0; r < 20; ++r) {
    cudaEventRecord(a);
    launch(r);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return 0.5 * (ms[9] + ms[10]);
}

const int kBlasKey = 0; // the cuBLAS handle of the benchmarks

void benchRow(const char *shape, const char *fmt, int M, int K, int N, double mmaMs,
              double simtMs) {
  const double flop = 2.0 * M * K * N;
  std::printf("%-18s %-8s %5d %10.1f %8.1f %10.1f %8.2f %7.1fx\n", shape, fmt, M, mmaMs * 1e3,
              flop / (mmaMs * 1e-3) / 1e12, simtMs * 1e3, flop / (simtMs * 1e-3) / 1e12,
              simtMs / mmaMs);
}

template <int K, int N> void benchShape(const char *shape) {
  constexpr int kBufs = 4, G = 128;
  constexpr int64_t ROW_BYTES = K / 2, GROUPS = (K + G - 1) / G;
  const int maxM = 2048;
  DevBuf<float> x(int64_t{maxM} * K), y(int64_t{maxM} * N);
  fillKernel<<<1024, 256>>>(x.n, 1, 2.0f, x.p);
  std::vector<DevBuf<cu::f16> *> w, sc;
  std::vector<DevBuf<uint8_t> *> q;
  for (int i = 0; i < kBufs; ++i) {
    w.push_back(new DevBuf<cu::f16>(int64_t{N} * K));
    fillHalfKernel<<<1024, 256>>>(w.back()->n, 7 + i, 0.1f, 0.0f, w.back()->p);
    q.push_back(new DevBuf<uint8_t>(N * ROW_BYTES));
    fillBytesKernel<<<1024, 256>>>(q.back()->n, 11 + i, q.back()->p);
    sc.push_back(new DevBuf<cu::f16>(N * GROUPS));
    fillHalfKernel<<<1024, 256>>>(sc.back()->n, 13 + i, 0.01f, 0.01f, sc.back()->p);
  }
  cudaDeviceSynchronize();
  for (int M : {16, 64, 256, 2048}) {
    const double mma = timeMs([&](int r) {
      cu::linear<K, N, cu::f16>(0, M, x.p, w[r % kBufs]->p, nullptr, y.p);
    });
    const double simt = timeMs([&](int r) {
      cu::launch_gemm<K, N>(0, M, x.p, cu::DenseSrc<K, cu::f16, 1>{w[r % kBufs]->p}, nullptr, y.p);
    });
    benchRow(shape, "f16", M, K, N, mma, simt);
  }
  // int4: what an artifact's step runs (inside a BlasScope: from kBlasMinM rows cuBLAS on
  // dequantized bands) against qlinear_int without the scope (the tensor-core GEMM).
  DevBuf<uint8_t> scratch(cu::blas_scratch_bytes(maxM, cu::blas_ld<K>(),
                                                 cu::blas_band_rows<K, N>() * cu::blas_ld<K>()));
  for (int M : {16, 64, 128, 256, 512, 2048}) {
    const double dispatch = timeMs([&](int r) {
      cu::BlasScope scope(&kBlasKey, scratch.p, scratch.n);
      cu::qlinear_int<K, N, 4, G>(0, M, x.p, q[r % kBufs]->p, sc[r % kBufs]->p, nullptr, nullptr,
                                  y.p);
    });
    const double own = timeMs([&](int r) {
      cu::qlinear_int<K, N, 4, G>(0, M, x.p, q[r % kBufs]->p, sc[r % kBufs]->p, nullptr, nullptr,
                                  y.p);
    });
    benchRow(shape, "int4g128", M, K, N, dispatch, own);
  }
  for (int i = 0; i < kBufs; ++i) {
    delete w[i];
    delete q[i];
    delete sc[i];
  }
}

/// Batch-1..8 decode: the generic GEMV against the tensor-core int4 GEMV (several launch
/// configurations), as microseconds and weight bytes per second (4 rotating weight buffers,
/// 4 x the shape's bytes, so the L2 does not hold them).
template <class Cfg, int K, int N, int G>
double timeGemvW4(int M, const DevBuf<float> &x, DevBuf<float> &y,
                  const std::vector<DevBuf<uint8_t> *> &q,
                  const std::vector<DevBuf<cu::f16> *> &sc) {
  return timeMs([&](int r) {
    cu::launch_gemv_w4<K, N, G, Cfg>(0, M, x.p, q[r % q.size()]->p, sc[r % q.size()]->p, nullptr,
                                     nullptr, y.p);
  });
}

template <int K, int N> void benchGemvShape(const char *shape) {
  constexpr int kBufs = 4, G = 128;
  constexpr int64_t ROW_BYTES = K / 2, GROUPS = (K + G - 1) / G;
  DevBuf<float> x(int64_t{8} * K), y(int64_t{8} * N);
  fillKernel<<<1024, 256>>>(x.n, 1, 2.0f, x.p);
  std::vector<DevBuf<cu::f16> *> sc;
  std::vector<DevBuf<uint8_t> *> q;
  for (int i = 0; i < kBufs; ++i) {
    q.push_back(new DevBuf<uint8_t>(N * ROW_BYTES));
    fillBytesKernel<<<1024, 256>>>(q.back()->n, 11 + i, q.back()->p);
    sc.push_back(new DevBuf<cu::f16>(N * GROUPS));
    fillHalfKernel<<<1024, 256>>>(sc.back()->n, 13 + i, 0.01f, 0.01f, sc.back()->p);
  }
  cudaDeviceSynchronize();
  const double bytes = double(N) * ROW_BYTES + double(N) * GROUPS * 2;
  for (int M : {1, 4, 8}) {
    const double generic = timeMs([&](int r) {
      cu::launch_gemv<K, N>(0, M, x.p,
                            cu::IntSrc<K, 4, G, 16>{q[r % kBufs]->p, sc[r % kBufs]->p, nullptr},
                            nullptr, y.p);
    });
    const double c44 = timeGemvW4<cu::GemvW4Cfg<8, 4>, K, N, G>(M, x, y, q, sc);
    const double c42 = timeGemvW4<cu::GemvW4Cfg<8, 2>, K, N, G>(M, x, y, q, sc);
    const double c82 = timeGemvW4<cu::GemvW4Cfg<4, 2>, K, N, G>(M, x, y, q, sc);
    const double c84 = timeGemvW4<cu::GemvW4Cfg<4, 4>, K, N, G>(M, x, y, q, sc);
    const double c24 = timeGemvW4<cu::GemvW4Cfg<2, 4>, K, N, G>(M, x, y, q, sc);
    const double c48 = timeGemvW4<cu::GemvW4Cfg<4, 8>, K, N, G>(M, x, y, q, sc);
    auto gbs = [&](double ms) { return bytes / (ms * 1e-3) / 1e9; };
    std::printf("%-12s %2d %9.1f %7.0f | %7.1f %7.0f | %7.1f %7.1f %7.1f %7.1f %7.1f\n", shape,
                M, generic * 1e3, gbs(generic), c44 * 1e3, gbs(c44), c42 * 1e3, c82 * 1e3,
                c84 * 1e3, c24 * 1e3, c48 * 1e3);
  }
  for (int i = 0; i < kBufs; ++i) {
    delete q[i];
    delete sc[i];
  }
}

/// Device-to-device copy bandwidth (read + write) of a 1 GiB buffer, GB/s.
double copyBandwidth() {
  const int64_t n = int64_t{1} << 30;
  DevBuf<uint8_t> a(n), b(n);
  const double ms = timeMs([&](int) { cudaMemcpyAsync(b.p, a.p, n, cudaMemcpyDeviceToDevice); });
  return 2.0 * n / (ms * 1e-3) / 1e9;
}

} // namespace

void runMmaTests() {
  mmaShape<200, 75>();
  mmaShape<67, 129>();
  mmaShape<1000, 300>();
  mmaShape<4096, 256>();
  mmaInt<201, 75, 4, 64>(true); // odd K, 4-bit rows padded to whole bytes
  mmaNf4<200, 75, 48, true>();  // blocks straddling rows
  mmaNf4<67, 75, 48, false>();
}

int runMmaBench() {
  std::printf("f16: the tensor-core GEMM against the SIMT GEMM; int4g128: the artifact's "
              "dispatch (cuBLAS on dequantized bands from %lld rows) against the tensor-core "
              "GEMM\n",
              static_cast<long long>(cu::kBlasMinM));
  std::printf("%-18s %-8s %5s %10s %8s %10s %8s %8s\n", "shape KxN", "format", "M", "us", "TFLOP/s",
              "other us", "TFLOP/s", "speedup");
  benchShape<4096, 4096>("4096x4096");
  benchShape<4096, 11008>("4096x11008");
  benchShape<11008, 4096>("11008x4096");
  benchShape<4096, 32000>("4096x32000");
  std::printf("\ncopy (device to device, read + write): %.0f GB/s\n", copyBandwidth());
  std::printf("int4 g128 decode GEMV, weight bytes / time; tensor-core GEMV launch configs "
              "<warps, quads in flight per lane>\n");
  std::printf("%-12s %2s %9s %7s | %7s %7s | %7s %7s %7s %7s %7s\n", "shape KxN", "M",
              "generic", "GB/s", "<8,4>", "GB/s", "<8,2>", "<4,2>", "<4,4>", "<2,4>", "<4,8>");
  benchGemvShape<4096, 4096>("4096x4096");
  benchGemvShape<4096, 12288>("4096x12288");
  benchGemvShape<4096, 22016>("4096x22016");
  benchGemvShape<11008, 4096>("11008x4096");
  benchGemvShape<4096, 11008>("4096x11008");
  benchGemvShape<4096, 32000>("4096x32000");
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::printf("CUDA error: %s\n", cudaGetErrorString(e));
    return 1;
  }
  return 0;
}
