//===- KernelsTilingTest.cpp - x86 projections under every selectable tiling ===//
//
// qlc-select-tiling picks, per M-range, template parameters of the projection kernels
// (qlc::x86::Tiling). Every candidate it can choose for an ISA is instantiated here in
// one of a few combined configs and checked against a float64 reference on awkward
// shapes, for M across every range (GEMV, register tiles, packed GEMM), dense, int4,
// int8 and NF4 weights, single-threaded and on the thread pool. The last test asks the
// pass's candidate lists (passes/Tiling.cpp) and fails if one is not covered here.
// Compiled twice: with AVX2 (Generic and Avx2 run) and with AVX-512 (Avx512 runs where
// the CPU has it).
//
#include "KernelTestCtx.h"
#include "KernelTestUtil.h"
#include "passes/Tiling.h"
#include "qlc_x86_kernels.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <set>
#include <tuple>

using namespace qlc;
using namespace qlc::test;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const int64_t kMs[] = {1, 2, 3, 4, 5, 15, 16, 17, 70};

template <class Isa, class T, int K, int N, class WT> void checkLinear(int threads) {
  auto w = randomStored<WT>(static_cast<size_t>(N) * K, 7 + N);
  auto b = randomFloats(N, 11);
  Ctx ctx(threads);
  for (int64_t M : kMs) {
    auto x = randomFloats(M * K, 1 + M + K);
    std::vector<float> y(M * N, kNaN);
    x86::linear<Isa, K, N, WT, T>(&ctx.c, M, x.data(), w.data.data(), b.data(), y.data());
    std::vector<double> ref(M * N);
    for (int64_t m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = b[n];
        for (int k = 0; k < K; ++k)
          s += static_cast<double>(x[m * K + k]) * w.wide[static_cast<size_t>(n) * K + k];
        ref[m * N + n] = s;
      }
    EXPECT_LT(relErr(y, ref), 1e-6) << "linear K=" << K << " N=" << N << " M=" << M
                                    << " threads=" << threads;
  }
}

template <class Isa, class T, int K, int N, int BITS, int G> void checkInt(int threads) {
  constexpr int64_t GROUPS = (K + G - 1) / G, ROW = (static_cast<int64_t>(K) * BITS + 7) / 8;
  std::mt19937 rng(K * 31 + N + BITS + G);
  std::vector<uint8_t> q(N * ROW), z(N * GROUPS);
  for (auto &v : q)
    v = static_cast<uint8_t>(rng() & 0xff);
  for (auto &v : z)
    v = static_cast<uint8_t>(rng() % (1 << BITS));
  auto sc = randomStored<qlc::f16>(N * GROUPS, 77);
  Ctx ctx(threads);
  for (int64_t M : kMs) {
    auto x = randomFloats(M * K, 5 + M);
    std::vector<float> y(M * N, kNaN);
    x86::qlinear_int<Isa, K, N, BITS, G, T>(&ctx.c, M, x.data(), q.data(), sc.data.data(),
                                            z.data(), nullptr, y.data());
    std::vector<double> ref(M * N);
    for (int64_t m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = 0.0;
        for (int k = 0; k < K; ++k) {
          int qi = BITS == 8 ? q[n * ROW + k] : (q[n * ROW + k / 2] >> (4 * (k % 2))) & 0xF;
          s += (qi - z[n * GROUPS + k / G]) * static_cast<double>(sc.wide[n * GROUPS + k / G]) *
               x[m * K + k];
        }
        ref[m * N + n] = s;
      }
    EXPECT_LT(relErr(y, ref), 2e-6) << "qlinear_int K=" << K << " N=" << N << " bits=" << BITS
                                    << " M=" << M << " threads=" << threads;
  }
}

template <class Isa, class T, int K, int N, int BLOCK> void checkNf4(int threads) {
  const int64_t numel = static_cast<int64_t>(N) * K, blocks = (numel + BLOCK - 1) / BLOCK;
  std::mt19937 rng(K + N);
  std::vector<uint8_t> q((numel + 1) / 2);
  for (auto &v : q)
    v = static_cast<uint8_t>(rng() & 0xff);
  auto absmax = randomFloats(blocks, 3, 0.01f, 2.0f);
  Ctx ctx(threads);
  for (int64_t M : kMs) {
    auto x = randomFloats(M * K, 9 + M);
    std::vector<float> y(M * N, kNaN);
    x86::qlinear_nf4<Isa, K, N, BLOCK, false, T>(&ctx.c, M, x.data(), q.data(), absmax.data(),
                                                 nullptr, 0.0f, nullptr, y.data());
    std::vector<double> ref(M * N);
    for (int64_t m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = 0.0;
        for (int k = 0; k < K; ++k) {
          const int64_t e = static_cast<int64_t>(n) * K + k;
          s += static_cast<double>(nf4_values[x86::nf4_code_at(q.data(), e)] *
                                   absmax[e / BLOCK]) *
               x[m * K + k];
        }
        ref[m * N + n] = s;
      }
    EXPECT_LT(relErr(y, ref), 2e-6) << "qlinear_nf4 K=" << K << " N=" << N << " M=" << M
                                    << " threads=" << threads;
  }
}

