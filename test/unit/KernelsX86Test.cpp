//===- KernelsX86Test.cpp - x86 kernels against float64 references --------===//
//
// Every kernel runs on random inputs of awkward sizes (not multiples of the vector
// width or tile), with output buffers poisoned with NaN beforehand, for every ISA this
// machine can run, single-threaded and on the runtime's thread pool.
//
#include "KernelTestCtx.h"
#include "KernelTestUtil.h"
#include "qlc_x86_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <memory>

using namespace qlc;
using namespace qlc::test;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class Isa, int K, int N, class WT> void checkLinear(int64_t M, bool bias, int threads) {
  auto x = randomFloats(M * K, 1 + M + K);
  auto w = randomStored<WT>(static_cast<size_t>(N) * K, 7 + N);
  auto b = randomFloats(N, 11);
  std::vector<float> y(M * N, kNaN);
  Ctx ctx(threads);
  x86::linear<Isa, K, N, WT>(&ctx.c, M, x.data(), w.data.data(), bias ? b.data() : nullptr, y.data());
  std::vector<double> ref(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias ? b[n] : 0.0;
      for (int k = 0; k < K; ++k)
        s += static_cast<double>(x[m * K + k]) * w.wide[static_cast<size_t>(n) * K + k];
      ref[m * N + n] = s;
    }
  EXPECT_LT(relErr(y, ref), 1e-6) << "linear<" << Isa::name << ", K=" << K << ", N=" << N
                                  << "> M=" << M << " bias=" << bias << " threads=" << threads;
}

template <class Isa, class WT> void linearSuite() {
  for (int threads : {1, 2, 3})
    for (int64_t M : {1, 2, 3, 5, 15, 16, 17, 70}) {
      checkLinear<Isa, 1, 1, WT>(M, false, threads);
      checkLinear<Isa, 7, 13, WT>(M, true, threads);
      checkLinear<Isa, 33, 65, WT>(M, false, threads);
      checkLinear<Isa, 100, 37, WT>(M, true, threads);
      checkLinear<Isa, 172, 64, WT>(M, false, threads);
      checkLinear<Isa, 577, 203, WT>(M, true, threads);
    }
}

/// Quantized projection against dequantize-then-float64-matmul on random integers,
/// scales and zero points (groups that do not divide K included).
template <class Isa, int K, int N, int BITS, int G>
void checkQLinear(int64_t M, bool sym, bool bias, int threads) {
  constexpr int64_t GROUPS = (K + G - 1) / G, ROW = (static_cast<int64_t>(K) * BITS + 7) / 8;
  std::mt19937 rng(K * 31 + N + BITS + G);
  std::vector<uint8_t> q(N * ROW), z(N * GROUPS);
  for (auto &b : q)
    b = static_cast<uint8_t>(rng() & 0xff);
  for (auto &b : z)
    b = static_cast<uint8_t>(rng() % (1 << BITS));
  auto sc = randomStored<qlc::f16>(N * GROUPS, 77);
  auto x = randomFloats(M * K, 5 + M);
  auto b = randomFloats(N, 6);
  std::vector<float> y(M * N, kNaN);
  Ctx ctx(threads);
  x86::qlinear_int<Isa, K, N, BITS, G>(&ctx.c, M, x.data(), q.data(), sc.data.data(),
                                       sym ? nullptr : z.data(), bias ? b.data() : nullptr,
                                       y.data());
  std::vector<double> ref(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias ? b[n] : 0.0;
      for (int k = 0; k < K; ++k) {
        int qi = BITS == 8 ? q[n * ROW + k] : (q[n * ROW + k / 2] >> (4 * (k % 2))) & 0xF;
        int zero = sym ? (1 << (BITS - 1)) : z[n * GROUPS + k / G];
        double w = (qi - zero) * static_cast<double>(sc.wide[n * GROUPS + k / G]);
        s += w * x[m * K + k];
      }
      ref[m * N + n] = s;
    }
  EXPECT_LT(relErr(y, ref), 2e-6) << "qlinear_int<" << Isa::name << ", K=" << K << ", N=" << N
                                  << ", bits=" << BITS << ", g=" << G << "> M=" << M
                                  << " sym=" << sym << " threads=" << threads;
}

