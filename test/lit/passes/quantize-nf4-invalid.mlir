// RUN: qlc-opt %s -qlc-quantize-nf4="block-size=0" -verify-diagnostics

// Tests that a block size bitsandbytes does not accept is refused with a diagnostic
// naming it.
// expected-error @+1 {{qlc-quantize-nf4: block-size must be a power of two in [32, 4096] as in bitsandbytes, got 0}}
module {
  func.func @f(%x: tensor<?x64xf32>) -> tensor<?x8xf32> {
    %w = qlc.weight "w" : tensor<8x64xf32>
    %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<?x8xf32>
    return %y : tensor<?x8xf32>
  }
}
