//===- QlcDialect.cpp - qlc dialect ----------------------------------------===//
#include "ir/QlcDialect.h"
#include "ir/QlcOps.h"
#include "ir/Calibration.h"
#include "ir/WeightProvider.h"

using namespace mlir;
using namespace qlc;

#include "ir/QlcDialect.cpp.inc"

void QlcDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ir/QlcOps.cpp.inc"
      >();
}

namespace qlc {

void setWeightProvider(MLIRContext *ctx, WeightProvider *provider) {
  ctx->getOrLoadDialect<QlcDialect>()->weightProvider = provider;
}

WeightProvider *getWeightProvider(MLIRContext *ctx) {
  auto *d = ctx->getLoadedDialect<QlcDialect>();
  return d ? d->weightProvider : nullptr;
}

void setCalibrationData(MLIRContext *ctx, const CalibrationData *data) {
  ctx->getOrLoadDialect<QlcDialect>()->calibration = data;
}

const CalibrationData *getCalibrationData(MLIRContext *ctx) {
  auto *d = ctx->getLoadedDialect<QlcDialect>();
  return d ? d->calibration : nullptr;
}

} // namespace qlc
