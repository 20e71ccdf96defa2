// cuda_tiling_test.cu - the projections under every tiling qlc-select-tiling can choose.
//
// passes/Tiling.cpp lists the CUDA candidates per M-range: GEMV (warps, rows, unroll) for
// M <= 8; tensor-core tiles (bm, bn, warps_m, warps_n) with a split-K cap of 16 or 1 for
// M 9..32 and M > 32. The eight combined configs below hold every one of them (config i
// takes decode candidate i % 4, small and prefill tile i % 4, cap 16 for i < 4 and 1
// after). Each runs weight formats on awkward shapes (K = 1000: split-K, wide staging;
// K = 67: element-wise staging, nothing a multiple of a tile), M over all three ranges,
// against float64 references: the GEMV's and the f32 SIMT GEMM's exact f32 products
// (tolerance 1e-5), the mma path's activations rounded to f16 (1e-4 for f16/bf16, 1e-3 for
// quantized weights).
#include "qlc_cuda_kernels.cuh"
#include "qlc_nf4_tables.h"

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda_test_util.h"

namespace cu = qlc::cuda;
using namespace qlc::cudatest;

namespace {

const int kMs[] = {1, 2, 3, 5, 8, 9, 17, 32, 33, 70, 300};

template <int W, int R, int U> using G = cu::GemvCfg<W, R, U>;
/// Candidate i of each range; U: the weight source's default unroll (4 dense, 8 quantized).
template <int U, int I> struct Pick;
template <int U> struct Pick<U, 0> { using D = G<4, 2, U>;     using S = cu::MmaCfg<32, 128, 1, 4, 16>; using P = cu::MmaCfg<128, 128, 2, 4, 16>; };
template <int U> struct Pick<U, 1> { using D = G<4, 1, U>;     using S = cu::MmaCfg<32, 64, 1, 2, 16>;  using P = cu::MmaCfg<64, 128, 2, 4, 16>; };
template <int U> struct Pick<U, 2> { using D = G<2, 1, U>;     using S = cu::MmaCfg<16, 128, 1, 4, 16>; using P = cu::MmaCfg<64, 64, 2, 2, 16>; };
template <int U> struct Pick<U, 3> { using D = G<4, 4, U / 2>; using S = cu::MmaCfg<16, 64, 1, 2, 16>;  using P = cu::MmaCfg<128, 64, 2, 2, 16>; };
template <int U> struct Pick<U, 4> { using D = G<4, 2, U>;     using S = cu::MmaCfg<32, 128, 1, 4, 1>;  using P = cu::MmaCfg<128, 128, 2, 4, 1>; };
template <int U> struct Pick<U, 5> { using D = G<4, 1, U>;     using S = cu::MmaCfg<32, 64, 1, 2, 1>;   using P = cu::MmaCfg<64, 128, 2, 4, 1>; };
template <int U> struct Pick<U, 6> { using D = G<2, 1, U>;     using S = cu::MmaCfg<16, 128, 1, 4, 1>;  using P = cu::MmaCfg<64, 64, 2, 2, 1>; };
template <int U> struct Pick<U, 7> { using D = G<4, 4, U / 2>; using S = cu::MmaCfg<16, 64, 1, 2, 1>;   using P = cu::MmaCfg<128, 64, 2, 2, 1>; };
template <int U, int I>
using Cfg = cu::Tiling<typename Pick<U, I>::D, typename Pick<U, I>::S, typename Pick<U, I>::P>;

double roundF16(float v) { return __half2float(__float2half_rn(v)); }

/// Runs `launch` for every M against y = x W^T + bias in float64 (x rounded to f16 for
/// M > 8, as the tensor-core path stages it).
template <class Launch>
void checkAllM(const std::string &name, int K, int N, const std::vector<double> &w, bool quant,
               Launch launch, bool roundsX = true) {
  Rng rng(K * 7 + N);
  auto bias = rng.floats(N, 1.0f);
  DevBuf<float> db(bias);
  for (int M : kMs) {
    auto x = rng.floats(int64_t{M} * K, 1.0f);
    DevBuf<float> dx(x), y(int64_t{M} * N);
    y.poison();
    launch(M, dx.p, db.p, y.p);
    std::vector<double> ref(int64_t{M} * N);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = bias[n];
        for (int k = 0; k < K; ++k) {
          const float xv = x[int64_t{m} * K + k];
          s += (roundsX && M > cu::kGemvMaxM ? roundF16(xv) : xv) * w[int64_t{n} * K + k];
        }
        ref[int64_t{m} * N + n] = s;
      }
    check("tiling " + name, M, y, ref,
          !roundsX || M <= cu::kGemvMaxM ? 1e-5 : quant ? 1e-3 : 1e-4);
  }
}

