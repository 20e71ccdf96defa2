// RUN: qlc-opt %s -qlc-quantize-gptq="act-order=true group-size=32" -verify-diagnostics

// Tests that act-order with groups smaller than a row is refused without static groups:
// the op keeps per-group scales in natural column order and has no g_idx.
func.func @f(%x: tensor<?x64xf32>) -> tensor<?x8xf32> {
  %w = qlc.weight "w" : tensor<8x64xf32>
  // expected-error @+1 {{qlc-quantize-gptq: act-order with groups needs static-groups (per-group scales are kept in natural column order; there is no g_idx)}}
  %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
