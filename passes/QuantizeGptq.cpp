//===- QuantizeGptq.cpp - qlc-quantize-gptq --------------------------------===//
#include "ir/Calibration.h"
#include "ir/QlcOps.h"
#include "ir/WeightProvider.h"
#include "passes/CalibCuda.h"
#include "passes/CalibExecutor.h"
#include "passes/Gptq.h"
#include "passes/Passes.h"
#include "passes/QuantUtil.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

namespace qlc {
#define GEN_PASS_DEF_QUANTIZEGPTQPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct QuantizeGptqPass : qlc::impl::QuantizeGptqPassBase<QuantizeGptqPass> {
  using QuantizeGptqPassBase::QuantizeGptqPassBase;

  void runOnOperation() override {
    qlc::GptqParams p;
    p.quant = {bits, groupSize, symmetric};
    p.dampPercent = dampPercent;
    p.blockSize = blockSize;
    p.actOrder = actOrder;
    p.staticGroups = staticGroups;
    SmallVector<qlc::LinearOp> linears;
    getOperation().walk([&](qlc::LinearOp op) { linears.push_back(op); });
    SmallVector<qlc::LinearOp> todo;
    for (qlc::LinearOp op : linears) {
      auto w = op.getWeight().getDefiningOp<qlc::WeightOp>();
      if (!w) {
        op.emitRemark("not quantized: its weight is not a qlc.weight");
        continue;
      }
      std::string error;
      if (failed(qlc::checkGptqParams(p, w.getType().getDimSize(1), error))) {
        op.emitError() << "qlc-quantize-gptq: " << error;
        return signalPassFailure();
      }
      todo.push_back(op);
    }
    std::map<Operation *, qlc::IntQuantized> quantized;
    if (qlc::WeightProvider *wp = qlc::getWeightProvider(&getContext()))
      if (failed(calibrate(*wp, todo, p, quantized)))
        return signalPassFailure();
    for (qlc::LinearOp op : todo) {
      auto w = op.getWeight().getDefiningOp<qlc::WeightOp>();
      const int64_t k = w.getType().getDimSize(1);
      std::string prefix = w.getTensorName().str() + ".gptq" + std::to_string(bits) +
                           (symmetric ? "s" : "a") + "g" +
                           std::to_string(qlc::effectiveGroupSize(p.quant, k)) +
                           (actOrder ? "o" : "");
      auto it = quantized.find(op.getOperation());
      qlc::replaceWithQuantizedLinear(op, p.quant, prefix,
                                      it == quantized.end() ? nullptr : &it->second);
    }
  }

  /// Runs the float model on the calibration samples, quantizing each linear of `todo`
  /// when the executor reaches it.
  LogicalResult calibrate(qlc::WeightProvider &wp, ArrayRef<qlc::LinearOp> todo,
                          const qlc::GptqParams &p,
                          std::map<Operation *, qlc::IntQuantized> &quantized) {
    FailureOr<qlc::CalibrationTargets> targets =
        qlc::prepareCalibration(getOperation(), "qlc-quantize-gptq", todo);
    if (failed(targets))
      return failure();
    const qlc::CalibrationData *calib = targets->calib;
    func::FuncOp forward = targets->forward;
    const std::vector<std::string> &names = targets->names;
    const llvm::DenseMap<Operation *, size_t> &order = targets->order;
    std::string error;
    FailureOr<qlc::calibcuda::Device *> gpuOr = qlc::calibDevice(*calib, error);
    if (failed(gpuOr)) {
      getOperation().emitError() << "qlc-quantize-gptq: " << error;
      return failure();
    }
    qlc::calibcuda::Device *gpu = *gpuOr;
    qlc::BlockProgress progress("gptq", names);
    using Clock = std::chrono::steady_clock;
    double hessianSec = 0, gptqSec = 0;
    Value hessianOf;
    std::vector<double> h; // the Hessian (CPU) or its diagonal (GPU: the Hessian is there)
    auto hook = [&](qlc::LinearOp op, const qlc::Activation &x, std::vector<float> &w) {
      auto it = order.find(op.getOperation());
      if (it == order.end())
        return success(); // left in float
      const int64_t k = x.cols, n = static_cast<int64_t>(w.size()) / k;
      auto t0 = Clock::now();
      std::string why;
      if (op.getX() != hessianOf) { // q/k/v (gate/up) read one input: one Hessian
        hessianOf = Value();
        if (gpu != nullptr) {
          if (x.device == nullptr || !gpu->hessian(*x.device, h, why)) {
            error = "qlc-quantize-gptq: " + names[it->second] + ": " + why;
            return failure();
          }
        } else {
          h.assign(static_cast<size_t>(k * k), 0.0);
          qlc::accumulateGram(x, h);
        }
        hessianOf = op.getX();
      }
      auto t1 = Clock::now();
      std::vector<float> dequantized;
      auto q = gpu != nullptr ? qlc::quantizeGptqOnDevice(*gpu, w, n, k, h, p, dequantized, why)
                              : qlc::quantizeGptq(w, n, k, h, p, why);
      if (failed(q)) {
        error = "qlc-quantize-gptq: " + names[it->second] + ": " + why;
        return failure();
      }
      w = gpu != nullptr ? std::move(dequantized) : qlc::dequantizeInt(*q, p.quant);
      quantized[op.getOperation()] = std::move(*q);
      auto t2 = Clock::now();
      hessianSec += std::chrono::duration<double>(t1 - t0).count();
      gptqSec += std::chrono::duration<double>(t2 - t1).count();
      progress.linearDone(it->second);
      return success();
    };
    qlc::CalibExecutor exec(forward, wp);
    exec.setDevice(gpu);
    LogicalResult ran = exec.run(*calib, hook, error);
    if (gpu != nullptr)
      gpu->release();
    if (failed(ran)) {
      getOperation().emitError() << (error.rfind("qlc-quantize-gptq", 0) == 0
                                         ? error
                                         : "qlc-quantize-gptq: calibration: " + error);
      return failure();
    }
    llvm::errs() << llvm::format(
        "qlc: gptq: %zu linears on %lld x %lld calibration tokens: forward %.2f s, "
        "hessians %.2f s, gptq %.2f s\n",
        quantized.size(), static_cast<long long>(calib->samples),
        static_cast<long long>(calib->seqLen), exec.computeSeconds(), hessianSec, gptqSec);
    return success();
  }
};

} // namespace
