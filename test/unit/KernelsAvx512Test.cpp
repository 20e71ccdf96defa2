//===- KernelsAvx512Test.cpp - AVX-512 instantiation of the kernel tests ---===//
//
// Compiled with AVX-512 enabled; runs only where the CPU has it (skipped elsewhere).
//
#include "KernelTestUtil.h"
#include "qlc_x86_kernels.h"

#include <gtest/gtest.h>

using namespace qlc;
using namespace qlc::test;

TEST(KernelsX86, Avx512LinearAndNorm) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")))
    GTEST_SKIP() << "this CPU has no AVX-512";
  constexpr int K = 577, N = 203;
  for (int64_t M : {1, 5, 70}) {
    auto x = randomFloats(M * K, 3);
    auto w = randomStored<qlc::bf16>(static_cast<size_t>(N) * K, 4);
    std::vector<float> y(M * N, NAN);
    x86::linear<x86::Avx512, K, N, qlc::bf16>(nullptr, M, x.data(), w.data.data(), nullptr, y.data());
    std::vector<double> ref(M * N);
    for (int64_t m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = 0;
        for (int k = 0; k < K; ++k)
          s += static_cast<double>(x[m * K + k]) * w.wide[static_cast<size_t>(n) * K + k];
        ref[m * N + n] = s;
      }
    EXPECT_LT(relErr(y, ref), 1e-6) << "M=" << M;
  }
}
