// cuda_kernel_test.cu - every CUDA kernel launcher against a float64 host reference.
//
// Random inputs (no zeros) on awkward sizes; outputs are poisoned with NaN before each
// launch, so an element left unwritten fails; errors are ||out - ref|| / ||ref||. The KV
// cache formats are checked byte for byte against the x86 encoders (qlc_x86_kv.h), and
// attention against a reference over the decoded cache. Prints a table; exit 0 when all
// pass, 1 otherwise, 77 without a CUDA device. `--bench` times the tensor-core GEMM
// against the SIMT GEMM instead (cuda_mma_test.cu).
#include "qlc_cuda_kernels.cuh"
#include "qlc_nf4_tables.h"
#include "qlc_w4_tiles.h"
#include "qlc_x86_kv.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace cu = qlc::cuda;
using namespace qlc::cudatest;

namespace {

const int kMs[] = {1, 3, 8, 9, 17, 70};

// --- elementwise ------------------------------------------------------------------------

template <int D, class T> void testEmbedding(const char *tname) {
  constexpr int VOCAB = 50;
  Rng rng(D + 1);
  auto tab = rng.weights<T>(int64_t{VOCAB} * D, 1.0f);
  DevBuf<T> dtab(tab);
  for (int M : kMs) {
    std::vector<int32_t> ids(M);
    for (auto &i : ids)
      i = static_cast<int32_t>(rng.index(VOCAB));
    DevBuf<int32_t> did(ids);
    DevBuf<float> y(int64_t{M} * D);
    y.poison();
    cu::embedding<D, T>(0, M, did.p, dtab.p, y.p);
    std::vector<double> ref(int64_t{M} * D);
    for (int t = 0; t < M; ++t)
      for (int i = 0; i < D; ++i)
        ref[t * D + i] = toFloat(tab[int64_t{ids[t]} * D + i]);
    check(caseName("embedding", "D=%d %s", D, tname), M, y, ref, 0.0);
  }
}

template <int D> void testRmsNorm() {
  Rng rng(D + 2);
  auto w = rng.floats(D, 2.0f);
  DevBuf<float> dw(w);
  const float eps = 1e-5f;
  for (int M : kMs) {
    auto a = rng.floats(int64_t{M} * D, 3.0f), b = rng.floats(int64_t{M} * D, 3.0f);
    DevBuf<float> da(a), db(b), sum(int64_t{M} * D), y(int64_t{M} * D);
    std::vector<double> refSum(a.size()), refY(a.size()), refN(a.size());
    auto norm = [&](const std::vector<double> &x, std::vector<double> &out) {
      for (int t = 0; t < M; ++t) {
        double ss = 0;
        for (int i = 0; i < D; ++i)
          ss += x[t * D + i] * x[t * D + i];
        const double inv = 1.0 / std::sqrt(ss / D + eps);
        for (int i = 0; i < D; ++i)
          out[t * D + i] = w[i] * x[t * D + i] * inv;
      }
    };
    std::vector<double> ad(a.begin(), a.end());
    for (size_t i = 0; i < a.size(); ++i)
      refSum[i] = static_cast<double>(static_cast<float>(a[i] + b[i]));
    norm(ad, refN);
    norm(refSum, refY);
    y.poison();
    cu::rms_norm<D>(0, M, da.p, dw.p, eps, y.p);
    check(caseName("rms_norm", "D=%d", D), M, y, refN, 1e-5);
    y.poison();
    sum.poison();
    cu::add_rms_norm<D>(0, M, da.p, db.p, dw.p, eps, sum.p, y.p);
    check(caseName("add_rms_norm.sum", "D=%d", D), M, sum, refSum, 0.0);
    check(caseName("add_rms_norm.y", "D=%d", D), M, y, refY, 1e-5);
    // sum written over a.
    y.poison();
    cu::add_rms_norm<D>(0, M, da.p, db.p, dw.p, eps, da.p, y.p);
    check(caseName("add_rms_norm.alias", "D=%d sum=a", D), M, da, refSum, 0.0);
    check(caseName("add_rms_norm.alias", "D=%d y", D), M, y, refY, 1e-5);
  }
}

template <int D, int HD> void testRope() {
  Rng rng(D + HD);
  std::vector<float> invf(HD / 2);
  for (int i = 0; i < HD / 2; ++i)
    invf[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / HD));
  DevBuf<float> dinv(invf);
  for (int M : kMs) {
    auto x = rng.floats(int64_t{M} * D, 2.0f);
    std::vector<int32_t> pos(M);
    for (auto &p : pos)
      p = static_cast<int32_t>(rng.index(5000));
    DevBuf<float> dx(x), y(int64_t{M} * D);
    DevBuf<int32_t> dpos(pos);
    std::vector<double> ref(x.size());
    for (int t = 0; t < M; ++t)
      for (int h = 0; h < D / HD; ++h)
        for (int i = 0; i < HD / 2; ++i) {
          const double ang = static_cast<float>(pos[t]) * invf[i]; // the f32 product
          const double a = x[t * D + h * HD + i], b = x[t * D + h * HD + i + HD / 2];
          ref[t * D + h * HD + i] = a * std::cos(ang) - b * std::sin(ang);
          ref[t * D + h * HD + i + HD / 2] = b * std::cos(ang) + a * std::sin(ang);
        }
    y.poison();
    cu::rope<D, HD>(0, M, dpos.p, dinv.p, dx.p, y.p);
    check(caseName("rope", "D=%d HD=%d", D, HD), M, y, ref, 1e-5);
    cu::rope<D, HD>(0, M, dpos.p, dinv.p, dx.p, dx.p);
    check(caseName("rope.inplace", "D=%d HD=%d", D, HD), M, dx, ref, 1e-5);
  }
}

