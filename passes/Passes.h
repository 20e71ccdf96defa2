//===- Passes.h - qlc passes and pipelines ---------------------*- C++ -*-===//
#ifndef QLC_PASSES_PASSES_H
#define QLC_PASSES_PASSES_H

#include "ir/QlcDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

#include <string>

namespace qlc {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Options of the compile pipeline, from `qlc compile`'s flags.
struct CompilePipelineOptions {
  std::string quant = "none"; // none | f32 | f16 | bf16
};

/// Fills `pm` with the passes `qlc compile` runs before codegen. Returns failure with a
/// message in `error` for options no pipeline serves.
mlir::LogicalResult buildCompilePipeline(mlir::OpPassManager &pm,
                                         const CompilePipelineOptions &opts,
                                         std::string &error);

/// Registers every qlc pass and the named pipelines (for qlc-opt).
void registerQlcPassesAndPipelines();

} // namespace qlc

#endif // QLC_PASSES_PASSES_H