/// The act-order variant: columns stored in the order of a random permutation, the input
/// gathered through it; against sum_j W[n, j] * x[perm[j]] in float64.
template <class Isa, int K, int N, int BITS, int G>
void checkQLinearPerm(int64_t M, bool sym, int threads) {
  constexpr int64_t GROUPS = (K + G - 1) / G, ROW = (static_cast<int64_t>(K) * BITS + 7) / 8;
  std::mt19937 rng(K * 17 + N + BITS + G);
  std::vector<uint8_t> q(N * ROW), z(N * GROUPS);
  for (auto &b : q)
    b = static_cast<uint8_t>(rng() & 0xff);
  for (auto &b : z)
    b = static_cast<uint8_t>(rng() % (1 << BITS));
  std::vector<int32_t> perm(K);
  for (int k = 0; k < K; ++k)
    perm[k] = k;
  std::shuffle(perm.begin(), perm.end(), rng);
  auto sc = randomStored<qlc::f16>(N * GROUPS, 78);
  auto x = randomFloats(M * K, 9 + M);
  auto b = randomFloats(N, 7);
  std::vector<float> y(M * N, kNaN), xp(M * K, kNaN);
  Ctx ctx(threads);
  x86::qlinear_int_perm<Isa, K, N, BITS, G>(&ctx.c, M, x.data(), perm.data(), xp.data(),
                                            q.data(), sc.data.data(), sym ? nullptr : z.data(),
                                            b.data(), y.data());
  std::vector<double> ref(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = b[n];
      for (int j = 0; j < K; ++j) {
        int qi = BITS == 8 ? q[n * ROW + j] : (q[n * ROW + j / 2] >> (4 * (j % 2))) & 0xF;
        int zero = sym ? (1 << (BITS - 1)) : z[n * GROUPS + j / G];
        s += (qi - zero) * static_cast<double>(sc.wide[n * GROUPS + j / G]) * x[m * K + perm[j]];
      }
      ref[m * N + n] = s;
    }
  EXPECT_LT(relErr(y, ref), 2e-6) << "qlinear_int_perm<" << Isa::name << ", K=" << K
                                  << ", N=" << N << ", bits=" << BITS << ", g=" << G
                                  << "> M=" << M << " sym=" << sym << " threads=" << threads;
}

template <class Isa> void qlinearSuite() {
  for (int threads : {1, 2})
    for (int64_t M : {1, 3, 5, 70}) {
      checkQLinearPerm<Isa, 168, 37, 4, 32>(M, false, threads); // 168 = 5*32 + 8
      checkQLinearPerm<Isa, 96, 21, 8, 32>(M, true, threads);
    }
  for (int threads : {1, 2})
    for (int64_t M : {1, 3, 4, 17, 70})
      for (bool sym : {false, true}) {
        checkQLinear<Isa, 172, 37, 4, 32>(M, sym, true, threads);  // 172 = 5*32 + 12
        checkQLinear<Isa, 576, 65, 4, 128>(M, sym, false, threads); // 576 = 4*128 + 64
        checkQLinear<Isa, 64, 9, 4, 64>(M, sym, false, threads);
        checkQLinear<Isa, 101, 13, 4, 101>(M, sym, true, threads);   // odd K, per channel
        checkQLinear<Isa, 172, 37, 8, 32>(M, sym, false, threads);
        checkQLinear<Isa, 99, 21, 8, 99>(M, sym, true, threads);
      }
}

template <class Isa, int D> void checkRmsNorm(int64_t M) {
  auto x = randomFloats(M * D, 3 + D, -3.0f, 3.0f);
  auto w = randomFloats(D, 5);
  std::vector<float> y(M * D, kNaN);
  Ctx ctx(2);
  x86::rms_norm<Isa, D>(&ctx.c, M, x.data(), w.data(), 1e-5f, y.data());
  std::vector<double> ref(M * D);
  for (int64_t m = 0; m < M; ++m) {
    double ss = 0;
    for (int i = 0; i < D; ++i)
      ss += static_cast<double>(x[m * D + i]) * x[m * D + i];
    double inv = 1.0 / std::sqrt(ss / D + 1e-5);
    for (int i = 0; i < D; ++i)
      ref[m * D + i] = w[i] * x[m * D + i] * inv;
  }
  EXPECT_LT(relErr(y, ref), 1e-6) << "rms_norm D=" << D << " M=" << M;
}