template <int D> void testPointwise() {
  constexpr int OFF = D / 3, W = D / 2;
  Rng rng(D + 7);
  for (int M : kMs) {
    auto a = rng.floats(int64_t{M} * D, 4.0f), b = rng.floats(int64_t{M} * D, 2.0f);
    auto x2 = rng.floats(int64_t{M} * 2 * D, 4.0f);
    DevBuf<float> da(a), db(b), dx2(x2), y(int64_t{M} * D), ys(int64_t{M} * W);
    std::vector<double> rSilu(a.size()), rAdd(a.size()), rSwi(a.size()), rSplit(int64_t{M} * W);
    auto silu = [](double g) { return g / (1.0 + std::exp(-g)); };
    for (int t = 0; t < M; ++t)
      for (int i = 0; i < D; ++i) {
        rSilu[t * D + i] = silu(a[t * D + i]) * b[t * D + i];
        rAdd[t * D + i] = static_cast<float>(a[t * D + i] + b[t * D + i]);
        rSwi[t * D + i] = silu(x2[t * 2 * D + i]) * x2[t * 2 * D + D + i];
      }
    for (int t = 0; t < M; ++t)
      for (int i = 0; i < W; ++i)
        rSplit[t * W + i] = a[t * D + OFF + i];
    y.poison();
    cu::silu_mul<D>(0, M, da.p, db.p, y.p);
    check(caseName("silu_mul", "D=%d", D), M, y, rSilu, 1e-5);
    y.poison();
    cu::swiglu<D>(0, M, dx2.p, y.p);
    check(caseName("swiglu", "I=%d", D), M, y, rSwi, 1e-5);
    y.poison();
    cu::add<D>(0, M, da.p, db.p, y.p);
    check(caseName("add", "D=%d", D), M, y, rAdd, 0.0);
    ys.poison();
    cu::split_cols<D, OFF, W>(0, M, da.p, ys.p);
    check(caseName("split_cols", "D=%d OFF=%d W=%d", D, OFF, W), M, ys, rSplit, 0.0);
  }
}

// --- projections ------------------------------------------------------------------------

/// y = x W^T + bias in float64, W given decoded [N, K].
std::vector<double> refLinear(int M, int K, int N, const std::vector<float> &x,
                              const std::vector<double> &w, const float *bias) {
  std::vector<double> y(int64_t{M} * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias != nullptr ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k)
        s += static_cast<double>(x[int64_t{m} * K + k]) * w[int64_t{n} * K + k];
      y[int64_t{m} * N + n] = s;
    }
  return y;
}

