//===- Gptq.cpp - the GPTQ algorithm on one weight matrix ------------------===//
//
// Follows gptq.py's fasterquant step by step (in float64), including two details
// outputs depend on: a group's scale and zero are found when its first column comes up,
// from the weight as the lazy updates of previous blocks left it (updates inside the
// current block are not yet written back); and the dead-column handling (zero Hessian
// diagonal: weight column zeroed, diagonal set to 1).
//
#include "passes/Gptq.h"

#include "passes/CalibCuda.h"
#include "passes/CalibExecutor.h"

#include "ir/Float16.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

namespace qlc {

namespace {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// Scale and zero of every row for one group, from columns [b, e) of `w`.
struct GroupParams {
  std::vector<float> scale;
  std::vector<int> zero;
};

GroupParams findParams(const MatrixD &w, int64_t b, int64_t e, const IntQuantParams &p) {
  const int64_t n = w.rows(), len = e - b;
  GroupParams g;
  g.scale.resize(n);
  g.zero.resize(n);
  std::vector<float> row(len);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < len; ++i)
      row[i] = static_cast<float>(w(r, b + i));
    int z[1];
    groupScaleZero(row.data(), len, p, g.scale[r], z);
    g.zero[r] = z[0];
  }
  return g;
}

/// Replaces the symmetric positive definite `a` (its lower triangle is read) by its lower
/// Cholesky factor, right-looking by panels of kPanel columns: the diagonal block by
/// Eigen's LLT (the whole matrix when it is no larger), the rows below it by a triangular
/// solve and the trailing matrix by a product, both split over threads in chunks that do
/// not depend on the number of threads. False if `a` is not positive definite.
bool choleskyLower(MatrixD &a) {
  constexpr int64_t kPanel = 128, kChunk = 128;
  const int64_t k = a.rows();
  for (int64_t j = 0; j < k; j += kPanel) {
    const int64_t b = std::min(kPanel, k - j), rest = k - j - b;
    Eigen::LLT<MatrixD> d(a.block(j, j, b, b));
    if (d.info() != Eigen::Success)
      return false;
    const MatrixD l11 = d.matrixL();
    a.block(j, j, b, b) = l11;
    const int64_t chunks = (rest + kChunk - 1) / kChunk;
    // L21 = A21 L11^-T, by chunks of rows.
    parallelFor(chunks, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const int64_t r0 = j + b + c * kChunk, rows = std::min(kChunk, k - r0);
        auto l21 = a.block(r0, j, rows, b);
        l11.triangularView<Eigen::Lower>().transpose().solveInPlace<Eigen::OnTheRight>(l21);
      }
    });
    // A22 -= L21 L21^T on and below the diagonal, by chunks of columns (each reads the
    // panel's columns, which no chunk writes).
    parallelFor(chunks, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const int64_t c0 = j + b + c * kChunk, w = std::min(kChunk, k - c0);
        a.block(c0, c0, k - c0, w).noalias() -=
            a.block(c0, j, k - c0, b) * a.block(c0, j, w, b).transpose();
      }
    });
  }
  a.triangularView<Eigen::StrictlyUpper>().setZero();
  return true;
}

/// The upper triangular U with H^-1 = U^T U; false if H is not positive definite.
bool inverseFactor(const MatrixD &H, MatrixD &U) {
  const int64_t k = H.rows();
  // U, the upper Cholesky factor of H^-1 (gptq.py: cholesky(cholesky_inverse(cholesky(H)),
  // upper=True)), as J R^-1 J, where R is the lower Cholesky factor of J H J and J reverses
  // the order of rows and columns: then H^-1 = U^T U with U upper triangular with a positive
  // diagonal, which is unique. One factorization and a triangular inverse (k^3 / 3 each)
  // instead of two factorizations and a full inverse (~2.7 k^3 together); the inverse's
  // columns are solved in parallel, in chunks that do not depend on the number of threads.
  MatrixD R = H.reverse();
  if (!choleskyLower(R))
    return false;
  MatrixD Rinv = MatrixD::Zero(k, k);
  constexpr int64_t kInvCols = 128;
  parallelFor((k + kInvCols - 1) / kInvCols, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      // Columns c0 .. c0 + w - 1 of R^-1 are zero above row c0, and below it they are those
      // of the inverse of R's trailing block.
      const int64_t c0 = c * kInvCols, w = std::min(kInvCols, k - c0);
      MatrixD X = MatrixD::Identity(k - c0, w);
      R.bottomRightCorner(k - c0, k - c0).triangularView<Eigen::Lower>().solveInPlace(X);
      Rinv.block(c0, c0, k - c0, w) = X;
    }
  });
  U = Rinv.reverse();
  return true;
}

} // namespace

