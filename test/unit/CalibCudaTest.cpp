//===- CalibCudaTest.cpp - GPU calibration against the CPU's ---------------===//
//
// Each GPU step (CalibCuda.h) on random inputs of awkward sizes against a float64
// reference (projections, attention, the Hessian) or against the CPU implementation it
// mirrors (GPTQ: quantizeGptq on the same Hessian). Skipped without a GPU (CI builds
// only; docs/quantization.md records the GPU machine's runs).
//
#include "passes/CalibCuda.h"
#include "ir/Float16.h"
#include "passes/Awq.h"
#include "passes/Gptq.h"
#include "passes/QuantUtil.h"

#include <Eigen/Core>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace {

using qlc::calibcuda::Device;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::string &whyNoGpu() {
  static std::string why;
  return why;
}

Device *gpu() {
  static std::unique_ptr<Device> d = Device::open(whyNoGpu());
  return d.get();
}

#define REQUIRE_GPU()                                                                              \
  if (gpu() == nullptr)                                                                            \
  GTEST_SKIP() << "no GPU: " << whyNoGpu()

std::vector<float> randomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

TEST(CalibCuda, MatmulT) {
  REQUIRE_GPU();
  struct Case {
    int64_t rows, k, n;
    bool bias;
  };
  for (Case c : {Case{1, 1, 1, false}, Case{37, 300, 70, true}, Case{129, 65, 257, false},
                 Case{513, 1000, 33, true}}) {
    SCOPED_TRACE(std::to_string(c.rows) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n));
    auto x = randomVector(c.rows * c.k, 1), w = randomVector(c.n * c.k, 2),
         b = randomVector(c.n, 3);
    std::vector<float> y(c.rows * c.n);
    std::string error;
    ASSERT_TRUE(gpu()->matmulT(x.data(), c.rows, c.k, w.data(), c.n, c.bias ? b.data() : nullptr,
                               y.data(), error))
        << error;
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t j = 0; j < c.n; ++j) {
        double ref = c.bias ? b[j] : 0.0, mag = std::fabs(ref);
        for (int64_t i = 0; i < c.k; ++i) {
          ref += static_cast<double>(x[r * c.k + i]) * w[j * c.k + i];
          mag += std::fabs(static_cast<double>(x[r * c.k + i]) * w[j * c.k + i]);
        }
        ASSERT_NEAR(y[r * c.n + j], ref, 1e-6 * mag + 1e-30) << r << "," << j;
      }
  }
}

TEST(CalibCuda, Attention) {
  REQUIRE_GPU();
  struct Case {
    int64_t samples, seq, heads, kvHeads, headDim, window;
  };
  for (Case c : {Case{3, 45, 6, 2, 16, 0}, Case{2, 33, 4, 4, 8, 0}, Case{2, 40, 4, 1, 32, 7},
                 Case{1, 1, 2, 2, 64, 0}}) {
    SCOPED_TRACE("samples " + std::to_string(c.samples) + " seq " + std::to_string(c.seq) +
                 " heads " + std::to_string(c.heads) + "/" + std::to_string(c.kvHeads) +
                 " window " + std::to_string(c.window));
    const int64_t rows = c.samples * c.seq, qc = c.heads * c.headDim, kc = c.kvHeads * c.headDim;
    auto q = randomVector(rows * qc, 4, 2.0f), k = randomVector(rows * kc, 5),
         v = randomVector(rows * kc, 6);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.headDim));
    std::vector<float> out(rows * qc);
    std::string error;
    ASSERT_TRUE(gpu()->attention(q.data(), k.data(), v.data(), c.samples, c.seq, c.heads, c.kvHeads,
                                 c.headDim, c.window, scale, out.data(), error))
        << error;
    double num = 0, den = 0;
    for (int64_t s = 0; s < c.samples; ++s)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t i = 0; i < c.seq; ++i) {
          const int64_t g = h / (c.heads / c.kvHeads), qi = (s * c.seq + i) * qc + h * c.headDim;
          const int64_t lo = c.window > 0 && i >= c.window ? i - c.window + 1 : 0;
          std::vector<double> p(i + 1, 0.0);
          double mx = -INFINITY, sum = 0;
          for (int64_t j = lo; j <= i; ++j) {
            const int64_t kj = (s * c.seq + j) * kc + g * c.headDim;
            double dot = 0;
            for (int64_t d = 0; d < c.headDim; ++d)
              dot += static_cast<double>(q[qi + d]) * k[kj + d];
            p[j] = dot * scale;
            mx = std::max(mx, p[j]);
          }
          for (int64_t j = lo; j <= i; ++j)
            sum += p[j] = std::exp(p[j] - mx);
          for (int64_t d = 0; d < c.headDim; ++d) {
            double ref = 0;
            for (int64_t j = lo; j <= i; ++j)
              ref += p[j] / sum * v[(s * c.seq + j) * kc + g * c.headDim + d];
            const double e = out[qi + d] - ref;
            num += e * e;
            den += ref * ref;
          }
        }
    EXPECT_LE(std::sqrt(num / den), 2e-6);
  }
}

