//===- KernelsNf4Test.cpp - the NF4 kernel and quantizer -------------------===//
//
// qlinear_nf4 against dequantize-then-float64-matmul on random codes and absmax, on
// sizes whose blocks straddle rows and whose rows start on odd nibbles, for every ISA
// this machine runs, serial and threaded; and the kernel's dequantization against the
// quantizer's (passes/Nf4.cpp, compiled in), bit for bit.
//
#include "KernelTestCtx.h"
#include "KernelTestUtil.h"
#include "passes/Nf4.h"
#include "qlc_x86_kernels.h"

#include <gtest/gtest.h>

#include <limits>
#include <memory>

using namespace qlc;
using namespace qlc::test;

namespace {

/// Random NF4 data for a weight of n*k elements: every byte and absmax code random.
struct RandomNf4 {
  RandomNf4(int64_t numel, int64_t block, bool dq, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t blocks = (numel + block - 1) / block;
    q.resize(static_cast<size_t>((numel + 1) / 2));
    for (auto &b : q)
      b = static_cast<uint8_t>(rng() & 0xff);
    absmax = randomFloats(blocks, seed + 1, 0.01f, 2.0f);
    codes.resize(blocks);
    for (auto &c : codes)
      c = static_cast<uint8_t>(rng() & 0xff);
    absmax2 = randomFloats((blocks + 255) / 256, seed + 2, 0.5f, 3.0f);
    offset = dq ? 0.37f : 0.0f;
    // The block absmax as bitsandbytes dequantizes it, then every element in float64.
    std::vector<double> a(blocks);
    for (int64_t b = 0; b < blocks; ++b) {
      const float scaled = nf4_dynamic_map[codes[b]] * absmax2[b / 256];
      a[b] = dq ? static_cast<double>(scaled + offset) : absmax[b];
    }
    w.resize(numel);
    for (int64_t e = 0; e < numel; ++e)
      w[e] = nf4_values[x86::nf4_code_at(q.data(), e)] * a[e / block];
  }
  std::vector<uint8_t> q, codes;
  std::vector<float> absmax, absmax2;
  float offset;
  std::vector<double> w;
};

template <class Isa, int K, int N, int BLOCK, bool DQ>
void checkNf4(int64_t M, bool bias, int threads) {
  RandomNf4 d(static_cast<int64_t>(N) * K, BLOCK, DQ, K * 7 + N + BLOCK + DQ);
  auto x = randomFloats(M * K, 5 + M + K);
  auto b = randomFloats(N, 6);
  std::vector<float> y(M * N, std::numeric_limits<float>::quiet_NaN());
  Ctx ctx(threads);
  const auto *absmax = [&] {
    if constexpr (DQ)
      return d.codes.data();
    else
      return d.absmax.data();
  }();
  x86::qlinear_nf4<Isa, K, N, BLOCK, DQ>(&ctx.c, M, x.data(), d.q.data(), absmax,
                                         d.absmax2.data(), d.offset, bias ? b.data() : nullptr,
                                         y.data());
  std::vector<double> ref(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias ? b[n] : 0.0;
      for (int k = 0; k < K; ++k)
        s += d.w[static_cast<size_t>(n) * K + k] * x[m * K + k];
      ref[m * N + n] = s;
    }
  EXPECT_LT(relErr(y, ref), 2e-6) << "qlinear_nf4<" << Isa::name << ", K=" << K << ", N=" << N
                                  << ", block=" << BLOCK << ", dq=" << DQ << "> M=" << M
                                  << " threads=" << threads;
}

template <class Isa> void nf4Suite() {
  for (int threads : {1, 2})
    for (int64_t M : {1, 3, 4, 17, 70}) {
      checkNf4<Isa, 172, 37, 64, false>(M, true, threads);   // blocks straddle rows
      checkNf4<Isa, 99, 13, 64, false>(M, false, threads);   // odd K: rows start mid-byte
      checkNf4<Isa, 33, 65, 32, true>(M, true, threads);
      checkNf4<Isa, 576, 9, 128, false>(M, false, threads);
      checkNf4<Isa, 64, 5, 64, true>(M, false, threads);     // one block per row
      checkNf4<Isa, 172, 101, 32, true>(M, true, threads);   // 543 blocks: 3 scales2
      checkNf4<Isa, 7, 3, 64, false>(M, true, threads);      // the whole weight one block
    }
}

/// The kernel's dequantization of a row equals the quantizer's dequantizeNf4 (the
/// replica of bitsandbytes'), bit for bit.
template <class Isa, int K, int N, int BLOCK, bool DQ> void checkDequantMatchesQuantizer() {
  auto w = randomFloats(static_cast<size_t>(N) * K, K + N, -0.2f, 0.2f);
  Nf4Quantized q = quantizeNf4(w.data(), static_cast<int64_t>(w.size()), BLOCK, DQ);
  const std::vector<float> ref = dequantizeNf4(q);
  const auto *absmax = [&] {
    if constexpr (DQ)
      return q.absmaxCodes.data();
    else
      return q.absmax.data();
  }();
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    x86::nf4_dequant<Isa, BLOCK, DQ>(q.packed.data(), absmax, q.absmax2.data(), q.offset, n * K,
                                     K, row.data());
    for (int k = 0; k < K; ++k)
      ASSERT_EQ(row[k], ref[n * K + k]) << Isa::name << " K=" << K << " N=" << N
                                        << " dq=" << DQ << " at " << n << "," << k;
    // Pieces of a row, as the packed GEMM asks for them (odd starts, short lengths).
    for (int64_t k0 : {int64_t{1}, int64_t{K / 3}}) {
      const int64_t len = K - k0 - 2 > 0 ? K - k0 - 2 : 1;
      x86::nf4_dequant<Isa, BLOCK, DQ>(q.packed.data(), absmax, q.absmax2.data(), q.offset,
                                       n * K + k0, len, row.data());
      for (int64_t k = 0; k < len; ++k)
        ASSERT_EQ(row[k], ref[n * K + k0 + k]) << Isa::name << " piece at " << n << "," << k0 + k;
    }
  }
}

