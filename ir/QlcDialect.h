//===- QlcDialect.h - qlc dialect ------------------------------*- C++ -*-===//
#ifndef QLC_IR_QLCDIALECT_H
#define QLC_IR_QLCDIALECT_H

#include "mlir/IR/Dialect.h"

namespace qlc {
class WeightProvider;
struct CalibrationData;
} // namespace qlc

#include "ir/QlcDialect.h.inc"

#endif // QLC_IR_QLCDIALECT_H