template <class Isa, int D, int HD> void checkRope(int64_t M) {
  auto x = randomFloats(M * D, 9 + D);
  std::vector<int32_t> pos(M);
  for (int64_t m = 0; m < M; ++m)
    pos[m] = static_cast<int32_t>((m * 37) % 1000);
  std::vector<float> inv(HD / 2);
  for (int i = 0; i < HD / 2; ++i)
    inv[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / HD));
  std::vector<float> y(M * D, kNaN);
  Ctx ctx(2);
  x86::rope<Isa, D, HD>(&ctx.c, M, pos.data(), inv.data(), x.data(), y.data());
  std::vector<double> ref(M * D);
  for (int64_t m = 0; m < M; ++m)
    for (int h = 0; h < D / HD; ++h)
      for (int i = 0; i < HD / 2; ++i) {
        double ang = static_cast<double>(static_cast<float>(pos[m]) * inv[i]);
        double a = x[m * D + h * HD + i], b = x[m * D + h * HD + i + HD / 2];
        ref[m * D + h * HD + i] = a * std::cos(ang) - b * std::sin(ang);
        ref[m * D + h * HD + i + HD / 2] = b * std::cos(ang) + a * std::sin(ang);
      }
  EXPECT_LT(relErr(y, ref), 1e-6) << "rope D=" << D << " HD=" << HD << " M=" << M;
}

template <class Isa, int D, class T> void checkElementwise(int64_t M) {
  auto a = randomFloats(M * D, 21, -6.0f, 6.0f), b = randomFloats(M * D, 22);
  std::vector<float> y(M * D, kNaN), z(M * D, kNaN);
  Ctx ctx(2);
  x86::silu_mul<Isa, D>(&ctx.c, M, a.data(), b.data(), y.data());
  x86::add<Isa, D>(&ctx.c, M, a.data(), b.data(), z.data());
  std::vector<double> ry(M * D), rz(M * D);
  for (int64_t i = 0; i < M * D; ++i) {
    ry[i] = a[i] / (1.0 + std::exp(-static_cast<double>(a[i]))) * b[i];
    rz[i] = static_cast<double>(a[i]) + b[i];
  }
  EXPECT_LT(relErr(y, ry), 1e-6) << "silu_mul D=" << D;
  EXPECT_LT(relErr(z, rz), 1e-7) << "add D=" << D;
  // Embedding: rows of a table in storage type T.
  constexpr int V = 29;
  auto table = randomStored<T>(V * D, 23);
  std::vector<int32_t> ids(M);
  for (int64_t m = 0; m < M; ++m)
    ids[m] = static_cast<int32_t>((m * 11 + 3) % V);
  std::vector<float> e(M * D, kNaN);
  x86::embedding<Isa, D>(&ctx.c, M, ids.data(), table.data.data(), e.data());
  std::vector<double> re(M * D);
  for (int64_t m = 0; m < M; ++m)
    for (int i = 0; i < D; ++i)
      re[m * D + i] = table.wide[static_cast<size_t>(ids[m]) * D + i];
  EXPECT_EQ(relErr(e, re), 0.0) << "embedding D=" << D;
}

