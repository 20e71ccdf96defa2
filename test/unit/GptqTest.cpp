//===- GptqTest.cpp - GPTQ against a numpy reference, and against RTN ------===//
//
// test/fixtures/gptq holds a weight, a Hessian X^T X and the codes, scales and zeros
// that scripts/gptq_reference.py (a direct numpy transcription of gptq.py) computed for
// several parameter sets; qlc's GPTQ must give the same integers.
//
#include "ir/Float16.h"
#include "passes/Gptq.h"
#include "test/unit/NpyRead.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/LU>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <random>

namespace {

const std::string kDir = std::string(QLC_SOURCE_DIR) + "/test/fixtures/gptq/";

using qlc::test::Npy;
using qlc::test::readNpy;

int codeAt(const qlc::IntQuantized &q, int64_t bits, int64_t r, int64_t c) {
  const uint8_t *row = q.qweight.data() + r * q.rowBytes;
  return bits == 8 ? row[c] : (row[c / 2] >> (4 * (c % 2))) & 15;
}

/// ||(W - Q) X^T|| computed from H = X^T X: sqrt(sum_r d_r H d_r^T).
double outputError(const std::vector<float> &w, const std::vector<float> &q, int64_t n,
                   int64_t k, const std::vector<double> &h) {
  double total = 0;
  std::vector<double> d(k);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c)
      d[c] = static_cast<double>(w[r * k + c]) - q[r * k + c];
    for (int64_t i = 0; i < k; ++i) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j)
        s += h[i * k + j] * d[j];
      total += d[i] * s;
    }
  }
  return std::sqrt(total);
}

TEST(Gptq, MatchesNumpyReference) {
  Npy w = readNpy(kDir + "W.npy"), h = readNpy(kDir + "H.npy");
  ASSERT_EQ(w.shape, (std::vector<int64_t>{24, 72}));
  ASSERT_EQ(h.shape, (std::vector<int64_t>{72, 72}));
  const int64_t n = 24, k = 72;
  std::vector<float> wf(w.data.begin(), w.data.end());
  std::ifstream cf(kDir + "cases.json");
  nlohmann::json cases = nlohmann::json::parse(cf);
  ASSERT_EQ(cases.size(), 4u);
  for (auto &[name, c] : cases.items()) {
    SCOPED_TRACE(name);
    qlc::GptqParams p;
    p.quant.bits = c.at("bits");
    p.quant.groupSize = c.at("group_size");
    p.quant.symmetric = c.at("sym");
    p.blockSize = c.at("blocksize");
    p.actOrder = c.value("actorder", false);
    p.staticGroups = c.value("static_groups", false);
    std::string error;
    auto q = qlc::quantizeGptq(wf, n, k, h.data, p, error);
    ASSERT_TRUE(mlir::succeeded(q)) << error;
    Npy codes = readNpy(kDir + name + ".codes.npy"), scales = readNpy(kDir + name + ".scales.npy"),
        zeros = readNpy(kDir + name + ".zeros.npy");
    ASSERT_EQ(static_cast<int64_t>(scales.data.size()), n * q->groups);
    int mismatches = 0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t col = 0; col < k; ++col)
        mismatches += codeAt(*q, p.quant.bits, r, col) != codes.data[r * k + col];
    EXPECT_EQ(mismatches, 0);
    for (int64_t i = 0; i < n * q->groups; ++i) {
      EXPECT_EQ(qlc::halfToFloat(q->scales[i]), scales.data[i]) << "scale " << i;
      if (!p.quant.symmetric) {
        EXPECT_EQ(q->zeros[i], zeros.data[i]) << "zero " << i;
      }
    }
    // The error the reference reported, and GPTQ's advantage over RTN.
    std::vector<float> deq = qlc::dequantizeInt(*q, p.quant);
    std::vector<float> rtn = qlc::dequantizeInt(qlc::quantizeRtn(wf, n, k, p.quant), p.quant);
    const double eG = outputError(wf, deq, n, k, h.data), eR = outputError(wf, rtn, n, k, h.data);
    EXPECT_NEAR(eG, c.at("gptq_error").get<double>(), 1e-6 * eG);
    EXPECT_NEAR(eR, c.at("rtn_error").get<double>(), 1e-6 * eR);
    EXPECT_LT(eG, eR);
  }
}

