//===- KernelsKvCacheTest.cpp - attention over f16 and int8 KV caches ------===//
//
// The attention kernel with each KV storage format, on random inputs of awkward head
// sizes (20, 24: not multiples of the vector width), GQA, a sliding window and several
// slots. The cache arena starts filled with 0xff bytes (NaN in every float format), so a
// read of a position that was never written shows. Three checks per case:
//   1. the encoding: the cache's bytes, decoded by this test from the documented
//      layout, are the round-to-nearest f16 of the step's k/v, or int8 codes within
//      half a step of them with scale = (max - min) / 255 and zero = min per token and
//      head;
//   2. the attention: the kernel's output against a float64 softmax over the decoded
//      cache (what the kernel should compute from it), and, loosely, against the
//      unquantized keys and values;
//   3. prefill = decode: writing the same tokens one step each gives the same cache
//      bytes and the same outputs (the quantization is per token, never per chunk).
//
#include "KernelTestCtx.h"
#include "KernelTestUtil.h"
#include "qlc_x86_kernels.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <memory>
#include <string>

using namespace qlc;
using namespace qlc::test;

namespace {

float f32At(const uint8_t *p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
float halfAt(const uint8_t *p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

/// Decodes one cached head of HD channels as the layout documents it.
template <class KV, int HD> std::vector<double> decodeHead(const uint8_t *h) {
  std::vector<double> out(HD);
  for (int i = 0; i < HD; ++i) {
    if constexpr (std::is_same_v<KV, x86::KvF32>) {
      out[i] = f32At(h + 4 * i);
    } else if constexpr (std::is_same_v<KV, x86::KvF16>) {
      out[i] = halfAt(h + 2 * i);
    } else {
      out[i] = static_cast<double>(halfAt(h + 2)) + static_cast<double>(halfAt(h)) * h[4 + i];
    }
  }
  return out;
}

/// Checks that the cached head `h` encodes the f32 values x[0:HD) as KV prescribes.
template <class KV, int HD> void checkEncoding(const uint8_t *h, const float *x, std::string &bad) {
  if constexpr (std::is_same_v<KV, x86::KvF16>) {
    for (int i = 0; i < HD; ++i) {
      uint16_t bits;
      std::memcpy(&bits, h + 2 * i, 2);
      if (bits != _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT))
        bad = "f16 value " + std::to_string(x[i]) + " not rounded to nearest";
    }
  } else if constexpr (std::is_same_v<KV, x86::KvI8>) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < HD; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    // The zero is the largest half <= min; the scale the smallest half that still
    // reaches max (or one ulp above the nearest).
    const double scale = halfAt(h), zero = halfAt(h + 2), need = (hi - zero) / 255.0;
    if (zero > lo || lo - zero > std::abs(lo) * 0x1p-10 + 0x1p-24 || scale * 255.0 < hi - zero ||
        scale > need * (1 + 0x1p-10) + 0x1p-24)
      bad = "int8 scale/zero " + std::to_string(scale) + "/" + std::to_string(zero) +
            " for range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    const std::vector<double> d = decodeHead<KV, HD>(h);
    for (int i = 0; i < HD; ++i)
      if (std::abs(d[i] - x[i]) > 0.5 * scale * (1 + 1e-3) + 1e-7 * std::abs(x[i]))
        bad = "int8 code off by more than half a step: " + std::to_string(x[i]) + " -> " +
              std::to_string(d[i]);
  }
}

/// float64 attention of every token over the decoded cache, and over the exact k/v.
template <int H, int KVH, int HD, int WINDOW>
void reference(const std::vector<float> &q, const std::vector<int32_t> &pos,
               const std::vector<int32_t> &slot, const std::vector<double> *keys,
               const std::vector<double> *vals, int maxSeq, float scale,
               std::vector<double> &ref) {
  const int64_t M = static_cast<int64_t>(pos.size());
  ref.assign(M * H * HD, 0.0);
  for (int64_t t = 0; t < M; ++t)
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / KVH);
      const int lo = WINDOW > 0 ? std::max(0, pos[t] - WINDOW + 1) : 0;
      auto at = [&](const std::vector<double> *c, int p) {
        return c[(static_cast<int64_t>(slot[t]) * maxSeq + p) * KVH + g].data();
      };
      std::vector<double> sc;
      double mx = -INFINITY;
      for (int j = lo; j <= pos[t]; ++j) {
        const double *kr = at(keys, j);
        double s = 0;
        for (int i = 0; i < HD; ++i)
          s += static_cast<double>(q[t * H * HD + h * HD + i]) * kr[i];
        sc.push_back(s * scale);
        mx = std::max(mx, sc.back());
      }
      double den = 0;
      for (double &s : sc)
        den += (s = std::exp(s - mx));
      for (int j = lo; j <= pos[t]; ++j) {
        const double *vr = at(vals, j);
        for (int i = 0; i < HD; ++i)
          ref[t * H * HD + h * HD + i] += sc[j - lo] * vr[i] / den;
      }
    }
}