/// Attention over a KV cache of several slots: a prefill of each slot's prompt in one
/// step with interleaved tokens, against a float64 softmax over the same keys.
template <class Isa, int H, int KVH, int HD, int WINDOW> void checkAttention(int threads) {
  constexpr int L = 2, layer = 1, KVD = KVH * HD;
  const int slots = 3, maxSeq = 97;
  const int lens[3] = {1, 45, 96};
  std::vector<int32_t> tok, pos, slot;
  for (int s = 0; s < slots; ++s)
    for (int p = 0; p < lens[s]; ++p) {
      pos.push_back(p);
      slot.push_back(s);
    }
  const int64_t M = static_cast<int64_t>(pos.size());
  tok.assign(M, 0);
  auto q = randomFloats(M * H * HD, 31, -2.0f, 2.0f);
  auto k = randomFloats(M * KVD, 32, -2.0f, 2.0f);
  auto v = randomFloats(M * KVD, 33);
  // Pages of 5 positions in a shuffled order (bytes 0xff: NaN where never written).
  constexpr int P = 5;
  qlc::test::PagedKv kv(slots, maxSeq, P, int64_t{L} * 2 * KVD * 4, 0xff);
  std::vector<float> out(M * H * HD, kNaN);
  Ctx ctx(threads);
  kv.attach(ctx.c);
  ctx.c.max_seq = maxSeq;
  ctx.c.n_slots = slots;
  qlc_step st{};
  st.n_tokens = M;
  st.tokens = tok.data();
  st.positions = pos.data();
  st.slots = slot.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  x86::attention<Isa, L, H, KVH, HD, WINDOW, x86::KvF32, P>(&ctx.c, &st, layer, scale, q.data(),
                                                             k.data(), v.data(), out.data());
  std::vector<double> ref(M * H * HD);
  for (int64_t t = 0; t < M; ++t)
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / KVH);
      // Keys of the same slot at positions [lo, pos[t]] are the tokens before t here.
      const int64_t first = t - pos[t];
      const int lo = WINDOW > 0 ? std::max(0, pos[t] - WINDOW + 1) : 0;
      std::vector<double> sc;
      double mx = -INFINITY;
      for (int j = lo; j <= pos[t]; ++j) {
        double s = 0;
        for (int i = 0; i < HD; ++i)
          s += static_cast<double>(q[t * H * HD + h * HD + i]) * k[(first + j) * KVD + g * HD + i];
        sc.push_back(s * scale);
        mx = std::max(mx, sc.back());
      }
      double den = 0;
      for (double &s : sc)
        den += (s = std::exp(s - mx));
      for (int i = 0; i < HD; ++i) {
        double acc = 0;
        for (int j = lo; j <= pos[t]; ++j)
          acc += sc[j - lo] * v[(first + j) * KVD + g * HD + i];
        ref[t * H * HD + h * HD + i] = acc / den;
      }
    }
  EXPECT_LT(relErr(out, ref), 2e-6) << "attention H=" << H << " KVH=" << KVH << " HD=" << HD
                                    << " window=" << WINDOW << " threads=" << threads;
  // Decode one more token for slot 2 and check it sees the cached keys.
  std::vector<int32_t> p1 = {lens[2]}, s1 = {2}, t1 = {0};
  if (lens[2] < maxSeq) {
    auto q1 = randomFloats(H * HD, 41), k1 = randomFloats(KVD, 42), v1 = randomFloats(KVD, 43);
    std::vector<float> o1(H * HD, kNaN);
    qlc_step s{};
    s.n_tokens = 1;
    s.tokens = t1.data();
    s.positions = p1.data();
    s.slots = s1.data();
    x86::attention<Isa, L, H, KVH, HD, WINDOW, x86::KvF32, P>(&ctx.c, &s, layer, scale, q1.data(),
                                                               k1.data(), v1.data(), o1.data());
    for (float f : o1)
      ASSERT_TRUE(std::isfinite(f));
  }
}

template <class Isa> void allKernels() {
  qlinearSuite<Isa>();
  linearSuite<Isa, float>();
  linearSuite<Isa, qlc::bf16>();
  linearSuite<Isa, qlc::f16>();
  for (int64_t M : {1, 3, 17}) {
    checkRmsNorm<Isa, 1>(M);
    checkRmsNorm<Isa, 20>(M);
    checkRmsNorm<Isa, 172>(M);
    checkRope<Isa, 40, 20>(M);
    checkRope<Isa, 120, 24>(M);
    checkRope<Isa, 64, 8>(M);
    checkElementwise<Isa, 13, float>(M);
    checkElementwise<Isa, 100, qlc::bf16>(M);
    checkElementwise<Isa, 212, qlc::f16>(M);
  }
  for (int threads : {1, 2}) {
    checkAttention<Isa, 6, 2, 20, 0>(threads);
    checkAttention<Isa, 5, 1, 24, 0>(threads);
    checkAttention<Isa, 4, 4, 16, 17>(threads);
    checkAttention<Isa, 8, 4, 8, 0>(threads);
  }
}

bool cpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}

} // namespace

TEST(KernelsX86, Generic) { allKernels<x86::Generic>(); }

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
TEST(KernelsX86, Avx2) {
  if (!cpuHasAvx2())
    GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C";
  allKernels<x86::Avx2>();
}
#endif
