// RUN: qlc-opt %s -split-input-file -qlc-quantize-gptq="bits=4 group-size=32" | FileCheck %s
// RUN: qlc-opt %s -split-input-file -qlc-quantize-gptq="bits=8 group-size=0 symmetric=true act-order=true" | FileCheck %s --check-prefix=ACT8
// RUN: qlc-opt %s -split-input-file -qlc-quantize-gptq="bits=4 group-size=32 act-order=true static-groups=true" | FileCheck %s --check-prefix=STATIC

// Tests that, with no weight provider (so no calibration either), a projection becomes
// a quantized_linear of format "int" named after its weight and the GPTQ parameters,
// with a shorter last group (172 = 5 * 32 + 12: 6 groups); "o" marks act-order.
// CHECK-LABEL: func.func @mlp
// ACT8-LABEL: func.func @mlp
// STATIC-LABEL: func.func @mlp
func.func @mlp(%x: tensor<?x172xf32>) -> tensor<?x64xf32> {
  %w = qlc.weight "down.weight" : tensor<64x172xbf16>
  // CHECK-DAG: %[[Q:.*]] = qlc.weight "down.weight.gptq4ag32.qweight" : tensor<64x86xui8>
  // CHECK-DAG: %[[S:.*]] = qlc.weight "down.weight.gptq4ag32.scales" : tensor<64x6xf16>
  // CHECK-DAG: %[[Z:.*]] = qlc.weight "down.weight.gptq4ag32.zeros" : tensor<64x6xui8>
  // CHECK: %[[Y:.*]] = qlc.quantized_linear %{{.*}}, %[[Q]], %[[S]] zeros %[[Z]] {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 172 : i64, out_features = 64 : i64, source = "down.weight"}
  // CHECK-NOT: "down.weight" :
  // ACT8-DAG: qlc.weight "down.weight.gptq8sg172o.qweight" : tensor<64x172xui8>
  // ACT8-DAG: qlc.weight "down.weight.gptq8sg172o.scales" : tensor<64x1xf16>
  // ACT8-NOT: zeros
  // ACT8: qlc.quantized_linear {{.*}} {bits = 8 : i64, format = "int", group_size = 172 : i64, in_features = 172 : i64, out_features = 64 : i64, source = "down.weight", symmetric = true}
  // STATIC: qlc.weight "down.weight.gptq4ag32o.scales" : tensor<64x6xf16>
  %y = qlc.linear %x, %w : (tensor<?x172xf32>, tensor<64x172xbf16>) -> tensor<?x64xf32>
  // CHECK: return %[[Y]]
  return %y : tensor<?x64xf32>
}

// -----

// Tests that a bias is kept and that the embedding and logits weights are not quantized.
// CHECK-LABEL: func.func @head
func.func @head(%ids: tensor<?xi32>) -> tensor<?x100xf32> {
  // CHECK: %[[E:.*]] = qlc.weight "emb" : tensor<100x64xf32>
  %e = qlc.weight "emb" : tensor<100x64xf32>
  %h = qlc.embedding %ids, %e : (tensor<?xi32>, tensor<100x64xf32>) -> tensor<?x64xf32>
  %w = qlc.weight "q" : tensor<64x64xf32>
  %b = qlc.weight "q.bias" : tensor<64xf32>
  // CHECK: qlc.quantized_linear %{{.*}}, %{{.*}}, %{{.*}} zeros %{{.*}} bias %{{.*}} {{{.*}}group_size = 32
  %q = qlc.linear %h, %w, %b : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK: qlc.logits %{{.*}}, %[[E]]
  %l = qlc.logits %q, %e : (tensor<?x64xf32>, tensor<100x64xf32>) -> tensor<?x100xf32>
  return %l : tensor<?x100xf32>
}