template <class Isa, class KV, int H, int KVH, int HD, int WINDOW, int P>
void checkKv(int threads) {
  constexpr int L = 2, layer = 1, KVD = KVH * HD;
  constexpr int64_t HB = KV::template head_bytes<HD>(), ROWB = KVH * HB;
  const int slots = 3, maxSeq = 61;
  const int lens[3] = {1, 29, 60};
  std::vector<int32_t> pos, slot;
  for (int s = 0; s < slots; ++s)
    for (int p = 0; p < lens[s]; ++p) {
      pos.push_back(p);
      slot.push_back(s);
    }
  const int64_t M = static_cast<int64_t>(pos.size());
  std::vector<int32_t> tok(M, 0);
  auto q = randomFloats(M * H * HD, 51 + HD, -2.0f, 2.0f);
  auto k = randomFloats(M * KVD, 52 + HD, -3.0f, 3.0f);
  auto v = randomFloats(M * KVD, 53 + HD);
  for (int64_t t = 0; t < M; t += 7) // outliers: one channel per head far off the rest
    k[t * KVD + (t % HD)] = 25.0f;
  // Pages of P positions, handed to the slots in a shuffled order.
  qlc::test::PagedKv cache(slots, maxSeq, P, x86::kv_position_bytes<KV, L, KVH, HD>(), 0xff);
  qlc::test::PagedKv stepped = cache;
  std::vector<float> out(M * H * HD, NAN), outStepped(M * H * HD, NAN);
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const std::string what = std::string("attention<") + Isa::name + ", " + KV::name + "> H=" +
                           std::to_string(H) + " KVH=" + std::to_string(KVH) + " HD=" +
                           std::to_string(HD) + " window=" + std::to_string(WINDOW) +
                           " page=" + std::to_string(P) + " threads=" + std::to_string(threads);
  Ctx ctx(threads);
  ctx.c.max_seq = maxSeq;
  ctx.c.n_slots = slots;
  auto run = [&](qlc::test::PagedKv &kv, int64_t first, int64_t n, float *o) {
    kv.attach(ctx.c);
    qlc_step st{};
    st.n_tokens = n;
    st.tokens = tok.data() + first;
    st.positions = pos.data() + first;
    st.slots = slot.data() + first;
    x86::attention<Isa, L, H, KVH, HD, WINDOW, KV, P>(&ctx.c, &st, layer, scale,
                                                  q.data() + first * H * HD,
                                                  k.data() + first * KVD, v.data() + first * KVD,
                                                  o + first * H * HD);
  };
  run(cache, 0, M, out.data());

  // 1. Encoding, and the decoded cache per (slot, position, head).
  const size_t heads = static_cast<size_t>(slots) * maxSeq * KVH;
  std::vector<std::vector<double>> dk(heads), dv(heads), ek(heads), ev(heads);
  std::string bad;
  for (int64_t t = 0; t < M; ++t)
    for (int g = 0; g < KVH; ++g) {
      const uint8_t *kh = cache.row(slot[t], layer, L, 0, pos[t], ROWB) + g * HB;
      const uint8_t *vh = cache.row(slot[t], layer, L, 1, pos[t], ROWB) + g * HB;
      checkEncoding<KV, HD>(kh, &k[t * KVD + g * HD], bad);
      checkEncoding<KV, HD>(vh, &v[t * KVD + g * HD], bad);
      const size_t i = (static_cast<size_t>(slot[t]) * maxSeq + pos[t]) * KVH + g;
      dk[i] = decodeHead<KV, HD>(kh);
      dv[i] = decodeHead<KV, HD>(vh);
      ek[i].assign(k.begin() + t * KVD + g * HD, k.begin() + t * KVD + (g + 1) * HD);
      ev[i].assign(v.begin() + t * KVD + g * HD, v.begin() + t * KVD + (g + 1) * HD);
    }
  EXPECT_EQ(bad, "") << what;

  // 2. Attention over the decoded cache (tight) and over the exact k/v (loose).
  std::vector<double> ref, exact;
  reference<H, KVH, HD, WINDOW>(q, pos, slot, dk.data(), dv.data(), maxSeq, scale, ref);
  reference<H, KVH, HD, WINDOW>(q, pos, slot, ek.data(), ev.data(), maxSeq, scale, exact);
  EXPECT_LT(relErr(out, ref), 2e-6) << what;
  const double loose = std::is_same_v<KV, x86::KvI8> ? 2e-2 : std::is_same_v<KV, x86::KvF16> ? 2e-3 : 2e-6;
  EXPECT_LT(relErr(out, exact), loose) << what << " against unquantized k/v";

  // 3. The same tokens one step each: identical cache bytes, same outputs.
  for (int64_t t = 0; t < M; ++t)
    run(stepped, t, 1, outStepped.data());
  EXPECT_TRUE(cache.bytes == stepped.bytes) << what << ": token-by-token steps stored other bytes";
  std::vector<double> outWide(out.begin(), out.end());
  EXPECT_LT(relErr(outStepped, outWide), 1e-6) << what;
}

