//===- KernelsFusedTest.cpp - kernels of fused graphs -----------------------===//
//
// The kernels the fusion passes introduce (swiglu, split_cols, add_rms_norm, attention
// with a fused rope) against float64 references on random inputs of awkward sizes, and
// bit for bit against the unfused kernels they replace: fused artifacts must give the
// same logits.
//
#include "KernelTestCtx.h"
#include "KernelTestUtil.h"
#include "qlc_x86_kernels.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

using namespace qlc;
using namespace qlc::test;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool sameBits(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Copies columns [off, off + w) of rows of width d.
std::vector<float> columns(const std::vector<float> &x, int64_t M, int d, int off, int w) {
  std::vector<float> out(static_cast<size_t>(M * w));
  for (int64_t m = 0; m < M; ++m)
    for (int i = 0; i < w; ++i)
      out[m * w + i] = x[m * d + off + i];
  return out;
}

template <class Isa, int I> void checkSwiGlu(int64_t M, int threads) {
  auto x = randomFloats(M * 2 * I, 31 + I, -6.0f, 6.0f);
  std::vector<float> y(M * I, kNaN), unfused(M * I, kNaN);
  Ctx ctx(threads);
  x86::swiglu<Isa, I>(&ctx.c, M, x.data(), y.data());
  auto g = columns(x, M, 2 * I, 0, I), u = columns(x, M, 2 * I, I, I);
  x86::silu_mul<Isa, I>(&ctx.c, M, g.data(), u.data(), unfused.data());
  std::vector<double> ref(M * I);
  for (int64_t i = 0; i < M * I; ++i)
    ref[i] = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
  EXPECT_LT(relErr(y, ref), 1e-6) << "swiglu I=" << I << " M=" << M;
  EXPECT_TRUE(sameBits(y, unfused)) << "swiglu differs from silu_mul, I=" << I << " M=" << M;
}

template <class Isa, int D, int OFF, int W> void checkSplit(int64_t M) {
  auto x = randomFloats(M * D, 41 + D);
  std::vector<float> y(M * W, kNaN);
  Ctx ctx(1);
  x86::split_cols<Isa, D, OFF, W>(&ctx.c, M, x.data(), y.data());
  EXPECT_TRUE(sameBits(y, columns(x, M, D, OFF, W)))
      << "split_cols D=" << D << " OFF=" << OFF << " W=" << W << " M=" << M;
}

template <class Isa, int D> void checkAddRmsNorm(int64_t M, int threads) {
  auto a = randomFloats(M * D, 51 + D, -3.0f, 3.0f), b = randomFloats(M * D, 52 + D);
  auto w = randomFloats(D, 53);
  std::vector<float> s(M * D, kNaN), y(M * D, kNaN), s0(M * D, kNaN), y0(M * D, kNaN);
  Ctx ctx(threads);
  x86::add_rms_norm<Isa, D>(&ctx.c, M, a.data(), b.data(), w.data(), 1e-5f, s.data(), y.data());
  x86::add<Isa, D>(&ctx.c, M, a.data(), b.data(), s0.data());
  x86::rms_norm<Isa, D>(&ctx.c, M, s0.data(), w.data(), 1e-5f, y0.data());
  std::vector<double> ref(M * D);
  for (int64_t m = 0; m < M; ++m) {
    double ss = 0;
    for (int i = 0; i < D; ++i) {
      double v = static_cast<double>(a[m * D + i]) + b[m * D + i];
      ss += v * v;
    }
    double inv = 1.0 / std::sqrt(ss / D + 1e-5);
    for (int i = 0; i < D; ++i)
      ref[m * D + i] = w[i] * (static_cast<double>(a[m * D + i]) + b[m * D + i]) * inv;
  }
  EXPECT_LT(relErr(y, ref), 1e-6) << "add_rms_norm D=" << D << " M=" << M;
  EXPECT_TRUE(sameBits(s, s0)) << "add_rms_norm's sum differs from add, D=" << D;
  EXPECT_TRUE(sameBits(y, y0)) << "add_rms_norm differs from add + rms_norm, D=" << D;
  // The sum may overwrite an addend (the residual stream updated in place).
  std::vector<float> a2 = a, y2(M * D, kNaN);
  x86::add_rms_norm<Isa, D>(&ctx.c, M, a2.data(), b.data(), w.data(), 1e-5f, a2.data(), y2.data());
  EXPECT_TRUE(sameBits(a2, s0) && sameBits(y2, y0)) << "in place, D=" << D;
}

/// attention with inv_freq (qlc-fuse-rope) against rope on q and k, then attention: the
/// same outputs and the same cache bytes, bit for bit. Two slots, a prefill of each,
/// then a decode step of both (positions past the prefill, so cached rotated keys are
/// read back). Also with q, k and v read in place from packed rows (the same bits).
template <class Isa, int H, int KVH, int HD, class KV> void checkAttentionRope(int threads,
                                                                               double theta) {
  constexpr int L = 2, layer = 1;
  constexpr int64_t maxSeq = 40;
  const int64_t ROWB = KVH * KV::template head_bytes<HD>();
  std::vector<float> inv(HD / 2);
  for (int i = 0; i < HD / 2; ++i)
    inv[i] = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / HD);
  constexpr int P = 7; // pages of 7 positions, handed out in a shuffled order (same in both)
  PagedKv kvA(2, maxSeq, P, L * 2 * ROWB, 0xEE), kvB(2, maxSeq, P, L * 2 * ROWB, 0xEE),
      kvC(2, maxSeq, P, L * 2 * ROWB, 0xEE);
  Ctx ctx(threads);
  ctx.c.max_seq = maxSeq;
  ctx.c.n_slots = 2;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  auto step = [&](const std::vector<int32_t> &pos, const std::vector<int32_t> &slot, int seed) {
    const int64_t M = static_cast<int64_t>(pos.size());
    std::vector<int32_t> tok(M, 0);
    qlc_step st{};
    st.n_tokens = M;
    st.tokens = tok.data();
    st.positions = pos.data();
    st.slots = slot.data();
    auto q = randomFloats(M * H * HD, seed, -2.0f, 2.0f);
    auto k = randomFloats(M * KVH * HD, seed + 1, -2.0f, 2.0f);
    auto v = randomFloats(M * KVH * HD, seed + 2);
    std::vector<float> qr(q.size(), kNaN), kr(k.size(), kNaN);
    x86::rope<Isa, H * HD, HD>(&ctx.c, M, pos.data(), inv.data(), q.data(), qr.data());
    x86::rope<Isa, KVH * HD, HD>(&ctx.c, M, pos.data(), inv.data(), k.data(), kr.data());
    std::vector<float> outA(M * H * HD, kNaN), outB(M * H * HD, kNaN);
    kvA.attach(ctx.c);
    x86::attention<Isa, L, H, KVH, HD, 0, KV, P>(&ctx.c, &st, layer, scale, qr.data(),
                                                  kr.data(), v.data(), outA.data());
    kvB.attach(ctx.c);
    x86::attention<Isa, L, H, KVH, HD, 0, KV, P>(&ctx.c, &st, layer, scale, q.data(), k.data(),
                                                  v.data(), outB.data(), inv.data());
    // q, k and v as column ranges of one packed row per token (qlc-fold-qkv-split).
    constexpr int64_t W = (H + 2 * KVH) * HD;
    std::vector<float> packed(M * W), outC(M * H * HD, kNaN);
    for (int64_t t = 0; t < M; ++t) {
      std::copy_n(q.begin() + t * H * HD, H * HD, packed.begin() + t * W);
      std::copy_n(k.begin() + t * KVH * HD, KVH * HD, packed.begin() + t * W + H * HD);
      std::copy_n(v.begin() + t * KVH * HD, KVH * HD, packed.begin() + t * W + (H + KVH) * HD);
    }
    kvC.attach(ctx.c);
    x86::attention<Isa, L, H, KVH, HD, 0, KV, P>(
        &ctx.c, &st, layer, scale, packed.data(), packed.data() + H * HD,
        packed.data() + (H + KVH) * HD, outC.data(), inv.data(), W, W);
    const std::string what = "attention+rope H=" + std::to_string(H) + "/" +
                             std::to_string(KVH) + " HD=" + std::to_string(HD) +
                             " M=" + std::to_string(M) + " threads=" + std::to_string(threads);
    EXPECT_TRUE(sameBits(outA, outB)) << what << ": rel " << relErr(outB, std::vector<double>(outA.begin(), outA.end()));
    EXPECT_EQ(0, std::memcmp(kvA.bytes.data(), kvB.bytes.data(), kvA.bytes.size()))
        << what << ": cache differs";
    EXPECT_TRUE(sameBits(outB, outC)) << what << " packed q/k/v";
    EXPECT_EQ(0, std::memcmp(kvB.bytes.data(), kvC.bytes.data(), kvB.bytes.size()))
        << what << ": packed q/k/v: cache differs";
  };
  std::vector<int32_t> pos, slot;
  for (int s = 0; s < 2; ++s)
    for (int p = 0; p < (s == 0 ? 13 : 29); ++p) {
      pos.push_back(p);
      slot.push_back(s);
    }
  step(pos, slot, 61 + HD);
  step({13, 29}, {0, 1}, 71 + HD);
}

