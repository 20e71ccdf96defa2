//===- Awq.cpp - AWQ's scale and clipping searches -------------------------===//
#include "passes/Awq.h"

#include "ir/Float16.h"
#include "passes/CalibCuda.h"
#include "passes/CalibExecutor.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace qlc {

namespace {
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
} // namespace

double awqOutputError(const std::vector<float> &a, const std::vector<float> &b, int64_t n,
                      int64_t k, const std::vector<float> &h) {
  Eigen::Map<const RowMatF> H(h.data(), k, k);
  std::mutex mu;
  double total = 0;
  parallelFor(n, [&](int64_t r0, int64_t r1) {
    Eigen::Map<const RowMatF> A(a.data() + r0 * k, r1 - r0, k), B(b.data() + r0 * k, r1 - r0, k);
    RowMatF D = A - B;
    RowMatF DH = D * H;
    const double part = DH.cwiseProduct(D).cast<double>().sum();
    std::lock_guard<std::mutex> lock(mu);
    total += part;
  });
  return total;
}

std::vector<float> awqScaledRtn(const std::vector<float> &w, int64_t n, int64_t k,
                                const std::vector<float> &s, const IntQuantParams &p) {
  std::vector<float> scaled(w.size());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      scaled[r * k + c] = w[r * k + c] * s[c];
  std::vector<float> q = dequantizeInt(quantizeRtn(scaled, n, k, p), p);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      q[r * k + c] /= s[c];
  return q;
}

namespace {

/// The scale search's candidate g: mean|x|^alpha, alpha = g / grid, normalized.
std::vector<float> candidateScales(const std::vector<float> &meanAbs, int64_t g,
                                   const AwqParams &p) {
  const int64_t k = static_cast<int64_t>(meanAbs.size());
  std::vector<float> s(k);
  const double alpha = static_cast<double>(g) / static_cast<double>(p.grid);
  float mx = 0.0f, mn = INFINITY;
  for (int64_t c = 0; c < k; ++c) {
    s[c] = std::max(1e-4f, static_cast<float>(std::pow(static_cast<double>(meanAbs[c]), alpha)));
    mx = std::max(mx, s[c]);
    mn = std::min(mn, s[c]);
  }
  const float norm = std::sqrt(mx * mn);
  for (float &v : s)
    v /= norm;
  return s;
}

/// The candidate with the first smallest error (all ones when none is finite).
std::vector<float> pickScales(const std::vector<std::vector<float>> &cands,
                              const std::vector<double> &errors, int64_t k, double *bestError,
                              double *rtnError) {
  std::vector<float> best(k, 1.0f);
  double bestErr = INFINITY;
  for (size_t g = 0; g < cands.size(); ++g) {
    if (g == 0 && rtnError != nullptr)
      *rtnError = errors[g];
    if (errors[g] < bestErr) {
      bestErr = errors[g];
      best = cands[g];
    }
  }
  if (bestError != nullptr)
    *bestError = bestErr;
  return best;
}

} // namespace

std::vector<float> awqSearchScales(const std::vector<const std::vector<float> *> &ws,
                                   const std::vector<int64_t> &ns, int64_t k,
                                   const std::vector<float> &h, const std::vector<float> &meanAbs,
                                   const AwqParams &p, double *bestError, double *rtnError) {
  std::vector<std::vector<float>> cands;
  std::vector<double> errors;
  for (int64_t g = 0; g < p.grid; ++g) {
    cands.push_back(candidateScales(meanAbs, g, p));
    double err = 0;
    for (size_t i = 0; i < ws.size(); ++i)
      err += awqOutputError(*ws[i], awqScaledRtn(*ws[i], ns[i], k, cands[g], p.quant), ns[i], k, h);
    errors.push_back(err);
  }
  return pickScales(cands, errors, k, bestError, rtnError);
}

bool awqSearchScalesOnDevice(calibcuda::Device &gpu,
                             const std::vector<const std::vector<float> *> &ws,
                             const std::vector<int64_t> &ns, int64_t k, const std::vector<float> &h,
                             const std::vector<float> &meanAbs, const AwqParams &p,
                             std::vector<float> &best, std::string &error, double *bestError,
                             double *rtnError) {
  std::vector<std::vector<float>> cands;
  for (int64_t g = 0; g < p.grid; ++g)
    cands.push_back(candidateScales(meanAbs, g, p));
  std::vector<double> errors;
  if (!gpu.awqScaleErrors(ws, ns, k, h, cands, static_cast<int>(p.quant.bits),
                          effectiveGroupSize(p.quant, k), p.quant.symmetric, errors, error))
    return false;
  best = pickScales(cands, errors, k, bestError, rtnError);
  return true;
}

bool awqClipOnDevice(calibcuda::Device &gpu, std::vector<float> &w, int64_t n, int64_t k,
                     const std::vector<float> &h, const AwqParams &p, std::string &error) {
  return gpu.awqClip(w, n, k, h, static_cast<int>(p.quant.bits), effectiveGroupSize(p.quant, k),
                     p.quant.symmetric, p.grid, awqClipSteps(p), error);
}

int64_t awqClipSteps(const AwqParams &p) {
  return static_cast<int64_t>(p.maxShrink * static_cast<double>(p.grid));
}

void awqClip(std::vector<float> &w, int64_t n, int64_t k, const std::vector<float> &h,
             const AwqParams &p) {
  const int64_t gs = effectiveGroupSize(p.quant, k), groups = (k + gs - 1) / gs;
  const int maxq = (1 << p.quant.bits) - 1;
  const int64_t steps = awqClipSteps(p);
  parallelFor(n, [&](int64_t r0, int64_t r1) {
    std::vector<float> clamped(gs), d(gs);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t b = g * gs, len = std::min(gs, k - b);
      for (int64_t r = r0; r < r1; ++r) {
        float *row = w.data() + r * k + b;
        float absMax = 0.0f;
        for (int64_t i = 0; i < len; ++i)
          absMax = std::max(absMax, std::fabs(row[i]));
        double bestErr = INFINITY;
        float bestMax = absMax;
        for (int64_t step = 0; step < steps; ++step) {
          const float m = absMax * (1.0f - static_cast<float>(step) / static_cast<float>(p.grid));
          for (int64_t i = 0; i < len; ++i)
            clamped[i] = std::clamp(row[i], -m, m);
          float scale;
          int zero[1];
          groupScaleZero(clamped.data(), len, p.quant, scale, zero);
          for (int64_t i = 0; i < len; ++i) {
            const float code = std::clamp(std::nearbyint(clamped[i] / scale) + zero[0], 0.0f,
                                          static_cast<float>(maxq));
            d[i] = (code - static_cast<float>(zero[0])) * scale - row[i];
          }
          double err = 0;
          for (int64_t i = 0; i < len; ++i) {
            double acc = 0;
            const float *hr = h.data() + (b + i) * k + b;
            for (int64_t j = 0; j < len; ++j)
              acc += static_cast<double>(hr[j]) * d[j];
            err += acc * d[i];
          }
          if (err < bestErr) {
            bestErr = err;
            bestMax = m;
          }
        }
        for (int64_t i = 0; i < len; ++i)
          row[i] = std::clamp(row[i], -bestMax, bestMax);
      }
    }
  });
}

} // namespace qlc
