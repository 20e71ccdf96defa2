//===- Codegen.h - planned module -> generated kernels + plan --*- C++ -*-===//
#ifndef QLC_CODEGEN_CODEGEN_H
#define QLC_CODEGEN_CODEGEN_H

#include "codegen/TargetInfo.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qlc {

/// A weight as the artifact stores it: which store tensor, in which element type.
struct PackedWeight {
  std::string name;
  std::string dtype; // f32 | f16 | bf16 (| u8, i8, i32 as stored)
  std::vector<int64_t> shape;
  /// "" (as stored, converted to dtype), or a layout of ir/qlc_w4_tiles.h for the CUDA
  /// int4 kernels: "w4_tiles" (the codes of tensor `name`), "w4_tile_entries" (the scales
  /// of `name` and the zeros of `zeros`, "" for symmetric, as 8-byte entries; dtype u8).
  std::string layout;
  std::string zeros;
  int64_t K = 0, N = 0, G = 0; // the projection's shape and group size, for a layout
};

/// One kernel call of the execution plan, for `qlc inspect`.
struct KernelCall {
  std::string op;     // qlc.linear, ...
  std::string kernel; // the instantiated template
  std::string weight; // the weight it reads, if any
};

/// The paged KV cache as the attention kernels lay it out, from the module's
/// qlc.kv_cache plan (qlc-plan-kv-cache): pages of [layer][k|v][page position][row],
/// reached through a block table per slot.
struct KvCacheLayout {
  std::string dtype = "f32"; // f32 | f16 | int8 (qlc.attention's kv_dtype)
  int64_t rowBytes = 0;      // one layer's k (or v) row of one position
  int64_t positionBytes = 0; // one position of one slot: every layer's k and v rows
  std::string layout = "page,layer,kv,position,head";
  int64_t pageSize = 0;      // positions per page
  int64_t pageBytes = 0;     // pageSize * positionBytes
  int64_t pages = 0;         // the plan's pool (max_batch sequences, capped by the budget)
  int64_t maxPagesPerSeq = 0;
  int64_t maxBatch = 0;
  int64_t budgetBytes = 0;   // 0: no cap
};

/// One region of the activation arena (ir/BufferPlan.h), for the manifest.
struct PlannedBuffer {
  std::string op; // the op whose result (or, with result -1, scratch) it holds
  int result = -1;
  int64_t first = 0, last = 0; // live from op index first to last of @forward
  int64_t offset = 0, bytes = 0;
};

/// The activation arena as planned (qlc-plan-buffers) and the backend's staging after it.
struct BufferPlanInfo {
  int64_t maxTokens = 0, alignment = 64;
  int64_t arenaBytes = 0, peakBytes = 0;
  int64_t stagingOffset = 0, stagingBytes = 0; // CUDA's per-step staging; 0 on x86
  std::vector<PlannedBuffer> buffers;
};

struct CodegenResult {
  std::string source;                // C++ (x86) or CUDA C++ source of the artifact's code
  std::vector<PackedWeight> weights; // index i is qlc_exec_ctx::weights[i]
  std::vector<KernelCall> kernels;
  int64_t scratchBytes = 0; // the arena plus the staging: what the runtime allocates
  BufferPlanInfo buffers;
  KvCacheLayout kvCache;
};

struct CodegenOptions {
  int64_t maxTokens = 512; // tokens per forward step the scratch arena is sized for
};

/// Emits the artifact code for `module`'s @forward on an x86 target.
llvm::Expected<CodegenResult> emitX86(mlir::ModuleOp module, const TargetInfo &target,
                                      const CodegenOptions &opts);

/// Emits the artifact code (CUDA C++) for `module`'s @forward on a CUDA target.
llvm::Expected<CodegenResult> emitCuda(mlir::ModuleOp module, const TargetInfo &target,
                                       const CodegenOptions &opts);

/// Kernel template sources embedded at build time: (relative path, contents).
struct EmbeddedFile {
  const char *path;
  const char *contents;
};
const std::vector<EmbeddedFile> &embeddedKernelSources();

} // namespace qlc

#endif // QLC_CODEGEN_CODEGEN_H
