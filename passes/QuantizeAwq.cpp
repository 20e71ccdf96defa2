//===- QuantizeAwq.cpp - qlc-quantize-awq ----------------------------------===//
//
// The float model runs on the calibration samples (passes/CalibExecutor.h); the inputs of
// a block's linears are summarized as they go by (Hessian sum x^T x and mean |x| per
// channel), and when the block's last linear is reached its groups (linears reading one
// input) get AWQ's scale search, the scales are folded into the op producing the input,
// the clipping search runs and the weights are quantized. As in AutoAWQ, the next block
// is calibrated on the float block's outputs (the searches decide from float inputs).
//
#include "ir/Calibration.h"
#include "ir/QlcOps.h"
#include "ir/WeightProvider.h"
#include "passes/Awq.h"
#include "passes/CalibCuda.h"
#include "passes/CalibExecutor.h"
#include "passes/Passes.h"
#include "passes/QuantUtil.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstring>
#include <map>

namespace qlc {
#define GEN_PASS_DEF_QUANTIZEAWQPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::vector<uint8_t> bytesOf(const std::vector<float> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// What a calibration run decides: quantized weights, and the float tensors that
/// absorb the scales (norm weights, biases of preceding linears).
struct AwqResult {
  std::map<Operation *, qlc::IntQuantized> quantized;
  std::map<Operation *, std::vector<float>> normWeights; // rms_norm -> new weight
  std::map<Operation *, std::vector<float>> biases;      // linear -> new bias
  double statsSec = 0, searchSec = 0, clipSec = 0, quantSec = 0;
};

/// Summary of one input of a block's linears.
struct InputStats {
  std::vector<double> h, absSum;
  int64_t rows = 0;
};

struct QuantizeAwqPass : qlc::impl::QuantizeAwqPassBase<QuantizeAwqPass> {
  using QuantizeAwqPassBase::QuantizeAwqPassBase;

  /// Where the statistics and searches run (null: the CPU); set by calibrate().
  qlc::calibcuda::Device *gpu = nullptr;