mlir::LogicalResult checkGptqParams(const GptqParams &p, int64_t k, std::string &error) {
  if (p.quant.bits != 4 && p.quant.bits != 8) {
    error = "bits must be 4 or 8, got " + std::to_string(p.quant.bits);
    return mlir::failure();
  }
  if (p.quant.groupSize < 0) {
    error = "group-size must be >= 0 (0: per channel), got " + std::to_string(p.quant.groupSize);
    return mlir::failure();
  }
  if (p.blockSize <= 0) {
    error = "block-size must be positive, got " + std::to_string(p.blockSize);
    return mlir::failure();
  }
  if (!(p.dampPercent > 0.0 && p.dampPercent < 1.0)) {
    std::ostringstream os;
    os << "damp-percent must be in (0, 1), got " << p.dampPercent;
    error = os.str();
    return mlir::failure();
  }
  if (p.actOrder && !p.staticGroups && effectiveGroupSize(p.quant, k) < k) {
    error = "act-order with groups needs static-groups (per-group scales are kept in natural "
            "column order; there is no g_idx)";
    return mlir::failure();
  }
  return mlir::success();
}

mlir::FailureOr<IntQuantized> quantizeGptq(const std::vector<float> &wRowMajor, int64_t n,
                                           int64_t k, const std::vector<double> &h,
                                           const GptqParams &p, std::string &error) {
  if (mlir::failed(checkGptqParams(p, k, error)))
    return mlir::failure();
  if (static_cast<int64_t>(wRowMajor.size()) != n * k ||
      static_cast<int64_t>(h.size()) != k * k) {
    error = "weight or Hessian of the wrong size";
    return mlir::failure();
  }
  const IntQuantParams &qp = p.quant;
  const int64_t gs = effectiveGroupSize(qp, k);
  const bool grouped = gs < k;
  const int maxq = (1 << qp.bits) - 1;

  MatrixD W(n, k);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      W(r, c) = wRowMajor[r * k + c];
  MatrixD H = Eigen::Map<const MatrixD>(h.data(), k, k); // symmetric: layout is moot
  for (int64_t c = 0; c < k; ++c)
    if (H(c, c) == 0.0) {
      H(c, c) = 1.0;
      W.col(c).setZero();
    }

  // Group parameters known up front: per channel (one group), or static groups.
  std::vector<GroupParams> fixed;
  if (!grouped)
    fixed.push_back(findParams(W, 0, k, qp));
  else if (p.staticGroups)
    for (int64_t b = 0; b < k; b += gs)
      fixed.push_back(findParams(W, b, std::min(b + gs, k), qp));

  std::vector<int64_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (p.actOrder) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return H(a, a) > H(b, b); });
    MatrixD Wp(n, k), Hp(k, k);
    for (int64_t j = 0; j < k; ++j)
      Wp.col(j) = W.col(perm[j]);
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < k; ++i)
        Hp(i, j) = H(perm[i], perm[j]);
    W = std::move(Wp);
    H = std::move(Hp);
  }

  const double damp = p.dampPercent * H.diagonal().mean();
  H.diagonal().array() += damp;
  MatrixD U;
  if (!inverseFactor(H, U)) {
    error = "the damped Hessian is not positive definite (raise damp-percent)";
    return mlir::failure();
  }

  // Rows are independent given U (each row's error moves along its own columns), so the
  // column loop runs on chunks of kChunkRows rows in parallel. The chunks do not depend on
  // the number of threads, so neither do the results.
  IntQuantized out = makeIntQuantized(n, k, qp);
  constexpr int64_t kChunkRows = 64;
  const int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
  parallelFor(chunks, [&](int64_t cb, int64_t ce) {
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      const int64_t r0 = chunk * kChunkRows, rows = std::min(kChunkRows, n - r0);
      MatrixD Wc = W.middleRows(r0, rows);
      std::vector<uint8_t> seen(static_cast<size_t>(out.groups), 0);
      // g's rows start at row `base` of the matrix (fixed: all rows; current: this chunk).
      auto record = [&](const GroupParams &g, int64_t base, int64_t group) {
        if (seen[group])
          return;
        seen[group] = 1;
        for (int64_t r = 0; r < rows; ++r) {
          out.scales[(r0 + r) * out.groups + group] = floatToHalf(g.scale[base + r]);
          if (!qp.symmetric)
            out.zeros[(r0 + r) * out.groups + group] = static_cast<uint8_t>(g.zero[base + r]);
        }
      };
      GroupParams current;
      Eigen::VectorXd q(rows), err(rows);
      for (int64_t i1 = 0; i1 < k; i1 += p.blockSize) {
        const int64_t i2 = std::min(i1 + p.blockSize, k), count = i2 - i1;
        MatrixD W1 = Wc.middleCols(i1, count);
        MatrixD Err1(rows, count);
        for (int64_t i = 0; i < count; ++i) {
          const int64_t j = i1 + i, natural = perm[j];
          const GroupParams *g;
          int64_t base = r0;
          if (!grouped) {
            g = &fixed[0];
          } else if (p.staticGroups) {
            g = &fixed[natural / gs];
          } else {
            if (j % gs == 0)
              current = findParams(Wc, j, std::min(j + gs, k), qp);
            g = &current;
            base = 0;
          }
          record(*g, base, natural / gs);
          const double d = U(j, j);
          for (int64_t r = 0; r < rows; ++r) {
            const double scale = g->scale[base + r], zero = g->zero[base + r];
            const double code =
                std::clamp(std::nearbyint(W1(r, i) / scale) + zero, 0.0, static_cast<double>(maxq));
            storeIntCode(out, qp.bits, r0 + r, natural, static_cast<int>(code));
            q(r) = scale * (code - zero);
            err(r) = (W1(r, i) - q(r)) / d;
          }
          W1.rightCols(count - i).noalias() -= err * U.row(j).segment(j, count - i);
          Err1.col(i) = err;
        }
        if (i2 < k)
          Wc.rightCols(k - i2).noalias() -= Err1 * U.block(i1, i2, count, k - i2);
      }
    }
  });
  return out;
}

