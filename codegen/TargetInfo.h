//===- TargetInfo.h - what codegen needs to know of a target ---*- C++ -*-===//
#ifndef QLC_CODEGEN_TARGETINFO_H
#define QLC_CODEGEN_TARGETINFO_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mlir {
class ModuleOp;
} // namespace mlir

namespace qlc {

struct CodegenOptions;
struct CodegenResult;

/// How the generated source becomes the artifact's code (a shared object).
struct CodeBuild {
  std::string compiler;           // the driver: "c++" (or --cxx) for x86, nvcc for CUDA
  std::string sourceName;         // model.cpp | model.cu
  std::vector<std::string> flags; // everything but -I, the source and -o
};

/// A compilation target. Codegen asks it, rather than testing target names, which
/// kernels to instantiate and how to compile the generated source.
class TargetInfo {
public:
  virtual ~TargetInfo() = default;
  /// The name given to --target, resolved ("native" becomes a concrete name).
  virtual std::string name() const = 0;
  /// "x86" or "cuda": which runtime backend runs the artifact.
  virtual std::string kind() const = 0;
  /// What the running machine must have, for the manifest: CPU features for x86, the
  /// minimum compute capability ("sm_80") for CUDA. The runtime checks them at load.
  virtual std::vector<std::string> requiredFeatures() const = 0;
  /// The kernel ISA the generated code instantiates (qlc::x86::Avx2, sm_80, ...).
  virtual std::string kernelIsa() const = 0;
  /// The compiler and flags that build the generated source.
  virtual CodeBuild codeBuild() const = 0;
  /// Emits the artifact code for `module`'s @forward.
  virtual llvm::Expected<CodegenResult> emit(mlir::ModuleOp module,
                                             const CodegenOptions &opts) const = 0;
};

/// The targets --target accepts.
const std::vector<std::string> &knownTargets();

/// Resolves a --target name; an error names the valid targets.
llvm::Expected<std::unique_ptr<TargetInfo>> lookupTarget(const std::string &name);

} // namespace qlc

#endif // QLC_CODEGEN_TARGETINFO_H