/// Runs `launch(M, x, bias, y)` for every M, with and without bias, against refLinear.
/// mmaTol >= 0: the weights are f16/bf16/quantized, so rows past kGemvMaxM take the
/// tensor-core GEMM, which rounds x to f16 (so does the reference there) and, quantized,
/// the weights too: that tolerance applies to them (cuda_mma_test.cu has the details).
template <class Launch>
void checkProjection(const std::string &name, int K, int N, const std::vector<double> &wdec,
                     double tol, Launch launch, double mmaTol = -1.0,
                     int exactMaxM = cu::kGemvMaxM) {
  Rng rng(K * 31 + N);
  auto bias = rng.floats(N, 1.0f);
  DevBuf<float> dbias(bias);
  for (int M : kMs) {
    const bool withBias = M % 2 == 1;
    auto x = rng.floats(int64_t{M} * K, 1.0f);
    DevBuf<float> dx(x), y(int64_t{M} * N);
    y.poison();
    launch(M, dx.p, withBias ? dbias.p : nullptr, y.p);
    const bool mma = mmaTol >= 0.0 && M > exactMaxM; // x rounded to f16 by the kernel
    std::vector<float> xr = x;
    if (mma)
      for (float &v : xr)
        v = __half2float(__float2half_rn(v));
    const auto ref = refLinear(M, K, N, xr, wdec, withBias ? bias.data() : nullptr);
    check(name + (withBias ? " +bias" : ""), M, y, ref, mma ? mmaTol : tol);
    if (mma && M >= cu::kBlasMinM) { // an artifact's prefill: cuBLAS on dequantized bands
      if (cu::BlasLib::get() == nullptr) {
        results().push_back(
            {name + " cuBLAS", M, 0.0, 0.0, false,
             "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR) + " not found (or QLC_CUBLAS=0)"});
        continue;
      }
      const int64_t ld = cu::round_up(K, 8);
      DevBuf<uint8_t> scratch(cu::blas_scratch_bytes(M, ld, cu::kBlasChunkElems + 128 * ld));
      y.poison();
      {
        cu::BlasScope scope(&kMs, scratch.p, scratch.n);
        launch(M, dx.p, withBias ? dbias.p : nullptr, y.p);
      }
      check(name + (withBias ? " +bias" : "") + " cuBLAS", M, y, ref, mmaTol);
    }
  }
}

template <int K, int N, class WT> void testLinear(const char *tname) {
  Rng rng(K + N);
  auto w = rng.weights<WT>(int64_t{N} * K, 1.0f);
  std::vector<double> wdec(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    wdec[i] = toFloat(w[i]);
  DevBuf<WT> dw(w);
  const double mmaTol = sizeof(WT) == 2 ? 1e-4 : -1.0;
  checkProjection(caseName("linear", "K=%d N=%d %s", K, N, tname), K, N, wdec, 1e-5,
                  [&](int M, const float *x, const float *b, float *y) {
                    cu::linear<K, N, WT>(0, M, x, dw.p, b, y);
                  }, mmaTol);
  // The same weights one element off a 16-byte boundary: the narrow-load path.
  std::vector<WT> shifted(w.size() + 1);
  std::copy(w.begin(), w.end(), shifted.begin() + 1);
  DevBuf<WT> dws(shifted);
  checkProjection(caseName("linear", "K=%d N=%d %s misaligned", K, N, tname), K, N, wdec, 1e-5,
                  [&](int M, const float *x, const float *b, float *y) {
                    cu::linear<K, N, WT>(0, M, x, dws.p + 1, b, y);
                  }, mmaTol);
}

template <int D, int V, class WT> void testLogits(const char *tname) {
  Rng rng(D * 3 + V);
  auto w = rng.weights<WT>(int64_t{V} * D, 1.0f);
  std::vector<double> wdec(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    wdec[i] = toFloat(w[i]);
  DevBuf<WT> dw(w);
  for (int rowsN : {1, 3, 9}) {
    const int M = 9;
    auto x = rng.floats(int64_t{M} * D, 1.0f);
    std::vector<int32_t> rows(rowsN);
    for (auto &r : rows)
      r = static_cast<int32_t>(rng.index(M));
    std::vector<float> gathered;
    for (int32_t r : rows)
      gathered.insert(gathered.end(), x.begin() + int64_t{r} * D, x.begin() + int64_t{r + 1} * D);
    DevBuf<float> dx(x), tmp(int64_t{rowsN} * D), out(int64_t{rowsN} * V);
    DevBuf<int32_t> drows(rows);
    out.poison();
    tmp.poison();
    cu::logits<D, V, WT>(0, rowsN, drows.p, dx.p, dw.p, tmp.p, out.p);
    const bool mma = sizeof(WT) == 2 && rowsN > cu::kGemvMaxM; // x rounded to f16 there
    if (mma)
      for (float &v : gathered)
        v = __half2float(__float2half_rn(v));
    check(caseName("logits", "D=%d V=%d %s", D, V, tname), rowsN, out,
          refLinear(rowsN, D, V, gathered, wdec, nullptr), mma ? 1e-4 : 1e-5);
  }
}

template <int K, int N, int BITS, int G> void testQlinearInt(bool asym) {
  Rng rng(K * 7 + N * 3 + BITS + G + asym);
  IntWeights<K, N, BITS, G> w(rng, asym);
  DevBuf<uint8_t> dq(w.q), dz(w.zeros);
  DevBuf<cu::f16> ds(w.scales);
  checkProjection(
      caseName("qlinear_int", "K=%d N=%d b%d g%d %s", K, N, BITS, G, asym ? "asym" : "sym"), K, N,
      w.wdec, 1e-5,
      [&](int M, const float *x, const float *b, float *y) {
        cu::qlinear_int<K, N, BITS, G>(0, M, x, dq.p, ds.p, asym ? dz.p : nullptr, b, y);
      },
      1e-3, BITS == 4 && cu::gemv_w4_applies<K, G>() ? 0 : cu::kGemvMaxM);
}

/// An int4 weight in the tile layout of CUDA artifacts (qlc_w4_tiles.h), packed on the
/// host by the compiler's functions from the row layout's bytes.
template <int K, int N, int G> struct TiledWeights {
  std::vector<uint8_t> codes;
  std::vector<uint16_t> entries;
  TiledWeights(const IntWeights<K, N, 4, G> &w, bool asym)
      : codes(w.q.size()), entries(qlc::w4tiles::entry_bytes(K, N, G) / 2) {
    qlc::w4tiles::pack_codes(K, N, w.q.data(), codes.data());
    qlc::w4tiles::pack_scales(K, N, G, reinterpret_cast<const uint16_t *>(w.scales.data()),
                              asym ? w.zeros.data() : nullptr, entries.data());
  }
};

/// qlinear_int_tiles against the float64 reference at every M of kMs (decode GEMV, token
/// groups, cuBLAS or tensor-core GEMM), and at 1-8 rows bit for bit against the same
/// kernel in the same launch configuration on the weight in the row layout.
template <int K, int N, int G> void testQlinearIntTiles(bool asym) {
  Rng rng(K * 13 + N * 7 + G + asym);
  IntWeights<K, N, 4, G> w(rng, asym);
  TiledWeights<K, N, G> tw(w, asym);
  DevBuf<uint8_t> dq(w.q), dz(w.zeros), dt(tw.codes);
  DevBuf<uint16_t> de(tw.entries);
  DevBuf<cu::f16> ds(w.scales);
  const auto *ent = reinterpret_cast<const uint8_t *>(de.p);
  checkProjection(
      caseName("qlinear_int_tiles", "K=%d N=%d g%d %s", K, N, G, asym ? "asym" : "sym"), K, N,
      w.wdec, 1e-5,
      [&](int M, const float *x, const float *b, float *y) {
        cu::qlinear_int_tiles<K, N, G>(0, M, x, dt.p, ent, b, y);
      },
      1e-3, 0);
  auto bias = rng.floats(N, 1.0f);
  DevBuf<float> dbias(bias);
  for (int M : {1, 2, 4, 5, 8}) {
    auto x = rng.floats(int64_t{M} * K, 1.0f);
    DevBuf<float> dx(x), yr(int64_t{M} * N), yt(int64_t{M} * N);
    yr.poison();
    yt.poison();
    const auto *et = reinterpret_cast<const cu::f16 *>(de.p);
    const uint8_t *z = asym ? dz.p : nullptr;
    using C = cu::GemvW4StreamCfg<K, N, cu::W4Layout::Tiles>;
    using F = cu::GemvW4StreamFallback<K, N>;
    const size_t xs = cu::gemv_w4_stream_smem<K>(M);
    if (M <= 4 && xs + cu::gemv_w4_stream_red_bytes<C::KW, C::RT>() <= 48 * 1024) {
      cu::launch_gemv_w4_stream<K, N, G, C::KW, C::RT, C::D>(0, M, dx.p, dq.p, ds.p, z, dbias.p,
                                                             yr.p);
    } else if (M <= 4 && xs + cu::gemv_w4_stream_red_bytes<F::KW, F::RT>() <= 48 * 1024) {
      cu::launch_gemv_w4_stream<K, N, G, F::KW, F::RT, F::D>(0, M, dx.p, dq.p, ds.p, z, dbias.p,
                                                             yr.p);
    } else {
      cu::launch_gemv_w4<K, N, G>(0, M, dx.p, dq.p, ds.p, z, dbias.p, yr.p);
    }
    cu::gemv_w4<K, N, G, cu::W4Layout::Tiles>(0, M, dx.p, dt.p, et, nullptr, dbias.p, yt.p);
    const std::vector<float> a = yr.get(), b = yt.get();
    int64_t bad = 0;
    for (size_t i = 0; i < a.size(); ++i)
      bad += std::memcmp(&a[i], &b[i], 4) != 0;
    checkCount(
        caseName("qlinear_int_tiles = rows", "K=%d N=%d g%d %s", K, N, G, asym ? "asym" : "sym"), M,
        bad, static_cast<int64_t>(a.size()));
  }
}

/// The streaming int4 GEMV in launch configurations <KW warps per tile, RT tiles per block,
/// D quads in flight> other than the one qlinear_int picks for the shape, for 1-4 tokens:
/// partial last quads, warps without a last quad, quad counts not a multiple of D, a
/// partial last tile and block. x is rounded to f16 by the kernel, so in the reference too.
template <int K, int N, int G, int KW, int RT, int D, cu::W4Layout L = cu::W4Layout::Rows>
void testGemvW4Stream(bool asym) {
  constexpr bool TILES = L == cu::W4Layout::Tiles;
  Rng rng(K * 5 + N + KW * 3 + RT * 7 + D);
  IntWeights<K, N, 4, G> w(rng, asym);
  std::vector<uint8_t> codes = w.q;
  std::vector<cu::f16> scales = w.scales;
  if constexpr (TILES) { // the same weights in the tile layout
    TiledWeights<K, N, G> tw(w, asym);
    codes = tw.codes;
    scales.resize(tw.entries.size());
    std::memcpy(scales.data(), tw.entries.data(), 2 * scales.size());
  }
  DevBuf<uint8_t> dq(codes), dz(w.zeros);
  DevBuf<cu::f16> ds(scales);
  auto bias = rng.floats(N, 1.0f);
  DevBuf<float> dbias(bias);
  for (int M = 1; M <= 4; ++M) {
    auto x = rng.floats(int64_t{M} * K, 1.0f);
    DevBuf<float> dx(x), y(int64_t{M} * N);
    y.poison();
    const bool withBias = M % 2 == 1;
    cu::launch_gemv_w4_stream<K, N, G, KW, RT, D, L>(
        0, M, dx.p, dq.p, ds.p, asym && !TILES ? dz.p : nullptr, withBias ? dbias.p : nullptr, y.p);
    for (float &v : x)
      v = __half2float(__float2half_rn(v));
    check(caseName("gemv_w4_stream", "K=%d N=%d g%d <%d,%d,%d>%s %s%s", K, N, G, KW, RT, D,
                   TILES ? " tiles" : "", asym ? "asym" : "sym", withBias ? " +bias" : ""),
          M, y, refLinear(M, K, N, x, w.wdec, withBias ? bias.data() : nullptr), 1e-3);
  }
}

/// The token-group int4 GEMM (9-64 rows) with TG groups of 8 tokens in configuration Cfg,
/// at every M that TG serves from a few below to 8 TG: split K (the grid of a small N asks
/// for it) and whole-K blocks, slices past the last quad, partial tiles and blocks. x is
/// rounded to f16 by the kernel, so in the reference too.
template <int K, int N, int G, int TG, class Cfg> void testGemmW4Tok(bool asym) {
  Rng rng(K * 3 + N + TG * 5 + Cfg::RT * 7 + Cfg::SQ * 11);
  IntWeights<K, N, 4, G> w(rng, asym);
  DevBuf<uint8_t> dq(w.q), dz(w.zeros);
  DevBuf<cu::f16> ds(w.scales);
  auto bias = rng.floats(N, 1.0f);
  DevBuf<float> dbias(bias);
  for (int M : {8 * TG - 7, 8 * TG - 4, 8 * TG}) {
    auto x = rng.floats(int64_t{M} * K, 1.0f);
    DevBuf<float> dx(x), y(int64_t{M} * N);
    y.poison();
    const bool withBias = M % 2 == 1;
    cu::launch_gemm_w4_tok<K, N, G, TG, Cfg>(0, M, dx.p, dq.p, ds.p, asym ? dz.p : nullptr,
                                             withBias ? dbias.p : nullptr, y.p);
    for (float &v : x)
      v = __half2float(__float2half_rn(v));
    check(caseName("gemm_w4_tok", "K=%d N=%d g%d TG=%d <%d,%d,%d> %s%s", K, N, G, TG, Cfg::RT,
                   Cfg::SQ, Cfg::D, asym ? "asym" : "sym", withBias ? " +bias" : ""),
          M, y, refLinear(M, K, N, x, w.wdec, withBias ? bias.data() : nullptr), 1e-3);
  }
}

/// Act-order: columns stored in the order of a random permutation; y = x[:, perm] * W^T,
/// i.e. W scattered back through the permutation against the unpermuted x.
template <int K, int N, int G> void testQlinearIntPerm() {
  constexpr int64_t GROUPS = (K + G - 1) / G, ROW_BYTES = (K + 1) / 2;
  Rng rng(K * 11 + N * 5 + G);
  std::vector<uint8_t> q(N * ROW_BYTES), zeros(N * GROUPS);
  for (auto &b : q)
    b = static_cast<uint8_t>(rng.index(256));
  for (auto &z : zeros)
    z = static_cast<uint8_t>(rng.index(16));
  std::vector<cu::f16> scales(N * GROUPS);
  for (auto &sc : scales)
    sc = __float2half_rn(rng.uniform(0.002f, 0.05f));
  std::vector<int32_t> perm(K);
  for (int k = 0; k < K; ++k)
    perm[k] = k;
  for (int k = K - 1; k > 0; --k)
    std::swap(perm[k], perm[rng.index(k + 1)]);
  std::vector<double> wdec(int64_t{N} * K);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < K; ++j) {
      const int c = (q[n * ROW_BYTES + j / 2] >> (4 * (j % 2))) & 0xF;
      const int64_t gi = n * GROUPS + j / G;
      wdec[int64_t{n} * K + perm[j]] = (c - double(zeros[gi])) * double(__half2float(scales[gi]));
    }
  DevBuf<uint8_t> dq(q), dz(zeros);
  DevBuf<cu::f16> ds(scales);
  DevBuf<int32_t> dperm(perm);
  DevBuf<float> xp(int64_t{70} * K);
  checkProjection(caseName("qlinear_int_perm", "K=%d N=%d b4 g%d", K, N, G), K, N, wdec, 1e-5,
                  [&](int M, const float *x, const float *b, float *y) {
                    cu::qlinear_int_perm<K, N, 4, G>(0, M, x, dperm.p, xp.p, dq.p, ds.p, dz.p, b,
                                                     y);
                  }, 1e-3, cu::gemv_w4_applies<K, G>() ? 0 : cu::kGemvMaxM);
}

template <int K, int N, int BLOCK, bool DQ> void testQlinearNf4() {
  const int64_t numel = int64_t{N} * K, blocks = (numel + BLOCK - 1) / BLOCK;
  Rng rng(K * 5 + N + BLOCK + DQ);
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
    volatile float w = qlc::nf4_values[c] * a; // bitsandbytes' f32 product
    wdec[e] = w;
  }
  DevBuf<uint8_t> dq(q), dcodes(codes);
  DevBuf<float> dabs(absmax), dabs2(absmax2);
  const void *am = DQ ? static_cast<const void *>(dcodes.p) : static_cast<const void *>(dabs.p);
  checkProjection(caseName("qlinear_nf4", "K=%d N=%d block%d%s (%lld blocks)", K, N, BLOCK,
                           DQ ? " dq" : "", static_cast<long long>(blocks)),
                  K, N, wdec, 1e-5, [&](int M, const float *x, const float *b, float *y) {
                    cu::qlinear_nf4<K, N, BLOCK, DQ>(0, M, x, dq.p, am, dabs2.p, offset, b, y);
                  }, 1e-3);
}

} // namespace

void runAttentionTests();
void runMmaTests();
int runMmaBench();
void runTilingTests();

int main(int argc, char **argv) {
  const bool bench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  if (argc > 1 && !bench) {
    std::fprintf(stderr, "usage: %s [--bench]\n", argv[0]);
    return 2;
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  if (bench)
    return runMmaBench();

  testEmbedding<67, float>("f32");
  testEmbedding<67, cu::f16>("f16");
  testEmbedding<576, cu::bf16>("bf16");
  testRmsNorm<67>();
  testRmsNorm<576>();
  testRmsNorm<1537>();
  testRope<128, 16>();
  testRope<288, 96>();
  testRope<256, 64>();
  testPointwise<67>();
  testPointwise<1000>();

  testLinear<200, 75, float>("f32");
  testLinear<200, 75, cu::f16>("f16");
  testLinear<200, 75, cu::bf16>("bf16");
  testLinear<67, 129, float>("f32");
  testLinear<67, 129, cu::f16>("f16");
  testLinear<67, 129, cu::bf16>("bf16");
  testLinear<1000, 300, float>("f32");
  testLinear<1000, 300, cu::f16>("f16");
  testLinear<1000, 300, cu::bf16>("bf16");
  testLinear<2500, 40, cu::f16>("f16");
  testLinear<66, 33, cu::bf16>("bf16");
  testLinear<4096, 2100, cu::bf16>("bf16"); // one band of 2,100 rows on the cuBLAS path
  testLogits<200, 129, cu::f16>("f16");
  testLogits<67, 75, float>("f32");

  testQlinearInt<200, 75, 4, 32>(false);
  testQlinearInt<200, 75, 4, 32>(true);
  testQlinearInt<200, 75, 4, 64>(true);
  testQlinearInt<300, 129, 4, 128>(false);
  testQlinearInt<300, 129, 8, 128>(true);
  testQlinearInt<300, 129, 8, 64>(false);
  testQlinearInt<67, 129, 8, 32>(true);
  testQlinearInt<201, 75, 4, 64>(true);
  testQlinearInt<201, 75, 4, 201>(false);
  testQlinearInt<1000, 300, 4, 128>(true);
  testQlinearInt<2500, 40, 4, 64>(false);
  testQlinearInt<2500, 40, 8, 128>(true);
  // Shapes of the tensor-core int4 GEMV (K % 32 == 0, G % 128 == 0 or G >= K): a partial
  // last quad (K / 32 not a multiple of 4), N not a multiple of 16, per-row groups.
  testQlinearInt<256, 75, 4, 128>(false);
  testQlinearInt<256, 75, 4, 128>(true);
  testQlinearInt<416, 129, 4, 128>(true);
  testQlinearInt<160, 33, 4, 160>(false);
  testQlinearInt<1024, 40, 4, 256>(true);
  testQlinearInt<4096, 300, 4, 128>(true);
  testQlinearInt<11008, 77, 4, 128>(false);
  // The cuBLAS path (M = 70): K = 11008; two bands of dequantized rows (4,224 and 3,976:
  // blas_band_rows splits N x K > 32 Mi elements).
  testQlinearInt<11008, 700, 4, 128>(true);
  testQlinearInt<4096, 8200, 4, 128>(false);
  // The streaming GEMV's configurations (qlinear_int picks by the number of 16-row tiles).
  testGemvW4Stream<2560, 40, 128, 4, 1, 4>(true);  // 5 quads a warp, D = 4
  testGemvW4Stream<3488, 75, 128, 8, 1, 4>(false); // partial last quad, warps short of one
  testGemvW4Stream<1056, 70, 128, 2, 4, 8>(true);  // partial tile and block, 5 quads < D
  testGemvW4Stream<4096, 33, 128, 2, 2, 8>(true);  // 16 quads a warp, two rounds
  testGemvW4Stream<1024, 50, 256, 1, 4, 4>(false); // G = 256: two quads a group
  testGemvW4Stream<160, 40, 160, 1, 2, 2>(true);   // one group a row, 2 quads, one partial
  testGemvW4Stream<4096, 72, 128, 16, 1, 1>(true); // 16 warps a tile, one quad in flight
  testGemvW4Stream<3488, 75, 128, 16, 1, 2>(false); // 16 warps, partial quad, warps short
  testGemvW4Stream<1056, 70, 128, 4, 2, 2>(true);   // partial tile and block, 9 quads a row
  testQlinearInt<5120, 200, 4, 128>(true);          // <16, 1, 1>; 4 tokens exceed 48 KiB
  testGemvW4Stream<1024, 48, 128, 2, 2, 2, cu::W4Layout::Tiles>(true); // partial block
  testGemvW4Stream<512, 96, 256, 4, 1, 1, cu::W4Layout::Tiles>(false); // G = 256
  testQlinearIntTiles<128, 16, 128>(true);                             // one tile, one quad
  testQlinearIntTiles<1024, 48, 64 * 4>(false);
  testQlinearIntTiles<384, 80, 384>(true);         // one group a row
  testQlinearIntTiles<4096, 272, 128>(true);       // <16, 1, 1>; 17 tiles
  testQlinearIntTiles<11008, 64, 128>(false);      // 86 quads a row; 4 tokens exceed 48 KiB
  testQlinearIntTiles<256, 6208, 128>(true);       // 388 tiles
  testQlinearInt<256, 6200, 4, 128>(true);         // 388 tiles: <4, 2, D>
  testQlinearInt<416, 17000, 4, 128>(false);       // 1,063 tiles: <4, 2, D>, partial quads
  testQlinearInt<256, 32100, 4, 128>(true);        // 2,007 tiles: <2, 4, D>
  // The token-group int4 GEMM (qlinear_int takes it for 9-64 rows; kMs has 9 and 17).
  testGemmW4Tok<1280, 75, 128, 2, cu::GemmW4TokCfg<4, 4, 4>>(true);  // 10 quads: 3 slices
  testGemmW4Tok<1280, 75, 128, 4, cu::GemmW4TokCfg<4, 4, 2>>(false); // D < SQ
  testGemmW4Tok<1280, 75, 128, 8, cu::GemmW4TokCfg<4, 2, 2>>(true);
  testGemmW4Tok<1024, 40, 256, 8, cu::GemmW4TokCfg<2, 1, 1>>(false); // G = 256, one quad
  testGemmW4Tok<384, 33, 384, 4, cu::GemmW4TokCfg<8, 2, 1>>(true);   // one group a row
  testGemmW4Tok<4096, 200, 128, 8, cu::GemmW4TokCfg<4, 2, 2>>(true);
  testGemmW4Tok<11008, 48, 128, 2, cu::GemmW4TokCfg<4, 4, 4>>(false); // 86 quads
  testGemmW4Tok<256, 20000, 128, 4, cu::GemmW4TokCfg<4, 4, 4>>(true); // no split: 313 blocks
  testGemmW4Tok<1280, 75, 128, 2, cu::GemmW4TokCfg<3, 1, 1>>(false);  // items % threads != 0
  testGemmW4Tok<4096, 300, 128, 8, cu::GemmW4TokCfg<16, 2, 2>>(true);
  testGemmW4Tok<4096, 300, 128, 4, cu::GemmW4TokCfg<8, 4, 4>>(false);
  testGemmW4Tok<4096, 300, 128, 8, cu::GemmW4TokDefault<8>::type>(false); // the defaults
  testGemmW4Tok<4096, 300, 128, 4, cu::GemmW4TokDefault<4>::type>(true);
  testGemmW4Tok<4096, 300, 128, 2, cu::GemmW4TokDefault<2>::type>(true);
  testQlinearIntPerm<200, 75, 32>();
  testQlinearIntPerm<256, 129, 128>();

  testQlinearNf4<200, 75, 64, false>();
  testQlinearNf4<200, 300, 64, true>();
  testQlinearNf4<67, 129, 64, false>();
  testQlinearNf4<67, 300, 64, true>();
  testQlinearNf4<200, 75, 48, true>();
  testQlinearNf4<1000, 300, 64, true>();
  testQlinearNf4<2500, 40, 64, false>();
  testQlinearNf4<2048, 16400, 64, true>(); // two bands on the cuBLAS path

  runMmaTests();
  runTilingTests();
  runAttentionTests();

  // M = 0: nothing is launched.
  cu::linear<200, 75, float>(0, 0, nullptr, nullptr, nullptr, nullptr);
  cu::rms_norm<67>(0, 0, nullptr, nullptr, 1e-5f, nullptr);
  recordLaunch("M=0 no-op", cudaDeviceSynchronize());

  return report();
}
