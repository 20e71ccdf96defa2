// RUN: qlc-opt %s -qlc-quantize-awq="bits=3" -verify-diagnostics

// Tests that an unsupported bit width is refused with a diagnostic naming it.
// expected-error @+1 {{qlc-quantize-awq: bits must be 4 or 8, got 3}}
module {
  func.func @f(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    %w = qlc.weight "w" : tensor<8x8xf32>
    %y = qlc.linear %x, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    return %y : tensor<?x8xf32>
  }
}