  void runOnOperation() override {
    if (bits != 4 && bits != 8) {
      getOperation().emitError() << "qlc-quantize-awq: bits must be 4 or 8, got "
                                 << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    if (groupSize < 0) {
      getOperation().emitError() << "qlc-quantize-awq: group-size must be >= 0 (0: per channel)";
      return signalPassFailure();
    }
    if (grid < 1 || grid > 1000) {
      getOperation().emitError() << "qlc-quantize-awq: grid must be in [1, 1000], got "
                                 << static_cast<int64_t>(grid);
      return signalPassFailure();
    }
    params.quant = {bits, groupSize, symmetric};
    params.grid = grid;
    params.maxShrink = clip ? 0.5 : 0.0;
    SmallVector<qlc::LinearOp> todo;
    getOperation().walk([&](qlc::LinearOp op) {
      if (op.getWeight().getDefiningOp<qlc::WeightOp>())
        todo.push_back(op);
      else
        op.emitRemark("not quantized: its weight is not a qlc.weight");
    });
    AwqResult result;
    qlc::WeightProvider *wp = qlc::getWeightProvider(&getContext());
    if (wp != nullptr && failed(calibrate(*wp, todo, result)))
      return signalPassFailure();
    if (wp != nullptr)
      rewriteFloatTensors(*wp, result);
    for (qlc::LinearOp op : todo) {
      auto w = op.getWeight().getDefiningOp<qlc::WeightOp>();
      const int64_t k = w.getType().getDimSize(1);
      std::string prefix = w.getTensorName().str() + ".awq" + std::to_string(bits) +
                           (symmetric ? "s" : "a") + "g" +
                           std::to_string(qlc::effectiveGroupSize(params.quant, k));
      auto it = result.quantized.find(op.getOperation());
      qlc::replaceWithQuantizedLinear(op, params.quant, prefix,
                                      it == result.quantized.end() ? nullptr : &it->second);
    }
  }

  LogicalResult calibrate(qlc::WeightProvider &wp, ArrayRef<qlc::LinearOp> todo,
                          AwqResult &result) {
    FailureOr<qlc::CalibrationTargets> targets =
        qlc::prepareCalibration(getOperation(), "qlc-quantize-awq", todo);
    if (failed(targets))
      return failure();
    const qlc::CalibrationData *calib = targets->calib;
    func::FuncOp forward = targets->forward;
    const std::vector<std::string> &names = targets->names;
    const llvm::DenseMap<Operation *, size_t> &order = targets->order;
    std::string error;
    FailureOr<qlc::calibcuda::Device *> device = qlc::calibDevice(*calib, error);
    if (failed(device)) {
      getOperation().emitError() << "qlc-quantize-awq: " << error;
      return failure();
    }
    gpu = *device;
    qlc::BlockProgress progress("awq", names);
    llvm::DenseMap<Value, InputStats> stats;
    SmallVector<qlc::LinearOp> block;
    auto hook = [&](qlc::LinearOp op, const qlc::Activation &x, std::vector<float> &) {
      auto it = order.find(op.getOperation());
      if (it == order.end())
        return success();
      auto t0 = Clock::now();
      if (!stats.count(op.getX())) {
        InputStats &s = stats[op.getX()];
        s.rows = x.rows;
        if (gpu != nullptr) {
          std::string why;
          if (x.device == nullptr || !gpu->awqStats(*x.device, s.h, s.absSum, why)) {
            error = "qlc-quantize-awq: " + names[it->second] + ": " + why;
            return failure();
          }
        } else {
          s.h.assign(static_cast<size_t>(x.cols * x.cols), 0.0);
          qlc::accumulateGram(x, s.h);
          s.absSum.assign(static_cast<size_t>(x.cols), 0.0);
          for (int64_t r = 0; r < x.rows; ++r)
            for (int64_t c = 0; c < x.cols; ++c)
              s.absSum[c] += std::fabs(x.data[r * x.cols + c]);
        }
      }
      result.statsSec += since(t0);
      block.push_back(op);
      const size_t i = it->second;
      if (i + 1 == names.size() ||
          qlc::calibBlockName(names[i + 1]) != qlc::calibBlockName(names[i])) {
        if (failed(quantizeBlock(wp, block, stats, result, error)))
          return failure();
        block.clear();
        stats.clear();
      }
      progress.linearDone(i);
      return success();
    };
    qlc::CalibExecutor exec(forward, wp);
    exec.setDevice(gpu);
    LogicalResult ran = exec.run(*calib, hook, error);
    if (gpu != nullptr)
      gpu->release();
    if (failed(ran)) {
      getOperation().emitError() << (error.rfind("qlc-quantize-awq", 0) == 0
                                         ? error
                                         : "qlc-quantize-awq: calibration: " + error);
      return failure();
    }
    llvm::errs() << llvm::format(
        "qlc: awq: %zu linears on %lld x %lld calibration tokens: forward %.2f s, "
        "statistics %.2f s, scale search %.2f s, clipping search %.2f s, quantize %.2f s\n",
        result.quantized.size(), static_cast<long long>(calib->samples),
        static_cast<long long>(calib->seqLen), exec.computeSeconds(), result.statsSec,
        result.searchSec, result.clipSec, result.quantSec);
    return success();
  }

  /// AWQ on one block: scale search per input, folding, clipping, quantization.
  LogicalResult quantizeBlock(qlc::WeightProvider &wp, ArrayRef<qlc::LinearOp> block,
                              llvm::DenseMap<Value, InputStats> &stats, AwqResult &result,
                              std::string &error) {
    std::map<Operation *, std::vector<float>> w;
    llvm::SmallPtrSet<Operation *, 8> inBlock;
    auto read = [&](Value v, std::vector<float> &out) {
      std::string name = v.getDefiningOp<qlc::WeightOp>().getTensorName().str();
      auto data = wp.readFloat(name);
      if (!data) {
        error = "qlc-quantize-awq: weight '" + name + "' has no data";
        return failure();
      }
      out = std::move(*data);
      return success();
    };
    for (qlc::LinearOp op : block) {
      if (failed(read(op.getWeight(), w[op.getOperation()])))
        return failure();
      inBlock.insert(op.getOperation());
    }
    auto rows = [](qlc::LinearOp op) {
      return cast<RankedTensorType>(op.getType()).getDimSize(1);
    };
    // Linears by the input they read, in block order.
    SmallVector<Value> inputs;
    llvm::DenseMap<Value, SmallVector<qlc::LinearOp>> groups;
    for (qlc::LinearOp op : block) {
      if (!groups.count(op.getX()))
        inputs.push_back(op.getX());
      groups[op.getX()].push_back(op);
    }
    llvm::DenseMap<Value, std::vector<float>> hScaled;
    for (Value x : inputs) {
      auto &g = groups[x];
      InputStats &st = stats[x];
      const int64_t k = cast<RankedTensorType>(x.getType()).getDimSize(1);
      std::vector<float> h(st.h.begin(), st.h.end()), meanAbs(k);
      for (int64_t c = 0; c < k; ++c)
        meanAbs[c] = static_cast<float>(st.absSum[c] / static_cast<double>(st.rows));
      // Where 1/s can go: a norm read only by this group, or a preceding linear whose
      // output reaches x channel for channel (up_proj through silu_mul; v_proj through
      // attention when every query head has its own KV head).
      Operation *def = x.getDefiningOp();
      qlc::RmsNormOp norm = dyn_cast_or_null<qlc::RmsNormOp>(def);
      if (norm && !llvm::all_of(x.getUsers(), [&](Operation *u) {
            return llvm::is_contained(g, dyn_cast<qlc::LinearOp>(u));
          }))
        norm = nullptr;
      qlc::LinearOp prev;
      if (auto s = dyn_cast_or_null<qlc::SiluMulOp>(def))
        prev = s.getUp().getDefiningOp<qlc::LinearOp>();
      auto att = dyn_cast_or_null<qlc::AttentionOp>(def);
      if (att && att.getNumHeads() == att.getNumKvHeads())
        prev = att.getV().getDefiningOp<qlc::LinearOp>();
      if (prev && (!inBlock.count(prev.getOperation()) || !prev->hasOneUse()))
        prev = nullptr;
      if (norm || prev) {
        auto t0 = Clock::now();
        std::vector<const std::vector<float> *> ws;
        std::vector<int64_t> ns;
        for (qlc::LinearOp op : g) {
          ws.push_back(&w[op.getOperation()]);
          ns.push_back(rows(op));
        }
        std::vector<float> s;
        if (gpu == nullptr)
          s = qlc::awqSearchScales(ws, ns, k, h, meanAbs, params);
        else if (!qlc::awqSearchScalesOnDevice(*gpu, ws, ns, k, h, meanAbs, params, s, error))
          return failure();
        result.searchSec += since(t0);
        for (qlc::LinearOp op : g) {
          std::vector<float> &m = w[op.getOperation()];
          qlc::parallelFor(rows(op), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r)
              for (int64_t c = 0; c < k; ++c)
                m[r * k + c] *= s[c];
          });
        }
        if (norm) {
          std::vector<float> nw;
          if (failed(read(norm.getWeight(), nw)))
            return failure();
          for (int64_t c = 0; c < k; ++c)
            nw[c] /= s[c];
          result.normWeights[norm.getOperation()] = std::move(nw);
        } else {
          std::vector<float> &m = w[prev.getOperation()];
          const int64_t pk = static_cast<int64_t>(m.size()) / k;
          for (int64_t r = 0; r < k; ++r)
            for (int64_t c = 0; c < pk; ++c)
              m[r * pk + c] /= s[r];
          if (prev.getBias()) {
            std::vector<float> b;
            if (failed(read(prev.getBias(), b)))
              return failure();
            for (int64_t r = 0; r < k; ++r)
              b[r] /= s[r];
            result.biases[prev.getOperation()] = std::move(b);
          }
        }
        qlc::parallelFor(k, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = 0; j < k; ++j)
              h[i * k + j] /= s[i] * s[j];
        });
      }
      hScaled[x] = std::move(h);
    }
    for (qlc::LinearOp op : block) {
      std::vector<float> &m = w[op.getOperation()];
      const int64_t k = cast<RankedTensorType>(op.getX().getType()).getDimSize(1);
      // As AutoAWQ: no clipping for q and k, whose errors the attention scores amplify.
      const bool feedsRope = llvm::any_of(op->getUsers(), [](Operation *u) {
        return isa<qlc::RopeOp>(u);
      });
      auto t0 = Clock::now();
      if (!feedsRope && params.maxShrink > 0) {
        if (gpu == nullptr)
          qlc::awqClip(m, rows(op), k, hScaled[op.getX()], params);
        else if (!qlc::awqClipOnDevice(*gpu, m, rows(op), k, hScaled[op.getX()], params, error))
          return failure();
      }
      auto t1 = Clock::now();
      result.quantized[op.getOperation()] = qlc::quantizeRtn(m, rows(op), k, params.quant);
      result.clipSec += std::chrono::duration<double>(t1 - t0).count();
      result.quantSec += since(t1);
    }
    return success();
  }

  /// Points norms and biases that absorbed scales at new f32 tensors.
  void rewriteFloatTensors(qlc::WeightProvider &wp, AwqResult &result) {
    auto replace = [&](Operation *user, OpOperand &operand, const std::vector<float> &data) {
      auto old = operand.get().getDefiningOp<qlc::WeightOp>();
      const std::string name = old.getTensorName().str() + ".awq";
      const int64_t n = static_cast<int64_t>(data.size());
      wp.add(name, "f32", {n}, bytesOf(data));
      OpBuilder b(user);
      auto nw = b.create<qlc::WeightOp>(
          user->getLoc(), RankedTensorType::get({n}, b.getF32Type()), b.getStringAttr(name));
      operand.set(nw);
      if (old->use_empty())
        old->erase();
    };
    for (auto &[op, data] : result.normWeights)
      replace(op, cast<qlc::RmsNormOp>(op).getWeightMutable(), data);
    for (auto &[op, data] : result.biases)
      replace(op, *cast<qlc::LinearOp>(op).getBiasMutable().begin(), data);
  }

  qlc::AwqParams params;
};

} // namespace
