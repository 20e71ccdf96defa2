//===- TargetInfo.cpp - the targets qlc knows ------------------------------===//
#include "codegen/TargetInfo.h"
#include "passes/TargetDesc.h"
#include "codegen/Codegen.h"

#include <algorithm>

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// An x86-64 micro-architecture level.
class X86Target : public TargetInfo {
public:
  X86Target(std::string name, std::string march, std::string isa,
            std::vector<std::string> features, bool tuneNative)
      : name_(std::move(name)), march_(std::move(march)), isa_(std::move(isa)),
        features_(std::move(features)), tuneNative_(tuneNative) {}
  std::string name() const override { return name_; }
  std::string kind() const override { return "x86"; }
  std::vector<std::string> requiredFeatures() const override { return features_; }
  std::string kernelIsa() const override { return "qlc::x86::" + isa_; }
  CodeBuild codeBuild() const override {
    CodeBuild b{"c++", "model.cpp",
                {"-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden",
                 "-fno-math-errno", "-DNDEBUG", "-march=" + march_}};
    if (tuneNative_)
      b.flags.push_back("-mtune=native");
    return b;
  }
  llvm::Expected<CodegenResult> emit(mlir::ModuleOp module,
                                     const CodegenOptions &opts) const override {
    return emitX86(module, *this, opts);
  }

private:
  std::string name_, march_, isa_;
  std::vector<std::string> features_;
  bool tuneNative_;
};

std::unique_ptr<TargetInfo> x86Level(const std::string &name, bool native) {
  if (name == "x86-64-v4")
    return std::make_unique<X86Target>(
        name, "x86-64-v4", "Avx512",
        std::vector<std::string>{"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                 "avx512dq"},
        native);
  if (name == "x86-64-v3")
    return std::make_unique<X86Target>(name, "x86-64-v3", "Avx2",
                                       std::vector<std::string>{"avx2", "fma", "f16c"}, native);
  return std::make_unique<X86Target>("x86-64", "x86-64", "Generic", std::vector<std::string>{},
                                     native);
}


/// An NVIDIA GPU architecture: kernels compiled by nvcc into SASS for it plus PTX, so
/// that the artifact also runs on newer GPUs (the driver compiles the PTX).
class CudaTarget : public TargetInfo {
public:
  explicit CudaTarget(int cc) : cc_(cc) {}
  std::string name() const override { return "sm_" + std::to_string(cc_); }
  std::string kind() const override { return "cuda"; }
  std::vector<std::string> requiredFeatures() const override { return {name()}; }
  std::string kernelIsa() const override { return name(); }
  CodeBuild codeBuild() const override {
    const std::string cc = std::to_string(cc_);
    return {"nvcc",
            "model.cu",
            {"-std=c++17", "-O3", "-shared", "-Xcompiler", "-fPIC,-fvisibility=hidden",
             "-cudart", "static", "-DNDEBUG", "-gencode",
             "arch=compute_" + cc + ",code=[sm_" + cc + ",compute_" + cc + "]"}};
  }
  llvm::Expected<CodegenResult> emit(mlir::ModuleOp module,
                                     const CodegenOptions &opts) const override {
    return emitCuda(module, *this, opts);
  }

private:
  int cc_;
};

} // namespace

const std::vector<std::string> &knownTargets() {
  static const std::vector<std::string> t = {"x86-64", "x86-64-v3", "x86-64-v4", "native",
                                             "sm_80",  "sm_86",     "sm_89",     "sm_90"};
  return t;
}

llvm::Expected<std::unique_ptr<TargetInfo>> lookupTarget(const std::string &name) {
  if (name == "x86-64" || name == "x86-64-v3" || name == "x86-64-v4")
    return x86Level(name, false);
  if (name == "native")
    return x86Level(hostX86Level(), true);
  if (name.rfind("sm_", 0) == 0 &&
      std::find(knownTargets().begin(), knownTargets().end(), name) != knownTargets().end())
    return std::make_unique<CudaTarget>(std::stoi(name.substr(3)));
  std::string list;
  for (const auto &t : knownTargets())
    list += (list.empty() ? "" : ", ") + t;
  return err("--target " + name + ": unknown target (known: " + list + ")");
}

} // namespace qlc
