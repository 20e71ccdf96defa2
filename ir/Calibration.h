//===- Calibration.h - calibration tokens reachable from passes -*- C++ -*-===//
//
// Calibrating passes (qlc-quantize-gptq) run the float model on calibration text. The
// compiler tokenizes the text, cuts it into samples and attaches them to the MLIRContext
// like the weight provider; with none attached such passes rewrite the IR only when no
// weight provider is attached either, and fail otherwise.
//
#ifndef QLC_IR_CALIBRATION_H
#define QLC_IR_CALIBRATION_H

#include <cstdint>
#include <string>
#include <vector>

namespace mlir {
class MLIRContext;
}

namespace qlc {

struct CalibrationData {
  int64_t samples = 0, seqLen = 0;
  /// samples * seqLen token ids, sample after sample; positions restart at 0 per sample.
  std::vector<int32_t> tokens;
  /// Where the text came from, for messages.
  std::string source;
  /// Where calibrating passes compute: "auto" (the first CUDA GPU when there is one, else
  /// the CPU), "cpu", or "cuda" (a GPU or an error).
  std::string device = "auto";
};

/// Attaches `data` (not owned; may be null) to `ctx`'s qlc dialect.
void setCalibrationData(mlir::MLIRContext *ctx, const CalibrationData *data);
/// The calibration data attached to `ctx`, or null.
const CalibrationData *getCalibrationData(mlir::MLIRContext *ctx);

} // namespace qlc

#endif // QLC_IR_CALIBRATION_H
