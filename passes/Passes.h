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
  /// none | f32 | f16 | bf16 | rtn-w4 | rtn-w8 | gptq-w4 | gptq-w8 | awq-w4 | awq-w8 (a
  /// "-sym" suffix: symmetric) | nf4 | nf4-dq (double quantization of the absmax)
  std::string quant = "none";
  /// Input features per quantization group; -1: the scheme's default (128 for 4 bits,
  /// per channel for 8 bits); 0: per channel. nf4: the block size (default 64).
  int64_t groupSize = -1;
  /// KV cache storage: f32 (exact, the default), f16 or int8 (see qlc-quantize-kv).
  std::string kvCache = "f32";
  /// Storage of the embedding table and the logits projection when the projections are
  /// quantized (rtn, nf4): f16 (the default; f32 matrices are narrowed, 16-bit ones kept),
  /// bf16, f32, or "source" (as imported). Ignored by none/f32/f16/bf16.
  std::string embeddingDtype = "f16";
  /// Run the fusion passes (qlc-fuse-qkv, qlc-fuse-rope, qlc-fuse-gate-up, qlc-fuse-norm-residual)
  /// after quantization.
  bool fuse = true;
  /// gptq-*: quantize columns by decreasing Hessian diagonal (with static groups).
  bool actOrder = false;
  /// Run the KV-cache and weight-storage passes of kvCache and quant. False: only the
  /// fusion passes (when fuse), for a module already quantized (qlc compile
  /// --emit-checkpoint writes the checkpoint between the two).
  bool quantize = true;
  /// qlc-plan-kv-cache, last: positions per sequence (0: no plan, as for `qlc import`),
  /// sequences the pages cover, positions per page (0: the target's choice), a cap on
  /// the cache's bytes (0: none) and the target kind (x86 or cuda).
  int64_t maxSeqLen = 0;
  int64_t maxBatch = 1;
  int64_t kvPageSize = 0;
  int64_t kvMemoryBudget = 0;
  std::string targetKind = "x86";
  /// The --target: when set (and selectTiling), qlc-select-tiling runs last and attaches
  /// the projection kernels' configs for it.
  std::string target;
  bool selectTiling = true;
  /// The tuning cache qlc-select-tiling prefers over its cost model (may not exist).
  std::string tuningCache;
  /// Tokens per forward step (qlc compile --max-tokens): the activation arena
  /// qlc-plan-buffers (the last pass) plans is sized for it; the tiling cost model's M.
  int64_t maxTokens = 512;
  /// Run qlc-plan-buffers last (false: `qlc import`, which prints the graph only).
  bool planBuffers = true;
};

/// True for the --quant schemes that run the model on calibration text (gptq-*, awq-*).
bool isCalibratedQuantScheme(const std::string &quant);

/// The --quant schemes the compile pipeline knows.
const std::vector<std::string> &knownQuantSchemes();

/// Fills `pm` with the passes `qlc compile` runs before codegen, ending with
/// qlc-plan-buffers. Returns failure with a
/// message in `error` for options no pipeline serves.
mlir::LogicalResult buildCompilePipeline(mlir::OpPassManager &pm,
                                         const CompilePipelineOptions &opts,
                                         std::string &error);

/// Adds qlc-plan-kv-cache with the plan options of `opts` (nothing when maxSeqLen is 0);
/// buildCompilePipeline ends with it, and `qlc compile --pass-pipeline` appends it.
void addKvCachePlan(mlir::OpPassManager &pm, const CompilePipelineOptions &opts);

/// The flag of every qlc pass (qlc-cast-weights, ...), for --mlir-print-ir-after.
const std::vector<std::string> &qlcPassArguments();

/// Registers every qlc pass and the named pipelines (for qlc-opt).
void registerQlcPassesAndPipelines();

} // namespace qlc

#endif // QLC_PASSES_PASSES_H
