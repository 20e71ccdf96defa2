//===- Autotune.h - qlc compile --autotune ---------------------*- C++ -*-===//
#ifndef QLC_COMPILER_AUTOTUNE_H
#define QLC_COMPILER_AUTOTUNE_H

#include "codegen/TargetInfo.h"
#include "compiler/Compile.h"

#include "mlir/IR/BuiltinOps.h"

namespace qlc {

/// Whether this machine can time `target`'s kernels (CUDA: an NVIDIA GPU, by nvidia-smi);
/// a bad-input error saying so otherwise.
llvm::Error checkAutotuneMachine(const TargetInfo &target);

/// Times the candidate tile configs of every distinct projection kernel of `module` on
/// this machine (x86: this CPU; CUDA: this machine's GPU, else a bad-input error) and
/// merges the fastest per range into the tuning cache at `cachePath`.
llvm::Error autotuneProjections(mlir::ModuleOp module, const TargetInfo &target,
                                const CompileOptions &opts, const std::string &cachePath);

} // namespace qlc

#endif // QLC_COMPILER_AUTOTUNE_H