template <class Isa, class T> void checkConfig() {
  SCOPED_TRACE(::testing::Message()
               << Isa::name << " Tiling<" << T::gemv_rows << ", " << T::small_mr << ", "
               << T::small_nr << ", " << T::gemm_mr << ", " << T::gemm_nv << ", " << T::gemm_kc
               << ">");
  for (int threads : {1, 3}) {
    checkLinear<Isa, T, 100, 37, float>(threads);
    checkLinear<Isa, T, 577, 203, qlc::bf16>(threads);
    checkInt<Isa, T, 172, 45, 4, 32>(threads);
    checkInt<Isa, T, 100, 61, 8, 100>(threads);
    checkNf4<Isa, T, 96, 37, 64>(threads);
  }
}

/// The combined configs per ISA: together they hold every candidate of passes/Tiling.cpp.
using GenericConfigs =
    std::tuple<x86::Tiling<4, 4, 2, 4, 4, 1024>, x86::Tiling<8, 2, 4, 6, 2, 2048>,
               x86::Tiling<2, 2, 2, 4, 4, 1024>>;
using Avx2Configs = std::tuple<x86::Tiling<4, 4, 2, 6, 2, 256>, x86::Tiling<8, 2, 4, 4, 3, 168>,
                               x86::Tiling<2, 2, 2, 8, 1, 512>>;
using Avx512Configs =
    std::tuple<x86::Tiling<4, 4, 4, 12, 2, 128>, x86::Tiling<8, 4, 2, 8, 3, 80>,
               x86::Tiling<16, 2, 4, 6, 4, 64>, x86::Tiling<2, 2, 2, 12, 2, 128>>;

template <class Isa, class... T> void checkAll(std::tuple<T...> *) { (checkConfig<Isa, T>(), ...); }

/// What a config list covers: decode rows, small (mr, nr), prefill (mr, nv, kc).
struct Covered {
  std::set<int64_t> rows;
  std::set<std::pair<int64_t, int64_t>> small;
  std::set<std::tuple<int64_t, int64_t, int64_t>> prefill;
};
template <class... T> Covered covered(std::tuple<T...> *) {
  Covered c;
  ((c.rows.insert(T::gemv_rows), c.small.insert({T::small_mr, T::small_nr}),
    c.prefill.insert({T::gemm_mr, T::gemm_nv, T::gemm_kc})),
   ...);
  return c;
}

int64_t param(const TileConfig &c, const char *k) {
  for (const auto &[n, v] : c)
    if (n == k)
      return v;
  return -1;
}

void expectCovered(const std::string &target, const Covered &cov) {
  const auto desc = lookupTargetDesc(target);
  ASSERT_TRUE(desc);
  for (ProjShape::Family f : {ProjShape::Dense, ProjShape::Int, ProjShape::Nf4})
    for (auto [k, n] :
         std::vector<std::pair<int64_t, int64_t>>{{64, 8}, {4096, 11008}, {172, 64}}) {
      ProjShape s{f, "k", k, n};
      for (const TilingRange &r : tilingRanges(*desc, s))
        for (const TileConfig &c : r.candidates) {
          bool ok = r.name == "decode"  ? cov.rows.count(param(c, "rows")) > 0
                    : r.name == "small" ? cov.small.count({param(c, "mr"), param(c, "nr")}) > 0
                                        : cov.prefill.count({param(c, "mr"), param(c, "nv"),
                                                             param(c, "kc")}) > 0;
          EXPECT_TRUE(ok) << target << " " << r.name << " candidate {" << formatTileConfig(c)
                          << "} is not tested";
        }
    }
}

} // namespace

#if defined(__AVX512F__)
TEST(KernelsTiling, Avx512) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")))
    GTEST_SKIP() << "this CPU has no AVX-512";
  checkAll<x86::Avx512>(static_cast<Avx512Configs *>(nullptr));
}
#else
TEST(KernelsTiling, Generic) { checkAll<x86::Generic>(static_cast<GenericConfigs *>(nullptr)); }
TEST(KernelsTiling, Avx2) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")))
    GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C";
  checkAll<x86::Avx2>(static_cast<Avx2Configs *>(nullptr));
}
TEST(KernelsTiling, EveryCandidateIsTested) {
  expectCovered("x86-64", covered(static_cast<GenericConfigs *>(nullptr)));
  expectCovered("x86-64-v3", covered(static_cast<Avx2Configs *>(nullptr)));
  expectCovered("x86-64-v4", covered(static_cast<Avx512Configs *>(nullptr))); // run by -avx512
}
#endif