/// H = X^T X in float64, and X itself: rows of features with unequal scales, one feature
/// never seen (a dead column).
MatD hessianOf(int64_t rows, int64_t k, std::vector<float> &x) {
  x = randomVector(rows * k, 7);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; ++c)
      x[r * k + c] = c == 5 ? 0.0f : x[r * k + c] * (0.2f + static_cast<float>(c % 11));
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> X(
      x.data(), rows, k);
  MatD xd = X.cast<double>();
  return xd.transpose() * xd;
}

double outputError(const std::vector<float> &w, const std::vector<float> &q, int64_t n, int64_t k,
                   const MatD &h) {
  MatD d(n, k);
  for (int64_t i = 0; i < n * k; ++i)
    d.data()[i] = static_cast<double>(w[i]) - q[i];
  return std::sqrt((d * h).cwiseProduct(d).sum());
}

TEST(CalibCuda, GptqMatchesTheCpu) {
  REQUIRE_GPU();
  const int64_t n = 70, k = 300, rows = 600; // k: blocks of 128, 128 and 44
  std::vector<float> x;
  const MatD H = hessianOf(rows, k, x);
  std::vector<double> diag, h(H.data(), H.data() + k * k);
  std::string error;
  ASSERT_TRUE(gpu()->hessian(x.data(), rows, k, diag, error)) << error;
  for (int64_t c = 0; c < k; ++c)
    ASSERT_NEAR(diag[c], H(c, c), 1e-12 * H(c, c)) << c;
  EXPECT_EQ(diag[5], 0.0);
  const std::vector<float> w = randomVector(n * k, 8, 0.05f);
  struct Case {
    int bits;
    int64_t groupSize, blockSize;
    bool symmetric, actOrder, staticGroups;
  };
  for (Case c : {Case{4, 64, 128, false, false, false}, Case{4, 128, 128, false, false, false},
                 Case{4, 256, 128, false, false, false}, Case{4, 64, 32, false, false, false},
                 Case{4, 0, 128, false, false, false}, Case{4, 128, 128, true, false, false},
                 Case{4, 64, 128, false, true, true}, Case{4, 0, 128, false, true, false},
                 Case{8, 0, 128, false, false, false}, Case{8, 32, 128, true, true, true}}) {
    SCOPED_TRACE("bits " + std::to_string(c.bits) + " group " + std::to_string(c.groupSize) +
                 " block " + std::to_string(c.blockSize) + (c.symmetric ? " sym" : "") +
                 (c.actOrder ? " act-order" : "") + (c.staticGroups ? " static" : ""));
    qlc::GptqParams p;
    p.quant = {c.bits, c.groupSize, c.symmetric};
    p.blockSize = c.blockSize;
    p.actOrder = c.actOrder;
    p.staticGroups = c.staticGroups;
    auto cpu = qlc::quantizeGptq(w, n, k, h, p, error);
    ASSERT_TRUE(mlir::succeeded(cpu)) << error;
    std::vector<float> deq;
    auto dev = qlc::quantizeGptqOnDevice(*gpu(), w, n, k, diag, p, deq, error);
    ASSERT_TRUE(mlir::succeeded(dev)) << error;
    ASSERT_EQ(dev->qweight.size(), cpu->qweight.size());
    ASSERT_EQ(dev->scales.size(), cpu->scales.size());
    ASSERT_EQ(dev->zeros.size(), cpu->zeros.size());
    // The same algorithm in float64: only the blocked products' summation order differs,
    // which may move a value across a rounding boundary, rarely.
    int64_t codes = 0, scales = 0, zeros = 0;
    for (size_t i = 0; i < cpu->qweight.size(); ++i)
      codes += dev->qweight[i] != cpu->qweight[i];
    for (size_t i = 0; i < cpu->scales.size(); ++i)
      scales += dev->scales[i] != cpu->scales[i];
    for (size_t i = 0; i < cpu->zeros.size(); ++i)
      zeros += dev->zeros[i] != cpu->zeros[i];
    EXPECT_LE(codes, static_cast<int64_t>(cpu->qweight.size() / 1000)) << "packed bytes differ";
    EXPECT_LE(scales, static_cast<int64_t>(cpu->scales.size() / 1000));
    EXPECT_LE(zeros, static_cast<int64_t>(cpu->zeros.size() / 1000));
    EXPECT_EQ(deq, qlc::dequantizeInt(*dev, p.quant)) << "the GPU's dequantized weight";
    const std::vector<float> cpuDeq = qlc::dequantizeInt(*cpu, p.quant);
    const double eCpu = outputError(w, cpuDeq, n, k, H), eGpu = outputError(w, deq, n, k, H);
    EXPECT_NEAR(eGpu, eCpu, 1e-6 * eCpu);
    // And it is GPTQ: below round-to-nearest's error.
    const double eRtn =
        outputError(w, qlc::dequantizeInt(qlc::quantizeRtn(w, n, k, p.quant), p.quant), n, k, H);
    EXPECT_LT(eGpu, eRtn);
  }
}

