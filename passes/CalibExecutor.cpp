//===- CalibExecutor.cpp - the float model on calibration samples ----------===//
#include "passes/CalibExecutor.h"

#include "ir/Rope.h"
#include "passes/CalibCuda.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>

using namespace mlir;

namespace qlc {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMap = Eigen::Map<RowMat>;
using ConstRowMap = Eigen::Map<const RowMat>;
using StridedMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using ActPtr = std::shared_ptr<const Activation>;

Activation makeAct(int64_t rows, int64_t cols) {
  Activation a;
  a.rows = rows;
  a.cols = cols;
  a.data.resize(static_cast<size_t>(rows * cols));
  return a;
}

/// y = x * w^T (+ bias); w is [n, k] row-major.
Activation matmulT(const Activation &x, const std::vector<float> &w, int64_t n,
                   const std::vector<float> *bias) {
  Activation y = makeAct(x.rows, n);
  const int64_t k = x.cols;
  ConstRowMap W(w.data(), n, k);
  parallelFor(x.rows, [&](int64_t b, int64_t e) {
    ConstRowMap X(x.data.data() + b * k, e - b, k);
    RowMap Y(y.data.data() + b * n, e - b, n);
    Y.noalias() = X * W.transpose();
    if (bias != nullptr)
      Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data(), n);
  });
  return y;
}

RopeParams ropeParams(RopeOp op) {
  RopeParams p;
  p.headDim = op.getHeadDim();
  p.theta = op.getTheta().convertToDouble();
  p.scaling = op.getScaling().str();
  p.factor = op.getFactor().convertToDouble();
  p.lowFreqFactor = op.getLowFreqFactor().convertToDouble();
  p.highFreqFactor = op.getHighFreqFactor().convertToDouble();
  p.originalMaxPosition = op.getOriginalMaxPosition();
  return p;
}

/// Causal (optionally windowed) grouped-query attention of each sample over itself.
Activation attention(AttentionOp op, const Activation &q, const Activation &k,
                     const Activation &v, int64_t samples, int64_t seqLen) {
  const int64_t H = op.getNumHeads(), KVH = op.getNumKvHeads(), HD = op.getHeadDim();
  const int64_t window = op.getSlidingWindow() ? static_cast<int64_t>(*op.getSlidingWindow()) : 0;
  const float scale = static_cast<float>(op.getScale().convertToDouble());
  Activation out = makeAct(q.rows, H * HD);
  parallelFor(samples * H, [&](int64_t b, int64_t e) {
    RowMat scores(seqLen, seqLen);
    for (int64_t sh = b; sh < e; ++sh) {
      const int64_t s = sh / H, h = sh % H, g = h / (H / KVH), r0 = s * seqLen;
      StridedMap Q(q.data.data() + r0 * q.cols + h * HD, seqLen, HD, Eigen::OuterStride<>(q.cols));
      StridedMap K(k.data.data() + r0 * k.cols + g * HD, seqLen, HD, Eigen::OuterStride<>(k.cols));
      StridedMap V(v.data.data() + r0 * v.cols + g * HD, seqLen, HD, Eigen::OuterStride<>(v.cols));
      scores.noalias() = Q * K.transpose();
      for (int64_t i = 0; i < seqLen; ++i) {
        const int64_t lo = window > 0 && i >= window ? i - window + 1 : 0;
        float mx = -INFINITY;
        for (int64_t j = lo; j <= i; ++j)
          mx = std::max(mx, scores(i, j) * scale);
        float den = 0.0f;
        for (int64_t j = 0; j < seqLen; ++j) {
          float p = j >= lo && j <= i ? std::exp(scores(i, j) * scale - mx) : 0.0f;
          scores(i, j) = p;
          den += p;
        }
        scores.row(i) /= den;
      }
      Eigen::Map<RowMat, 0, Eigen::OuterStride<>> O(out.data.data() + r0 * out.cols + h * HD,
                                                   seqLen, HD, Eigen::OuterStride<>(out.cols));
      O.noalias() = scores * V;
    }
  });
  return out;
}

