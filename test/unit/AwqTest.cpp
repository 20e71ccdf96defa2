//===- AwqTest.cpp - AWQ's searches on one linear layer --------------------===//
//
// A layer whose inputs have a few large channels (as LLM activations do): AWQ's chosen
// scales must lower the output error ||W X - Q X|| below round-to-nearest's, the error
// the search reports must be the error of the scaled quantization, and the clipping
// search must lower it further.
//
#include "passes/Awq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace {

struct Layer {
  int64_t n = 0, k = 0;
  std::vector<float> w, h, meanAbs;
};

Layer makeLayer(int64_t n, int64_t k, int64_t t, unsigned seed) {
  Layer l{n, k, std::vector<float>(n * k), std::vector<float>(k * k, 0.0f),
          std::vector<float>(k, 0.0f)};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::student_t_distribution<float> heavy(3.0f);
  std::vector<float> chan(k);
  for (int64_t c = 0; c < k; ++c)
    chan[c] = (c % 17 == 3) ? 20.0f : std::exp(0.5f * nd(rng)); // outlier channels
  std::vector<double> h(k * k, 0.0);
  std::vector<float> x(k);
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      x[c] = nd(rng) * chan[c];
      l.meanAbs[c] += std::fabs(x[c]) / static_cast<float>(t);
    }
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        h[i * k + j] += static_cast<double>(x[i]) * x[j];
  }
  for (int64_t i = 0; i < k * k; ++i)
    l.h[i] = static_cast<float>(h[i]);
  for (auto &v : l.w)
    v = 0.02f * heavy(rng);
  return l;
}

TEST(Awq, ScalesReduceTheOutputErrorBelowRtn) {
  for (int64_t gs : {int64_t{32}, int64_t{0}}) {
    SCOPED_TRACE("group size " + std::to_string(gs));
    Layer l = makeLayer(48, 170, 700, 11); // 170 = 5 * 32 + 10: a short last group
    qlc::AwqParams p;
    p.quant = {4, gs, false};
    double best = 0, rtn = 0;
    std::vector<float> s =
        qlc::awqSearchScales({&l.w}, {l.n}, l.k, l.h, l.meanAbs, p, &best, &rtn);
    const double rtnDirect = qlc::awqOutputError(
        l.w, qlc::dequantizeInt(qlc::quantizeRtn(l.w, l.n, l.k, p.quant), p.quant), l.n, l.k, l.h);
    EXPECT_NEAR(rtn, rtnDirect, 1e-3 * rtnDirect);
    const double scaled =
        qlc::awqOutputError(l.w, qlc::awqScaledRtn(l.w, l.n, l.k, s, p.quant), l.n, l.k, l.h);
    EXPECT_NEAR(best, scaled, 1e-3 * scaled);
    EXPECT_LT(best, 0.8 * rtn) << "awq " << best << " rtn " << rtn;
    // Outlier channels get the larger scales.
    EXPECT_GT(s[3], s[4]);

    // Clipping, on the scaled weight and the correspondingly scaled inputs.
    std::vector<float> ws(l.w), hs(l.h);
    for (int64_t r = 0; r < l.n; ++r)
      for (int64_t c = 0; c < l.k; ++c)
        ws[r * l.k + c] *= s[c];
    for (int64_t i = 0; i < l.k; ++i)
      for (int64_t j = 0; j < l.k; ++j)
        hs[i * l.k + j] /= s[i] * s[j];
    std::vector<float> clipped(ws);
    qlc::awqClip(clipped, l.n, l.k, hs, p);
    auto err = [&](const std::vector<float> &m) {
      return qlc::awqOutputError(
          ws, qlc::dequantizeInt(qlc::quantizeRtn(m, l.n, l.k, p.quant), p.quant), l.n, l.k, hs);
    };
    const double before = err(ws), after = err(clipped);
    EXPECT_NEAR(before, best, 1e-3 * best);
    EXPECT_LT(after, before) << "clipped " << after << " unclipped " << before;
    std::printf("group %lld: ||WX-QX||^2 rtn %.5g, awq scales %.5g, + clipping %.5g\n",
                static_cast<long long>(gs), rtn, best, after);
  }
}

TEST(Awq, SharedInputGroupSearchesAllWeights) {
  Layer a = makeLayer(40, 96, 400, 5), b = makeLayer(24, 96, 10, 6);
  qlc::AwqParams p;
  p.quant = {4, 32, false};
  double best = 0, rtn = 0;
  qlc::awqSearchScales({&a.w, &b.w}, {a.n, b.n}, a.k, a.h, a.meanAbs, p, &best, &rtn);
  double rtnSum = 0;
  for (const Layer *l : {&a, &b})
    rtnSum += qlc::awqOutputError(
        l->w, qlc::dequantizeInt(qlc::quantizeRtn(l->w, l->n, l->k, p.quant), p.quant), l->n,
        l->k, a.h);
  EXPECT_NEAR(rtn, rtnSum, 1e-3 * rtnSum);
  EXPECT_LE(best, rtn);
}

} // namespace