mlir::FailureOr<IntQuantized>
quantizeGptqOnDevice(calibcuda::Device &gpu, const std::vector<float> &w, int64_t n, int64_t k,
                     const std::vector<double> &diag, const GptqParams &p,
                     std::vector<float> &dequantized, std::string &error) {
  if (mlir::failed(checkGptqParams(p, k, error)))
    return mlir::failure();
  if (static_cast<int64_t>(w.size()) != n * k || static_cast<int64_t>(diag.size()) != k) {
    error = "weight or Hessian of the wrong size";
    return mlir::failure();
  }
  // The host's part of quantizeGptq: dead columns, column order, damping.
  const int64_t gs = effectiveGroupSize(p.quant, k);
  calibcuda::GptqJob job;
  job.n = n;
  job.k = k;
  job.bits = static_cast<int>(p.quant.bits);
  job.groupSize = gs;
  job.symmetric = p.quant.symmetric;
  job.blockSize = p.blockSize;
  job.fixedGroups = gs >= k || p.staticGroups;
  job.dead.resize(k);
  std::vector<double> d(diag);
  for (int64_t c = 0; c < k; ++c)
    if (d[c] == 0.0) {
      d[c] = 1.0;
      job.dead[c] = 1;
    }
  job.perm.resize(k);
  std::iota(job.perm.begin(), job.perm.end(), 0);
  if (p.actOrder)
    std::stable_sort(job.perm.begin(), job.perm.end(),
                     [&](int32_t a, int32_t b) { return d[a] > d[b]; });
  double sum = 0; // in column order, as Eigen sums the permuted diagonal
  for (int32_t c : job.perm)
    sum += d[c];
  job.damp = p.dampPercent * (sum / static_cast<double>(k));
  calibcuda::GptqResult res;
  if (!gpu.gptq(w.data(), job, res, error))
    return mlir::failure();
  IntQuantized out = makeIntQuantized(n, k, p.quant);
  out.qweight = std::move(res.qweight);
  for (size_t i = 0; i < out.scales.size(); ++i)
    out.scales[i] = floatToHalf(res.scales[i]);
  if (!p.quant.symmetric)
    out.zeros = std::move(res.zeros);
  dequantized = std::move(res.dequantized);
  return out;
}

bool gptqInverseFactor(const std::vector<double> &h, int64_t k, std::vector<double> &u) {
  MatrixD U;
  if (static_cast<int64_t>(h.size()) != k * k ||
      !inverseFactor(Eigen::Map<const MatrixD>(h.data(), k, k), U))
    return false;
  u.assign(U.data(), U.data() + k * k);
  return true;
}

} // namespace qlc
