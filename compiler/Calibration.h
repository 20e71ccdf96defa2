//===- Calibration.h - calibration samples from text -----------*- C++ -*-===//
#ifndef QLC_COMPILER_CALIBRATION_H
#define QLC_COMPILER_CALIBRATION_H

#include "compiler/TokenizerAsset.h"
#include "ir/Calibration.h"

#include "llvm/Support/Error.h"

#include <string>
#include <string_view>

namespace qlc {

/// `qlc compile --calib FILE --calib-samples N --calib-seqlen L`.
struct CalibrationOptions {
  std::string file;      // empty: the bundled text (data/calibration/kjv-sample.txt)
  std::string tokensFile; // instead of text: token ids separated by white space
  int64_t samples = 128; // sequences
  int64_t seqLen = 512;  // tokens per sequence
};

/// The calibration text compiled into qlc.
std::string_view bundledCalibrationText();

/// Reads the calibration text and tokenizes it with the model's tokenizer (no special
/// tokens), or reads the ids of `tokensFile` (for models without a tokenizer), then cuts
/// `samples` windows of `seqLen` tokens spread evenly over it (fewer, with a warning,
/// when it is too short for all of them). Errors are about the input and name the flag
/// or the file.
llvm::Expected<CalibrationData> loadCalibration(const CalibrationOptions &opts,
                                                const TokenizerAsset &tokenizer,
                                                int64_t maxPositions);

} // namespace qlc

#endif // QLC_COMPILER_CALIBRATION_H
