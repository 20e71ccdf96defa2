//===- Checkpoint.h - pre-quantized GPTQ/AWQ checkpoints in and out -*- C++ -*-===//
//
// Import: the int32 tensors of AutoGPTQ/GPTQModel and AutoAWQ GEMM checkpoints are
// repacked, exactly, into the "int" format of qlc.quantized_linear (docs/quantization.md,
// "Pre-quantized checkpoints"). Export: the quantized projections of a compiled module
// are written back in those layouts, with the rest of the model, as a Hugging Face folder.
//
#ifndef QLC_COMPILER_CHECKPOINT_H
#define QLC_COMPILER_CHECKPOINT_H

#include "compiler/ModelConfig.h"
#include "compiler/WeightStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>

namespace qlc {

/// The store name of a repacked tensor of the projection `prefix` (e.g.
/// "model.layers.0.mlp.up_proj"): `prefix`.qlc.`part`, part one of qweight, scales,
/// zeros (absent when every zero point is 2^(bits-1): symmetric), perm (absent when the
/// groups are contiguous).
std::string repackedName(const std::string &prefix, const std::string &part);

/// For a config with a checkpointQuant, repacks every projection `p` that has a
/// `p`.qweight into `p`.qlc.* tensors of the store. Errors (bad input) name the tensor
/// and what is wrong with it: a missing qzeros or scales, shapes that disagree, a g_idx
/// whose groups are not all of group_size features, zero points qlc cannot hold.
llvm::Error repackCheckpoint(const ModelConfig &cfg, WeightStore &store);

/// What `qlc export` / `qlc compile --emit-checkpoint` write.
struct ExportOptions {
  std::string sourceDir;  // the Hugging Face folder compiled (config.json, tokenizer files)
  std::string outDir;     // created if missing; must be empty if it exists
  std::string format;     // "gptq" or "awq"
  std::string gptqFormat = "gptq"; // checkpoint_format: gptq (v1) or gptq_v2
  bool descAct = false;   // recorded in quantization_config
  std::string quantizer;  // e.g. "qlc 0.1.0 gptq-w4", recorded in quantization_config
};

/// The checkpoint format ("gptq" or "awq") `qlc export` writes for a --quant scheme, or
/// an error (bad input) for schemes that have no such layout.
llvm::Expected<std::string> exportFormatFor(const std::string &quant);

/// Writes `module` (imported from cfg's folder and run through the quantization passes,
/// not fused) as a checkpoint: config.json with a quantization_config, model.safetensors
/// (I32 qweight/qzeros, F16 scales, I32 g_idx for gptq; AutoAWQ GEMM's layout for awq;
/// the other tensors in their stored float dtype, matrices as the IR types them), and
/// the tokenizer files of the source folder. Errors are bad input when a projection
/// cannot be written in the format (shapes, zero points), internal otherwise.
llvm::Error writeCheckpoint(mlir::ModuleOp module, const ModelConfig &cfg,
                            const WeightStore &store, const ExportOptions &opts);

} // namespace qlc

#endif // QLC_COMPILER_CHECKPOINT_H