Activation rmsNorm(const Activation &x, const std::vector<float> &w, float eps) {
  Activation a = makeAct(x.rows, x.cols);
  parallelFor(x.rows, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float *xr = x.data.data() + t * x.cols;
      float ss = 0.0f;
      for (int64_t c = 0; c < x.cols; ++c)
        ss += xr[c] * xr[c];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(x.cols) + eps);
      for (int64_t c = 0; c < x.cols; ++c)
        a.data[t * x.cols + c] = w[c] * (xr[c] * inv);
    }
  });
  return a;
}

/// Rotate-half rope of each head (hd features) of each row at its position.
Activation rope(const Activation &x, const std::vector<float> &inv,
                const std::vector<int32_t> &positions, int64_t hd) {
  const int64_t h2 = hd / 2;
  Activation a = makeAct(x.rows, x.cols);
  parallelFor(x.rows, [&](int64_t b, int64_t e) {
    std::vector<float> cs(h2), sn(h2);
    for (int64_t t = b; t < e; ++t) {
      const float p = static_cast<float>(positions[t]);
      for (int64_t j = 0; j < h2; ++j) {
        const float ang = p * inv[j];
        cs[j] = std::cos(ang);
        sn[j] = std::sin(ang);
      }
      for (int64_t hb = 0; hb < x.cols; hb += hd) {
        const float *xi = x.data.data() + t * x.cols + hb;
        float *o = a.data.data() + t * x.cols + hb;
        for (int64_t j = 0; j < h2; ++j) {
          const float u = xi[j], w = xi[j + h2];
          o[j] = u * cs[j] - w * sn[j];
          o[j + h2] = w * cs[j] + u * sn[j];
        }
      }
    }
  });
  return a;
}

Activation siluMul(const Activation &g, const Activation &u) {
  Activation a = makeAct(g.rows, g.cols);
  parallelFor(g.rows * g.cols, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j)
      a.data[j] = g.data[j] / (1.0f + std::exp(-g.data[j])) * u.data[j];
  });
  return a;
}

Activation add(const Activation &x, const Activation &y) {
  Activation a = makeAct(x.rows, x.cols);
  for (size_t j = 0; j < a.data.size(); ++j)
    a.data[j] = x.data[j] + y.data[j];
  return a;
}

} // namespace

void parallelFor(int64_t n, const std::function<void(int64_t, int64_t)> &fn) {
  const int64_t threads =
      std::min<int64_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) {
    if (n > 0)
      fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int64_t b = chunk; b < n; b += chunk)
    pool.emplace_back(fn, b, std::min(n, b + chunk));
  fn(0, std::min(n, chunk));
  for (auto &t : pool)
    t.join();
}

std::string calibBlockName(const std::string &weight) {
  size_t at = weight.find("layers.");
  if (at == std::string::npos)
    return weight;
  size_t end = weight.find('.', at + 7);
  return weight.substr(0, end);
}

BlockProgress::BlockProgress(std::string pass, const std::vector<std::string> &weightNames)
    : pass(std::move(pass)), start(std::chrono::steady_clock::now()), blockStart(start) {
  for (const auto &w : weightNames)
    blockOf.push_back(calibBlockName(w));
  lastOfBlock.resize(blockOf.size());
  for (size_t i = 0; i < blockOf.size(); ++i) {
    lastOfBlock[i] = i + 1 == blockOf.size() || blockOf[i + 1] != blockOf[i];
    blocks += lastOfBlock[i];
  }
}

void BlockProgress::linearDone(size_t i) {
  if (i >= lastOfBlock.size() || !lastOfBlock[i])
    return;
  ++done;
  auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start).count();
  const double took = std::chrono::duration<double>(now - blockStart).count();
  blockStart = now;
  const double eta = elapsed / static_cast<double>(done) * static_cast<double>(blocks - done);
  if (llvm::errs().is_displayed()) { // a terminal: one bar, redrawn
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / blocks);
    llvm::errs() << llvm::format(
        "\rqlc: %s: [%s%s] %lld/%lld blocks, elapsed %.1f s, ETA %.1f s ", pass.c_str(),
        std::string(filled, '#').c_str(), std::string(kWidth - filled, ' ').c_str(),
        static_cast<long long>(done), static_cast<long long>(blocks), elapsed, eta);
    if (done == blocks)
      llvm::errs() << "\n";
    return;
  }
  llvm::errs() << llvm::format("qlc: %s: block %lld/%lld %s done in %.2f s, elapsed %.1f s, "
                               "ETA %.1f s\n",
                               pass.c_str(), static_cast<long long>(done),
                               static_cast<long long>(blocks), blockOf[i].c_str(), took, elapsed,
                               eta);
}

