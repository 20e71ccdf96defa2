//===- Passes.td - qlc passes ------------------------------*- tablegen -*-===//
#ifndef QLC_PASSES_TD
#define QLC_PASSES_TD

include "mlir/Pass/PassBase.td"

def CastWeightsPass : Pass<"qlc-cast-weights", "mlir::ModuleOp"> {
  let summary = "Converts matrix weights to one floating-point storage type";
  let description = [{
    Rewrites the result type of every 2-D `qlc.weight` (projections, embedding, lm_head)
    to the element type given by `dtype` (f32, f16 or bf16); the artifact writer then
    converts the stored data, rounding to nearest even. 1-D weights (norm scales,
    biases) are left alone: kernels read them in f32 whatever their source type.
    This is what `qlc compile --quant f16|bf16|f32` runs.
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"f16\"",
           "Storage type of matrix weights: f32, f16 or bf16">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

#endif // QLC_PASSES_TD