template <int I, int K, int N, class WT> void dense(const char *tn) {
  Rng rng(K * 3 + N + I);
  auto w = rng.weights<WT>(int64_t{N} * K, 1.0f);
  std::vector<double> wd(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    wd[i] = toFloat(w[i]);
  DevBuf<WT> dw(w);
  checkAllM(caseName("linear", "cfg%d K=%d N=%d %s", I, K, N, tn), K, N, wd, false,
            [&](int M, const float *x, const float *b, float *y) {
              cu::linear<K, N, WT, Cfg<4, I>>(0, M, x, dw.p, b, y);
            },
            !std::is_same<WT, float>::value); // f32 weights: the SIMT GEMM, exact f32 x
}

template <int I, int K, int N, int BITS, int GS> void qint() {
  Rng rng(K * 11 + N + BITS + GS + I);
  IntWeights<K, N, BITS, GS> w(rng, true);
  const std::vector<double> &wd = w.wdec;
  DevBuf<uint8_t> dq(w.q), dz(w.zeros);
  DevBuf<cu::f16> ds(w.scales);
  checkAllM(caseName("qlinear_int", "cfg%d K=%d N=%d b%d g%d", I, K, N, BITS, GS), K, N, wd, true,
            [&](int M, const float *x, const float *b, float *y) {
              cu::qlinear_int<K, N, BITS, GS, Cfg<8, I>>(0, M, x, dq.p, ds.p, dz.p, b, y);
            });
}

template <int I, int K, int N, int BLOCK, bool DQ> void nf4() {
  const int64_t numel = int64_t{N} * K, blocks = (numel + BLOCK - 1) / BLOCK;
  Rng rng(K * 13 + N + BLOCK + DQ + I);
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
  std::vector<double> wd(numel);
  for (int64_t e = 0; e < numel; ++e) {
    const int64_t b = e / BLOCK;
    float a = absmax[b];
    if (DQ) {
      volatile float scaled = qlc::nf4_dynamic_map[codes[b]] * absmax2[b / 256];
      a = scaled + offset;
    }
    const int c = e % 2 == 0 ? q[e / 2] >> 4 : q[e / 2] & 0xF;
    volatile float w = qlc::nf4_values[c] * a;
    wd[e] = w;
  }
  DevBuf<uint8_t> dq(q), dcodes(codes);
  DevBuf<float> dabs(absmax), dabs2(absmax2);
  const void *am = DQ ? static_cast<const void *>(dcodes.p) : static_cast<const void *>(dabs.p);
  checkAllM(caseName("qlinear_nf4", "cfg%d K=%d N=%d block%d%s", I, K, N, BLOCK, DQ ? " dq" : ""),
            K, N, wd, true, [&](int M, const float *x, const float *b, float *y) {
              cu::qlinear_nf4<K, N, BLOCK, DQ, Cfg<8, I>>(0, M, x, dq.p, am, dabs2.p, offset, b, y);
            });
}

/// Four cases a config (the kernels' source types that matter: 16-byte dense rows, 8-code
/// int units, NF4 with a double-quantized absmax, and K = 67 with element-wise staging);
/// the other formats under two configs whose tiles all differ from the defaults, to keep
/// nvcc's instantiations in check.
template <int I> void config() {
  dense<I, 1000, 75, cu::f16>("f16");
  dense<I, 67, 129, cu::bf16>("bf16");
  qint<I, 1000, 75, 4, 32>();
  nf4<I, 1000, 75, 64, true>();
  if constexpr (I == 2 || I == 7) {
    dense<I, 67, 129, float>("f32");
    qint<I, 1000, 75, 8, 128>();
    qint<I, 67, 129, 4, 32>();
    nf4<I, 67, 129, 48, false>();
  }
}

} // namespace

void runTilingTests() {
  config<0>();
  config<1>();
  config<2>();
  config<3>();
  config<4>();
  config<5>();
  config<6>();
  config<7>();
}