void accumulateGram(const Activation &x, std::vector<double> &h) {
  const int64_t k = x.cols;
  const int64_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<Eigen::MatrixXd> partial(static_cast<size_t>(threads));
  const int64_t chunk = (x.rows + threads - 1) / threads;
  parallelFor(threads, [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      Eigen::MatrixXd acc = Eigen::MatrixXd::Zero(k, k);
      Eigen::MatrixXf g(k, k);
      // f32 products over blocks of rows (the lower triangle: H is symmetric), summed in
      // f64.
      const int64_t end = std::min(x.rows, (t + 1) * chunk);
      for (int64_t b = t * chunk; b < end; b += 1024) {
        const int64_t m = std::min<int64_t>(1024, end - b);
        ConstRowMap X(x.data.data() + b * k, m, k);
        g.setZero();
        g.selfadjointView<Eigen::Lower>().rankUpdate(X.transpose());
        acc.triangularView<Eigen::Lower>() += g.cast<double>();
      }
      partial[t] = std::move(acc);
    }
  });
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(k, k);
  for (auto &p : partial)
    if (p.size() != 0)
      sum += p;
  const Eigen::MatrixXd full = sum.selfadjointView<Eigen::Lower>();
  Eigen::Map<Eigen::MatrixXd>(h.data(), k, k) += full;
}

