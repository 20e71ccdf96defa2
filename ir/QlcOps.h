//===- QlcOps.h - qlc dialect operations -----------------------*- C++ -*-===//
#ifndef QLC_IR_QLCOPS_H
#define QLC_IR_QLCOPS_H

#include "ir/QlcDialect.h"
#include "ir/Rope.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "ir/QlcOps.h.inc"

namespace qlc {

/// Whether `dtype` is a KV cache storage type of qlc.attention's kv_dtype: f32, f16 or
/// int8.
bool isKnownKvDtype(llvm::StringRef dtype);

} // namespace qlc

#endif // QLC_IR_QLCOPS_H
