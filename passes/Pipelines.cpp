//===- Pipelines.cpp - the named pass pipelines of qlc ---------------------===//
//
// Every pipeline qlc runs is assembled here and nowhere else.
//
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"

namespace qlc {

mlir::LogicalResult buildCompilePipeline(mlir::OpPassManager &pm,
                                         const CompilePipelineOptions &opts,
                                         std::string &error) {
  if (opts.quant == "none")
    return mlir::success();
  if (opts.quant == "f32" || opts.quant == "f16" || opts.quant == "bf16") {
    CastWeightsPassOptions o;
    o.dtype = opts.quant;
    pm.addPass(createCastWeightsPass(o));
    return mlir::success();
  }
  error = "--quant " + opts.quant + " is not implemented yet (available: none, f32, f16, bf16)";
  return mlir::failure();
}

namespace {
struct QuantPipelineOptions : mlir::PassPipelineOptions<QuantPipelineOptions> {
  Option<std::string> quant{*this, "quant", llvm::cl::desc("Quantization scheme"),
                            llvm::cl::init("none")};
};
} // namespace

void registerQlcPassesAndPipelines() {
  registerQlcPasses();
  mlir::PassPipelineRegistration<QuantPipelineOptions>(
      "qlc-compile-pipeline", "The passes `qlc compile` runs before codegen",
      [](mlir::OpPassManager &pm, const QuantPipelineOptions &o) {
        std::string error;
        CompilePipelineOptions opts;
        opts.quant = o.quant;
        if (mlir::failed(buildCompilePipeline(pm, opts, error)))
          llvm::errs() << "qlc-compile-pipeline: " << error << "\n";
      });
}

} // namespace qlc