LogicalResult CalibExecutor::run(const CalibrationData &batch, const LinearHook &hook,
                                 std::string &error, Activation *logits) {
  using Clock = std::chrono::steady_clock;
  computeSec = 0;
  Block &body = forward.getBody().front();
  if (forward.getNumArguments() != 2) {
    error = "@forward must take tokens and positions";
    return failure();
  }
  const int64_t rows = batch.samples * batch.seqLen;
  std::vector<int32_t> positions(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i)
    positions[i] = static_cast<int32_t>(i % batch.seqLen);

  // Where each value is read for the last time, so it can be freed right after.
  llvm::DenseMap<Operation *, int64_t> index;
  llvm::DenseMap<Value, int64_t> lastUse;
  int64_t i = 0;
  for (Operation &op : body) {
    index[&op] = i;
    for (Value v : op.getOperands())
      lastUse[v] = i;
    ++i;
  }
  // Each value lives in host memory (CPU) or in GPU memory (GPU, from the embedding on).
  struct Stored {
    ActPtr host;
    calibcuda::BufferPtr dev;
  };
  llvm::DenseMap<Value, Stored> values;
  auto get = [&](Value v) -> const Activation & { return *values.lookup(v).host; };
  auto dev = [&](Value v) -> const calibcuda::Buffer & { return *values.lookup(v).dev; };
  auto readWeight = [&](Value v, std::vector<float> &out) -> LogicalResult {
    auto w = v.getDefiningOp<WeightOp>();
    if (!w) {
      error = "a weight operand is not a qlc.weight";
      return failure();
    }
    auto data = weights.readFloat(w.getTensorName().str());
    if (!data) {
      error = "weight '" + w.getTensorName().str() + "' has no data";
      return failure();
    }
    out = std::move(*data);
    return success();
  };
  auto tokenArg = forward.getArgument(0), posArg = forward.getArgument(1);

  for (Operation &opRef : body) {
    Operation *op = &opRef;
    auto t0 = Clock::now();
    double hookSec = 0;
    std::optional<Activation> result;
    calibcuda::BufferPtr devResult;
    // Keeps a GPU op's result; false (with `error` set) when it failed.
    auto onGpu = [&](calibcuda::BufferPtr b) {
      devResult = std::move(b);
      return devResult != nullptr;
    };
    bool ok = true;
    if (isa<WeightOp, func::ReturnOp>(op)) {
      // Weights are read by their users; nothing to compute.
    } else if (auto e = dyn_cast<EmbeddingOp>(op)) {
      if (e.getIds() != tokenArg) {
        error = "qlc.embedding must read @forward's tokens";
        return failure();
      }
      std::vector<float> table;
      if (failed(readWeight(e.getTable(), table)))
        return failure();
      const int64_t d = cast<RankedTensorType>(e.getTable().getType()).getDimSize(1),
                    vocab = static_cast<int64_t>(table.size()) / d;
      Activation a = makeAct(rows, d);
      for (int64_t t = 0; t < rows; ++t) {
        const int32_t id = batch.tokens[t];
        if (id < 0 || id >= vocab) {
          error = "calibration token id " + std::to_string(id) + " is outside the vocabulary";
          return failure();
        }
        std::copy_n(table.data() + id * d, d, a.data.data() + t * d);
      }
      if (gpu != nullptr)
        ok = onGpu(gpu->upload(a.data.data(), a.rows, a.cols, error));
      else
        result = std::move(a);
    } else if (auto n = dyn_cast<RmsNormOp>(op)) {
      std::vector<float> w;
      if (failed(readWeight(n.getWeight(), w)))
        return failure();
      const float eps = static_cast<float>(n.getEpsilon().convertToDouble());
      if (gpu != nullptr)
        ok = onGpu(gpu->rmsNorm(dev(n.getX()), w.data(), eps, error));
      else
        result = rmsNorm(get(n.getX()), w, eps);
    } else if (auto l = dyn_cast<LinearOp>(op)) {
      std::vector<float> w, bias;
      if (failed(readWeight(l.getWeight(), w)) ||
          (l.getBias() && failed(readWeight(l.getBias(), bias))))
        return failure();
      // On the GPU the hook sees the input there.
      Activation onDevice;
      if (gpu != nullptr) {
        const calibcuda::Buffer &x = dev(l.getX());
        onDevice.rows = x.rows;
        onDevice.cols = x.cols;
        onDevice.device = &x;
      }
      const Activation &x = gpu != nullptr ? onDevice : get(l.getX());
      auto h0 = Clock::now();
      const size_t size = w.size();
      if (hook && failed(hook(l, x, w))) {
        error = error.empty() ? "the calibration hook failed" : error;
        return failure();
      }
      hookSec = std::chrono::duration<double>(Clock::now() - h0).count();
      if (w.size() != size) {
        error = "the calibration hook changed a weight's size";
        return failure();
      }
      const int64_t n = cast<RankedTensorType>(l.getType()).getDimSize(1);
      const std::vector<float> *b = l.getBias() ? &bias : nullptr;
      if (gpu != nullptr)
        ok = onGpu(gpu->linear(*x.device, w.data(), n, b ? b->data() : nullptr, error));
      else
        result = matmulT(x, w, n, b);
    } else if (auto r = dyn_cast<RopeOp>(op)) {
      if (r.getPositions() != posArg) {
        error = "qlc.rope must read @forward's positions";
        return failure();
      }
      const std::vector<float> inv = ropeInvFreq(ropeParams(r));
      if (gpu != nullptr)
        ok = onGpu(gpu->rope(dev(r.getX()), inv, r.getHeadDim(), batch.seqLen, error));
      else
        result = rope(get(r.getX()), inv, positions, r.getHeadDim());
    } else if (auto at = dyn_cast<AttentionOp>(op)) {
      if (at.getRope() || at.getQkvPacked()) { // the pipeline calibrates before any fusion
        error =
            std::string("the calibration executor does not run an attention with ") +
            (at.getRope() ? "a fused rope (qlc-fuse-rope)" : "packed q/k/v (qlc-fold-qkv-split)") +
            "; quantize before fusing";
        return failure();
      }
      if (gpu != nullptr) {
        const int64_t window =
            at.getSlidingWindow() ? static_cast<int64_t>(*at.getSlidingWindow()) : 0;
        ok = onGpu(gpu->attention(dev(at.getQ()), dev(at.getK()), dev(at.getV()), batch.samples,
                                  batch.seqLen, at.getNumHeads(), at.getNumKvHeads(),
                                  at.getHeadDim(), window,
                                  static_cast<float>(at.getScale().convertToDouble()), error));
      } else {
        result = attention(at, get(at.getQ()), get(at.getK()), get(at.getV()), batch.samples,
                           batch.seqLen);
      }
    } else if (auto s = dyn_cast<SiluMulOp>(op)) {
      if (gpu != nullptr)
        ok = onGpu(gpu->siluMul(dev(s.getGate()), dev(s.getUp()), error));
      else
        result = siluMul(get(s.getGate()), get(s.getUp()));
    } else if (auto ad = dyn_cast<AddOp>(op)) {
      if (gpu != nullptr)
        ok = onGpu(gpu->add(dev(ad.getLhs()), dev(ad.getRhs()), error));
      else
        result = add(get(ad.getLhs()), get(ad.getRhs()));
    } else if (auto lg = dyn_cast<LogitsOp>(op)) {
      if (logits != nullptr) {
        std::vector<float> w;
        if (failed(readWeight(lg.getWeight(), w)))
          return failure();
        const int64_t n = cast<RankedTensorType>(lg.getType()).getDimSize(1);
        if (gpu == nullptr) {
          *logits = matmulT(get(lg.getX()), w, n, nullptr);
        } else {
          calibcuda::BufferPtr y = gpu->linear(dev(lg.getX()), w.data(), n, nullptr, error);
          if (!y)
            return failure();
          *logits = makeAct(y->rows, y->cols);
          ok = gpu->download(*y, logits->data.data(), error);
        }
      }
    } else {
      error = "the calibration executor cannot run '" + op->getName().getStringRef().str() +
              "' (only float models: run calibrating passes before other rewrites)";
      return failure();
    }
    if (!ok)
      return failure();
    if ((result || devResult) && op->getNumResults() == 1)
      values[op->getResult(0)] = {result ? std::make_shared<const Activation>(std::move(*result))
                                         : nullptr,
                                  std::move(devResult)};
    for (Value v : op->getOperands())
      if (lastUse.lookup(v) == index[op])
        values.erase(v);
    computeSec += std::chrono::duration<double>(Clock::now() - t0).count() - hookSec;
  }
  return success();
}

