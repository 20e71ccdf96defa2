// RUN: qlc-opt %s -qlc-quantize-gptq="bits=3" -verify-diagnostics

// Tests that an unsupported bit width is refused with a diagnostic naming it.
func.func @f(%x: tensor<?x64xf32>) -> tensor<?x8xf32> {
  %w = qlc.weight "w" : tensor<8x64xf32>
  // expected-error @+1 {{qlc-quantize-gptq: bits must be 4 or 8, got 3}}
  %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