TEST(CalibCuda, GptqNeedsItsHessian) {
  REQUIRE_GPU();
  std::vector<float> x = randomVector(20 * 16, 9), w = randomVector(8 * 24, 10);
  std::vector<double> diag;
  std::string error;
  ASSERT_TRUE(gpu()->hessian(x.data(), 20, 16, diag, error)) << error;
  qlc::GptqParams p;
  p.quant = {4, 0, false};
  std::vector<float> deq;
  std::vector<double> wrong(24, 1.0);
  auto q = qlc::quantizeGptqOnDevice(*gpu(), w, 8, 24, wrong, p, deq, error);
  EXPECT_TRUE(mlir::failed(q));
  EXPECT_NE(error.find("no Hessian of size 24"), std::string::npos) << error;
}

TEST(CalibCuda, AwqStats) {
  REQUIRE_GPU();
  const int64_t rows = 257, k = 77;
  std::vector<float> x;
  const MatD H = hessianOf(rows, k, x);
  std::string error;
  qlc::calibcuda::BufferPtr dx = gpu()->upload(x.data(), rows, k, error);
  ASSERT_TRUE(dx) << error;
  std::vector<double> h, absSum;
  ASSERT_TRUE(gpu()->awqStats(*dx, h, absSum, error)) << error;
  ASSERT_EQ(h.size(), static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      ASSERT_NEAR(h[i * k + j], H(i, j), 1e-12 * std::sqrt(H(i, i) * H(j, j)) + 1e-300)
          << i << "," << j;
  for (int64_t c = 0; c < k; ++c) {
    double ref = 0;
    for (int64_t r = 0; r < rows; ++r)
      ref += std::fabs(x[r * k + c]);
    ASSERT_NEAR(absSum[c], ref, 1e-12 * ref) << c;
  }
}

/// AWQ's inputs: weights [70, 300] and [33, 300], the Hessian in f32 and mean |x|.
struct AwqCase {
  int64_t k = 300;
  std::vector<float> w1, w2, h, meanAbs;
  MatD H;
  AwqCase() {
    std::vector<float> x;
    H = hessianOf(600, k, x);
    w1 = randomVector(70 * k, 11, 0.05f);
    w2 = randomVector(33 * k, 12, 0.05f);
    h.assign(H.data(), H.data() + k * k);
    meanAbs.assign(k, 0.0f);
    for (int64_t r = 0; r < 600; ++r)
      for (int64_t c = 0; c < k; ++c)
        meanAbs[c] += std::fabs(x[r * k + c]) / 600.0f;
  }
};

TEST(CalibCuda, AwqScaleSearchMatchesTheCpu) {
  REQUIRE_GPU();
  AwqCase a;
  for (int64_t gs : {int64_t{64}, int64_t{128}, int64_t{0}}) {
    SCOPED_TRACE("group " + std::to_string(gs));
    qlc::AwqParams p;
    p.quant = {4, gs, false};
    const std::vector<const std::vector<float> *> ws{&a.w1, &a.w2};
    const std::vector<int64_t> ns{70, 33};
    double cpuBest = 0, cpuRtn = 0, gpuBest = 0, gpuRtn = 0;
    std::vector<float> cpu =
        qlc::awqSearchScales(ws, ns, a.k, a.h, a.meanAbs, p, &cpuBest, &cpuRtn);
    std::vector<float> dev;
    std::string error;
    ASSERT_TRUE(qlc::awqSearchScalesOnDevice(*gpu(), ws, ns, a.k, a.h, a.meanAbs, p, dev, error,
                                             &gpuBest, &gpuRtn))
        << error;
    // The same RTN, the products in f32 in another order: errors within f32 sums' noise.
    EXPECT_NEAR(gpuRtn, cpuRtn, 1e-4 * cpuRtn);
    EXPECT_NEAR(gpuBest, cpuBest, 1e-4 * cpuBest);
    EXPECT_LT(gpuBest, gpuRtn) << "the search found nothing better than RTN";
    if (dev != cpu) { // a near tie decided the other way: the CPU must rate it as good
      double err = 0;
      for (size_t i = 0; i < ws.size(); ++i)
        err += qlc::awqOutputError(*ws[i], qlc::awqScaledRtn(*ws[i], ns[i], a.k, dev, p.quant),
                                   ns[i], a.k, a.h);
      EXPECT_LE(err, cpuBest * (1 + 1e-4));
    }
  }
}

/// The clipping search's objective: sum over rows and groups of d H_gg d^T, d the group's
/// RTN error after clamping (w: the original weight, clamped: the search's result).
double clipObjective(const std::vector<float> &w, const std::vector<float> &clamped, int64_t n,
                     int64_t k, const MatD &H, const qlc::IntQuantParams &p) {
  const std::vector<float> q = qlc::dequantizeInt(qlc::quantizeRtn(clamped, n, k, p), p);
  const int64_t gs = qlc::effectiveGroupSize(p, k);
  double total = 0;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < k; b += gs) {
      const int64_t len = std::min(gs, k - b);
      Eigen::VectorXd d(len);
      for (int64_t i = 0; i < len; ++i)
        d[i] = static_cast<double>(q[r * k + b + i]) - w[r * k + b + i];
      total += d.dot(H.block(b, b, len, len) * d);
    }
  return total;
}

