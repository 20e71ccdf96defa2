// RUN: qlc-opt %s -qlc-quantize-gptq="damp-percent=0" -verify-diagnostics

// Tests that a dampening fraction outside (0, 1) is refused with a diagnostic naming it.
func.func @f(%x: tensor<?x64xf32>) -> tensor<?x8xf32> {
  %w = qlc.weight "w" : tensor<8x64xf32>
  // expected-error @+1 {{qlc-quantize-gptq: damp-percent must be in (0, 1), got 0}}
  %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
