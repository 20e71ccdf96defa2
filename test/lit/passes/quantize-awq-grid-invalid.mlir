// RUN: qlc-opt %s -qlc-quantize-awq="grid=0" -verify-diagnostics

// Tests that an empty scale-search grid is refused with a diagnostic naming it.
// expected-error @+1 {{qlc-quantize-awq: grid must be in [1, 1000], got 0}}
module {
  func.func @f(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    %w = qlc.weight "w" : tensor<8x8xf32>
    %y = qlc.linear %x, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    return %y : tensor<?x8xf32>
  }
}