TEST(CalibCuda, AwqClipMatchesTheCpu) {
  REQUIRE_GPU();
  AwqCase a;
  for (int64_t gs : {int64_t{64}, int64_t{128}, int64_t{0}}) { // 300 = 4 x 64 + 44, 2 x 128 + 44
    SCOPED_TRACE("group " + std::to_string(gs));
    qlc::AwqParams p;
    p.quant = {4, gs, false};
    std::vector<float> cpu = a.w1, dev = a.w1;
    qlc::awqClip(cpu, 70, a.k, a.h, p);
    std::string error;
    ASSERT_TRUE(qlc::awqClipOnDevice(*gpu(), dev, 70, a.k, a.h, p, error)) << error;
    int64_t same = 0;
    for (size_t i = 0; i < cpu.size(); ++i)
      same += cpu[i] == dev[i];
    EXPECT_GE(same, static_cast<int64_t>(cpu.size() * 99 / 100));
    const double eCpu = clipObjective(a.w1, cpu, 70, a.k, a.H, p.quant),
                 eGpu = clipObjective(a.w1, dev, 70, a.k, a.H, p.quant),
                 eNone = clipObjective(a.w1, a.w1, 70, a.k, a.H, p.quant);
    EXPECT_LE(eGpu, eCpu * (1 + 1e-4));
    EXPECT_LT(eGpu, eNone) << "clipping did not help";
  }
}

} // namespace