template <class Isa, class KV> void kvSuite() {
  for (int threads : {1, 2}) {
    // Page sizes: the x86 default (32), pages smaller than the kernel's block of 32
    // positions, larger ones, and one position a page.
    checkKv<Isa, KV, 6, 2, 20, 0, 7>(threads);
    checkKv<Isa, KV, 5, 1, 24, 0, 32>(threads);
    checkKv<Isa, KV, 4, 4, 16, 17, 5>(threads);
    checkKv<Isa, KV, 8, 4, 8, 0, 64>(threads);
    checkKv<Isa, KV, 4, 2, 64, 9, 1>(threads);
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
// In qlc-kernel-tests-avx512 (compiled for x86-64-v4): the AVX-512 instantiation only.
TEST(KvCache, Avx512) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")))
    GTEST_SKIP() << "this CPU has no AVX-512";
  kvSuite<x86::Avx512, x86::KvF32>();
  kvSuite<x86::Avx512, x86::KvF16>();
  kvSuite<x86::Avx512, x86::KvI8>();
}
#else
/// The f16 encoder against the hardware's conversion on awkward values: subnormals,
/// halfway cases, overflow, infinities and NaN.
TEST(KvCache, F16RoundsToNearestEven) {
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f,
                           INFINITY, -INFINITY, 6.1035e-05f, 5.96e-08f, 2.98e-08f, 1e-9f,
                           1.00048828125f, 1.00146484375f, -3.1415926f};
  auto r = randomFloats(4000, 9, -70000.0f, 70000.0f);
  xs.insert(xs.end(), r.begin(), r.end());
  for (float x : randomFloats(4000, 10, -1e-4f, 1e-4f))
    xs.push_back(x);
  for (float x : xs)
    EXPECT_EQ(qlc::to_f16(x).bits, _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)) << x;
  EXPECT_EQ(qlc::to_f16(NAN).bits & 0x7e00u, 0x7e00u);
}

/// int8 rows that stress the half-precision scale and zero: constant, all zero, a
/// narrow range far from zero, one outlier, tiny values, values past the half range.
TEST(KvCache, Int8EdgeRows) {
  constexpr int HD = 12;
  const std::vector<std::vector<float>> rows = {
      std::vector<float>(HD, 0.1f),
      std::vector<float>(HD, 0.0f),
      {100.0f, 100.5f, 100.25f, 101.0f, 100.1f, 100.9f, 100.0f, 100.3f, 100.7f, 100.2f, 100.6f, 100.8f},
      {0.1f, -0.2f, 0.3f, 0.05f, -0.1f, 0.0f, 0.2f, -0.3f, 0.15f, 0.25f, -0.05f, 40.0f},
      {1e-7f, -2e-7f, 3e-7f, 0.0f, 1e-8f, -1e-8f, 2e-7f, 5e-8f, -5e-8f, 1.5e-7f, 0.0f, 1e-7f},
      {-7e4f, 1.0f, 2.0f, 3.0f, 9e4f, 0.0f, -1.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f}};
  for (const auto &x : rows) {
    uint8_t h[x86::KvI8::head_bytes<HD>()];
    x86::KvI8::store<HD>(h, x.data());
    std::vector<float> clipped(x);
    for (float &f : clipped)
      f = std::min(std::max(f, -65504.0f), 65504.0f);
    std::string bad;
    checkEncoding<x86::KvI8, HD>(h, clipped.data(), bad);
    EXPECT_EQ(bad, "") << "row starting " << x[0];
    if (x[0] == x[1] && x[0] == x[HD - 1]) { // a constant row decodes to within a half ulp
      EXPECT_LE(std::abs(decodeHead<x86::KvI8, HD>(h)[0] - x[0]), std::abs(x[0]) * 0x1p-10);
    }
  }
}

TEST(KvCache, Generic) {
  kvSuite<x86::Generic, x86::KvF32>();
  kvSuite<x86::Generic, x86::KvF16>();
  kvSuite<x86::Generic, x86::KvI8>();
}

TEST(KvCache, Avx2) {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")))
    GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C";
  kvSuite<x86::Avx2, x86::KvF32>();
  kvSuite<x86::Avx2, x86::KvF16>();
  kvSuite<x86::Avx2, x86::KvI8>();
}
#endif

} // namespace