template <class Isa> void dequantSuite() {
  checkDequantMatchesQuantizer<Isa, 172, 37, 64, false>();
  checkDequantMatchesQuantizer<Isa, 99, 201, 64, true>();
  checkDequantMatchesQuantizer<Isa, 33, 65, 32, false>();
}

bool cpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}

} // namespace

TEST(Nf4, QuantizeRoundTripStaysWithinHalfACodeGap) {
  // NF4's widest gap is between -1 and -0.6962: no element may move by more than half
  // of it times its block's absmax; the absmax element itself is exact.
  auto w = randomFloats(37 * 100, 9, -0.1f, 0.1f);
  Nf4Quantized q = quantizeNf4(w.data(), static_cast<int64_t>(w.size()), 64, false);
  ASSERT_EQ(q.blocks, 58);
  ASSERT_EQ(q.packed.size(), 1850u);
  const std::vector<float> d = dequantizeNf4(q);
  for (size_t e = 0; e < w.size(); ++e) {
    const float a = q.absmax[e / 64];
    EXPECT_LE(std::fabs(d[e] - w[e]), 0.152f * a) << e;
    if (std::fabs(w[e]) == a) {
      EXPECT_EQ(d[e], w[e]) << e;
    }
  }
}

TEST(Nf4, DoubleQuantizedAbsmaxIsCloseAndOffsetIsTheMean) {
  auto w = randomFloats(64 * 300, 10, -1.0f, 1.0f); // 300 blocks: 2 scales2
  Nf4Quantized plain = quantizeNf4(w.data(), static_cast<int64_t>(w.size()), 64, false);
  Nf4Quantized dq = quantizeNf4(w.data(), static_cast<int64_t>(w.size()), 64, true);
  ASSERT_EQ(dq.absmax2.size(), 2u);
  EXPECT_EQ(dq.packed, plain.packed);
  double mean = 0;
  for (float a : plain.absmax)
    mean += a;
  mean /= static_cast<double>(plain.absmax.size());
  EXPECT_NEAR(dq.offset, mean, 1e-6);
  const std::vector<float> a = nf4BlockAbsmax(dq);
  for (size_t b = 0; b < a.size(); ++b)
    EXPECT_NEAR(a[b], plain.absmax[b], 0.02 * plain.absmax[b]) << b;
}

TEST(Nf4, TorchMeanOfFewAndManyElements) {
  // The cascade sum of 7 (scalar path) and 1000 (8 lanes, 4 levels) ones is exact.
  std::vector<float> ones(1000, 1.0f);
  EXPECT_EQ(torchCpuMeanF32(ones.data(), 7), 1.0f);
  EXPECT_EQ(torchCpuMeanF32(ones.data(), 1000), 1.0f);
  std::vector<float> ramp(100);
  for (int i = 0; i < 100; ++i)
    ramp[i] = static_cast<float>(i);
  EXPECT_EQ(torchCpuMeanF32(ramp.data(), 100), 49.5f);
}

TEST(Nf4, Generic) {
  nf4Suite<x86::Generic>();
  dequantSuite<x86::Generic>();
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
TEST(Nf4, Avx2) {
  if (!cpuHasAvx2())
    GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C";
  nf4Suite<x86::Avx2>();
  dequantSuite<x86::Avx2>();
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
// Built into qlc-nf4-tests-avx512 (-march=x86-64-v4), which runs this test alone.
TEST(Nf4, Avx512) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")))
    GTEST_SKIP() << "this CPU has no AVX-512";
  nf4Suite<x86::Avx512>();
  dequantSuite<x86::Avx512>();
}
#endif
