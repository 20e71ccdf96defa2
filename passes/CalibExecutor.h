//===- CalibExecutor.h - the float model on calibration samples -*- C++ -*-===//
//
// Runs @forward's qlc ops in float32 on the CPU for a batch of calibration samples (each
// a sequence of its own, positions from 0), op by op in program order, so at any time
// only the activations still to be read are alive: the residual stream and the current
// block's intermediates. Before each qlc.linear it hands the linear's input to a hook,
// which may replace the weight the linear is computed with: a quantizing pass quantizes
// there, and every later op then sees the quantized model's outputs (GPTQ's sequential,
// "true-sequential" order). Ops compute as the x86 kernels do (LlamaRMSNorm in f32,
// rotate-half rope with f32 angles from ir/Rope.h, softmax attention). Given a GPU
// (calibDevice), every op runs there (CalibCuda.h) and the values stay in GPU memory.
//
#ifndef QLC_PASSES_CALIBEXECUTOR_H
#define QLC_PASSES_CALIBEXECUTOR_H

#include "ir/Calibration.h"
#include "ir/QlcOps.h"
#include "ir/WeightProvider.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace qlc {

namespace calibcuda {
class Buffer;
class Device;
} // namespace calibcuda

/// A float32 activation [rows, cols], row-major.
struct Activation {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  /// A linear's input as the hook sees it when the executor runs on a GPU: there, with
  /// `data` empty.
  const calibcuda::Buffer *device = nullptr;
};

class CalibExecutor {
public:
  /// Called before each qlc.linear is computed, with its input and its weight [out, in]
  /// (row-major, widened to f32), which the hook may overwrite (same size).
  using LinearHook =
      std::function<mlir::LogicalResult(LinearOp op, const Activation &x, std::vector<float> &w)>;

  CalibExecutor(mlir::func::FuncOp forward, const WeightProvider &weights)
      : forward(forward), weights(weights) {}

  /// Runs every op of @forward on `batch`. When `logits` is given, the final qlc.logits
  /// is computed into it (one row per token); otherwise it is skipped. Fails with a
  /// message for an op it cannot run or a missing weight.
  mlir::LogicalResult run(const CalibrationData &batch, const LinearHook &hook, std::string &error,
                          Activation *logits = nullptr);

  /// Seconds spent computing ops (the hook's time excluded) in the last run.
  double computeSeconds() const { return computeSec; }

  /// Runs on `d` (null: on the CPU): the values stay in GPU memory from the embedding to
  /// the logits, and the hook sees a linear's input there (Activation::device).
  void setDevice(calibcuda::Device *d) { gpu = d; }

private:
  mlir::func::FuncOp forward;
  const WeightProvider &weights;
  calibcuda::Device *gpu = nullptr;
  double computeSec = 0;
};

/// The GPU calibrating passes compute on, as `calib.device` asks: "auto" opens the first
/// CUDA GPU if there is one, "cpu" none, "cuda" requires one (failure, with `error`,
/// without it). Opened once per process and named on stderr the first time; null means
/// the CPU.
mlir::FailureOr<calibcuda::Device *> calibDevice(const CalibrationData &calib, std::string &error);

/// The block (decoder layer) a linear belongs to: its weight name up to "layers.<N>", or
/// the whole name when it has no layer number.
std::string calibBlockName(const std::string &weight);

/// Reports on stderr, one line per block, how far a calibrating pass is, with an ETA. A
/// block is a decoder layer: the linears whose weight names share "...layers.<N>".
class BlockProgress {
public:
  /// `weightNames`: the linears' weight names in the order they will be done.
  BlockProgress(std::string pass, const std::vector<std::string> &weightNames);
  /// Call after the i-th linear is done.
  void linearDone(size_t i);

private:
  std::string pass;
  std::vector<std::string> blockOf;
  std::vector<bool> lastOfBlock;
  int64_t blocks = 0, done = 0;
  std::chrono::steady_clock::time_point start, blockStart;
};

/// h[k, k] (row-major, float64) += x^T x, over all rows of x [rows, k].
void accumulateGram(const Activation &x, std::vector<double> &h);

/// Runs fn(begin, end) over [0, n) on the machine's cores.
void parallelFor(int64_t n, const std::function<void(int64_t, int64_t)> &fn);

/// What a calibrated quantization pass needs before running the executor: the samples,
/// the @forward function, and the tensor name and position of every linear to quantize.
struct CalibrationTargets {
  const CalibrationData *calib = nullptr;
  mlir::func::FuncOp forward;
  std::vector<std::string> names;                // weight tensor names, in `todo` order
  llvm::DenseMap<mlir::Operation *, size_t> order; // linear -> index into names
};

/// Fills CalibrationTargets for pass `passArg` (e.g. "qlc-quantize-gptq"), or emits an
/// error on the module and fails when there are no samples or no @forward.
mlir::FailureOr<CalibrationTargets> prepareCalibration(mlir::ModuleOp module,
                                                       llvm::StringRef passArg,
                                                       llvm::ArrayRef<LinearOp> todo);

} // namespace qlc

#endif // QLC_PASSES_CALIBEXECUTOR_H
