//===- Importer.h - Hugging Face model -> qlc dialect ----------*- C++ -*-===//
#ifndef QLC_COMPILER_IMPORTER_H
#define QLC_COMPILER_IMPORTER_H

#include "compiler/ModelConfig.h"
#include "compiler/WeightStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace qlc {

/// Registers the dialects qlc's IR uses (qlc, func) with `ctx` and loads them.
void loadQlcDialects(mlir::MLIRContext &ctx);

/// Builds the `@forward` function of a decoder-only model. With a weight store, every
/// weight the architecture needs must be present with the shape the config implies;
/// weight types come from the store. Without one (config-only import, for tests and
/// inspection), weights get the config's dtype.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importModel(mlir::MLIRContext &ctx, const ModelConfig &cfg, const WeightStore *store);

} // namespace qlc

#endif // QLC_COMPILER_IMPORTER_H