/// H = X^T X of t rows of k features.
std::vector<double> gram(const std::vector<double> &x, int64_t t, int64_t k) {
  std::vector<double> h(k * k, 0.0);
  for (int64_t r = 0; r < t; ++r)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        h[i * k + j] += x[r * k + i] * x[r * k + j];
  return h;
}

TEST(Gptq, BeatsRtnOnRandomHessian) {
  // H = X^T X of correlated features of unequal scale; awkward sizes, a short last group.
  const int64_t n = 67, k = 203, t = 600;
  std::mt19937 rng(7);
  std::normal_distribution<double> nd;
  std::vector<double> mix(k * k), x(t * k), featScale(k);
  for (auto &v : mix)
    v = 0.2 * nd(rng);
  for (int64_t i = 0; i < k; ++i)
    featScale[i] = std::exp(0.7 * nd(rng));
  for (int64_t r = 0; r < t; ++r) {
    std::vector<double> z(k);
    for (auto &v : z)
      v = nd(rng);
    for (int64_t c = 0; c < k; ++c) {
      double s = z[c];
      for (int64_t j = 0; j < k; ++j)
        s += z[j] * mix[j * k + c];
      x[r * k + c] = s * featScale[c];
    }
  }
  const std::vector<double> h = gram(x, t, k);
  std::vector<float> w(n * k);
  for (auto &v : w)
    v = static_cast<float>(0.02 * nd(rng));
  for (bool act : {false, true})
    for (int64_t gs : {int64_t{0}, int64_t{64}}) {
      SCOPED_TRACE("act-order " + std::to_string(act) + " group " + std::to_string(gs));
      qlc::GptqParams p;
      p.quant = {4, gs, false};
      p.actOrder = act;
      p.staticGroups = act;
      std::string error;
      auto q = qlc::quantizeGptq(w, n, k, h, p, error);
      ASSERT_TRUE(mlir::succeeded(q)) << error;
      const double eG = outputError(w, qlc::dequantizeInt(*q, p.quant), n, k, h);
      const double eR =
          outputError(w, qlc::dequantizeInt(qlc::quantizeRtn(w, n, k, p.quant), p.quant), n, k, h);
      EXPECT_LT(eG, 0.85 * eR) << "gptq " << eG << " rtn " << eR;
    }
}

// The rows of W are quantized in parallel chunks; each row's result depends only on that
// row, H and the parameters, so quantizing the rows in two calls (chunk boundaries moved)
// must give the same integers and scales as one call.
TEST(Gptq, RowsAreIndependent) {
  const int64_t n = 150, k = 96, split = 70;
  std::mt19937 rng(11);
  std::normal_distribution<double> nd;
  std::vector<double> x(400 * k);
  for (auto &v : x)
    v = nd(rng);
  const std::vector<double> h = gram(x, 400, k);
  std::vector<float> w(n * k);
  for (auto &v : w)
    v = static_cast<float>(0.02 * nd(rng));
  for (bool act : {false, true}) {
    SCOPED_TRACE("act-order " + std::to_string(act));
    qlc::GptqParams p;
    p.quant = {4, 32, false};
    p.actOrder = act;
    p.staticGroups = act;
    std::string error;
    auto all = qlc::quantizeGptq(w, n, k, h, p, error);
    ASSERT_TRUE(mlir::succeeded(all)) << error;
    const std::vector<float> top(w.begin(), w.begin() + split * k),
        rest(w.begin() + split * k, w.end());
    auto a = qlc::quantizeGptq(top, split, k, h, p, error);
    auto b = qlc::quantizeGptq(rest, n - split, k, h, p, error);
    ASSERT_TRUE(mlir::succeeded(a) && mlir::succeeded(b)) << error;
    int bad = 0;
    for (int64_t r = 0; r < n; ++r) {
      const qlc::IntQuantized &part = r < split ? *a : *b;
      const int64_t pr = r < split ? r : r - split;
      for (int64_t c = 0; c < k; ++c)
        bad += codeAt(*all, 4, r, c) != codeAt(part, 4, pr, c);
      for (int64_t g = 0; g < all->groups; ++g) {
        bad += all->scales[r * all->groups + g] != part.scales[pr * part.groups + g];
        bad += all->zeros[r * all->groups + g] != part.zeros[pr * part.groups + g];
      }
    }
    EXPECT_EQ(bad, 0);
  }
}

