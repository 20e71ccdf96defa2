// RUN: qlc-opt %s -qlc-compile-pipeline="quant=rtn-w4" | FileCheck %s
// RUN: qlc-opt %s -qlc-compile-pipeline="quant=nf4 embedding-dtype=bf16" | FileCheck %s --check-prefix=BF16
// RUN: qlc-opt %s -qlc-compile-pipeline="quant=rtn-w8 embedding-dtype=source" | FileCheck %s --check-prefix=SRC
// RUN: qlc-opt %s -qlc-compile-pipeline | FileCheck %s --check-prefix=SRC
// RUN: not qlc-opt %s -qlc-compile-pipeline="quant=rtn-w4 embedding-dtype=f64" 2>&1 | FileCheck %s --check-prefix=BAD

// Tests that weight quantization leaves the (tied) embedding table and logits projection
// as the only float matrices and narrows them to f16 by default (bf16 on request), while
// `embedding-dtype=source` and --quant none keep the imported f32.
// CHECK-LABEL: func.func @tied
// CHECK: %[[E:.*]] = qlc.weight "emb" : tensor<64x32xf16>
// CHECK: qlc.embedding %{{.*}}, %[[E]] : (tensor<?xi32>, tensor<64x32xf16>)
// CHECK: qlc.quantized_linear
// CHECK: qlc.logits %{{.*}}, %[[E]] : (tensor<?x32xf32>, tensor<64x32xf16>)
// BF16: qlc.weight "emb" : tensor<64x32xbf16>
// SRC: qlc.weight "emb" : tensor<64x32xf32>
// BAD: --embedding-dtype f64: unknown (available: f16, bf16, f32, source)
func.func @tied(%ids: tensor<?xi32>) -> tensor<?x64xf32> {
  %e = qlc.weight "emb" : tensor<64x32xf32>
  %w = qlc.weight "proj" : tensor<32x32xf32>
  %h = qlc.embedding %ids, %e : (tensor<?xi32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %p = qlc.linear %h, %w : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %l = qlc.logits %p, %e : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  return %l : tensor<?x64xf32>
}
