//===- TargetInfo.h - what codegen needs to know of a target ---*- C++ -*-===//
#ifndef QLC_CODEGEN_TARGETINFO_H
#define QLC_CODEGEN_TARGETINFO_H

#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace qlc {

/// A compilation target. Codegen asks it, rather than testing target names, which
/// kernel ISA to instantiate and how to compile the generated source.
class TargetInfo {
public:
  virtual ~TargetInfo() = default;
  /// The name given to --target, resolved ("native" becomes a concrete name).
  virtual std::string name() const = 0;
  /// "x86" or "cuda": which runtime backend runs the artifact.
  virtual std::string kind() const = 0;
  /// CPU features the artifact's code needs; the runtime checks them at load.
  virtual std::vector<std::string> requiredFeatures() const = 0;
  /// The kernel ISA struct the generated code instantiates (qlc::x86::Avx2, ...).
  virtual std::string kernelIsa() const = 0;
  /// Flags for the host C++ compiler that builds the generated code.
  virtual std::vector<std::string> compilerFlags() const = 0;
};

/// The targets --target accepts.
const std::vector<std::string> &knownTargets();

/// Resolves a --target name; an error names the valid targets, or says the target is
/// known but not implemented yet.
llvm::Expected<std::unique_ptr<TargetInfo>> lookupTarget(const std::string &name);

} // namespace qlc

#endif // QLC_CODEGEN_TARGETINFO_H