// U (H^-1 = U^T U) by the blocked, parallel factorization, at sizes of one panel, several
// and a partial last one: upper triangular with a positive diagonal, U H U^T = I, and equal
// to the straightforward computation (inverse, then its Cholesky factor).
TEST(Gptq, InverseFactor) {
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  for (int64_t k : {int64_t{72}, int64_t{128}, int64_t{300}}) {
    SCOPED_TRACE("k " + std::to_string(k));
    Eigen::MatrixXd x(2 * k, k);
    for (int64_t i = 0; i < x.size(); ++i)
      x.data()[i] = nd(rng);
    Eigen::MatrixXd h = x.transpose() * x;
    h.diagonal().array() += 0.01 * h.diagonal().mean();
    std::vector<double> hv(h.data(), h.data() + k * k), uv;
    ASSERT_TRUE(qlc::gptqInverseFactor(hv, k, uv));
    const Eigen::Map<const Eigen::MatrixXd> u(uv.data(), k, k);
    EXPECT_EQ(Eigen::MatrixXd(u.triangularView<Eigen::StrictlyLower>()).cwiseAbs().maxCoeff(), 0.0);
    EXPECT_GT(u.diagonal().minCoeff(), 0.0);
    const Eigen::MatrixXd eye = u * h * u.transpose();
    EXPECT_LT((eye - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff(), 1e-9);
    const Eigen::MatrixXd direct =
        Eigen::LLT<Eigen::MatrixXd>(h.inverse()).matrixU().toDenseMatrix();
    EXPECT_LT((u - direct).cwiseAbs().maxCoeff(), 1e-9 * direct.cwiseAbs().maxCoeff());
  }
  std::vector<double> notPd(16, 0.0), uv;
  notPd[0] = notPd[5] = notPd[10] = 1.0; // the last diagonal entry is 0
  EXPECT_FALSE(qlc::gptqInverseFactor(notPd, 4, uv));
}

TEST(Gptq, RefusesBadParameters) {
  std::vector<float> w(4 * 64, 0.5f);
  std::vector<double> h(64 * 64, 0.0);
  for (int i = 0; i < 64; ++i)
    h[i * 64 + i] = 1.0;
  std::string error;
  qlc::GptqParams p;
  p.quant = {4, 32, false};
  p.actOrder = true;
  EXPECT_TRUE(mlir::failed(qlc::quantizeGptq(w, 4, 64, h, p, error)));
  EXPECT_NE(error.find("static-groups"), std::string::npos) << error;
  p.staticGroups = true;
  EXPECT_TRUE(mlir::succeeded(qlc::quantizeGptq(w, 4, 64, h, p, error))) << error;
  p.quant.groupSize = 0; // one group per row: act-order needs nothing more
  p.staticGroups = false;
  EXPECT_TRUE(mlir::succeeded(qlc::quantizeGptq(w, 4, 64, h, p, error))) << error;
  p.quant.bits = 3;
  EXPECT_TRUE(mlir::failed(qlc::quantizeGptq(w, 4, 64, h, p, error)));
  EXPECT_NE(error.find("bits"), std::string::npos) << error;
  p.quant.bits = 4;
  p.dampPercent = 0.0;
  EXPECT_TRUE(mlir::failed(qlc::quantizeGptq(w, 4, 64, h, p, error)));
  p.dampPercent = 0.01;
  std::vector<double> neg(h);
  neg[0] = -100.0; // not positive definite even after dampening
  EXPECT_TRUE(mlir::failed(qlc::quantizeGptq(w, 4, 64, neg, p, error)));
  EXPECT_NE(error.find("positive definite"), std::string::npos) << error;
}

} // namespace