mlir::FailureOr<calibcuda::Device *> calibDevice(const CalibrationData &calib, std::string &error) {
  if (calib.device == "cpu")
    return static_cast<calibcuda::Device *>(nullptr);
  static std::string why;
  // Never destroyed: at exit the CUDA runtime may be gone before static destructors run.
  // Passes call release() when done, which frees its memory.
  static calibcuda::Device *device = [] {
    std::unique_ptr<calibcuda::Device> d = calibcuda::Device::open(why);
    if (d)
      llvm::errs() << "qlc: calibrating on " << d->name() << "\n";
    return d.release();
  }();
  if (device != nullptr)
    return device;
  if (calib.device == "cuda") {
    error = "--calib-device cuda: no GPU to calibrate on: " + why;
    return failure();
  }
  static bool told = [] {
    llvm::errs() << "qlc: calibrating on the CPU (" << why << ")\n";
    return true;
  }();
  (void)told;
  return static_cast<calibcuda::Device *>(nullptr);
}

mlir::FailureOr<CalibrationTargets> prepareCalibration(mlir::ModuleOp module,
                                                       llvm::StringRef passArg,
                                                       llvm::ArrayRef<LinearOp> todo) {
  CalibrationTargets t;
  t.calib = getCalibrationData(module.getContext());
  if (t.calib == nullptr || t.calib->samples <= 0) {
    module.emitError() << passArg
                       << ": no calibration samples (qlc compile --calib TEXT_FILE provides them)";
    return mlir::failure();
  }
  t.forward = module.lookupSymbol<mlir::func::FuncOp>("forward");
  if (!t.forward || t.forward.isExternal()) {
    module.emitError() << passArg << ": the module has no @forward to run";
    return mlir::failure();
  }
  for (LinearOp op : todo) {
    t.order[op.getOperation()] = t.names.size();
    t.names.push_back(op.getWeight().getDefiningOp<WeightOp>().getTensorName().str());
  }
  return t;
}

} // namespace qlc