template <class Isa> void fusedKernels() {
  for (int threads : {1, 2})
    for (int64_t M : {1, 3, 17, 70}) {
      checkSwiGlu<Isa, 1>(M, threads);
      checkSwiGlu<Isa, 37>(M, threads);
      checkSwiGlu<Isa, 212>(M, threads);
      checkAddRmsNorm<Isa, 13>(M, threads);
      checkAddRmsNorm<Isa, 120>(M, threads);
      checkAddRmsNorm<Isa, 577>(M, threads);
    }
  for (int64_t M : {1, 5, 33}) {
    checkSplit<Isa, 200, 0, 120>(M);
    checkSplit<Isa, 200, 120, 40>(M);
    checkSplit<Isa, 200, 160, 40>(M);
    checkSplit<Isa, 7, 3, 1>(M);
  }
  for (int threads : {1, 3}) {
    checkAttentionRope<Isa, 6, 2, 20, x86::KvF32>(threads, 1e4);
    checkAttentionRope<Isa, 4, 4, 10, x86::KvI8>(threads, 5e5);
    checkAttentionRope<Isa, 8, 2, 64, x86::KvF16>(threads, 1e4);
  }
}

} // namespace

TEST(KernelsFused, Generic) { fusedKernels<x86::Generic>(); }

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
TEST(KernelsFused, Avx2) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")))
    GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C";
  fusedKernels<x86::Avx2>();
}
#endif
