// RUN: qlc-opt %s -split-input-file -qlc-quantize-nf4 | FileCheck %s
// RUN: qlc-opt %s -split-input-file -qlc-quantize-nf4="double-quant=true" | FileCheck %s --check-prefix=DQ
// RUN: qlc-opt %s -split-input-file -qlc-quantize-nf4="block-size=128" | FileCheck %s --check-prefix=B128
// RUN: qlc-opt %s -split-input-file -qlc-compile-pipeline="quant=nf4-dq" | FileCheck %s --check-prefix=DQ

// Tests that a projection becomes an nf4 quantized_linear over its weight flattened in
// blocks that straddle rows: 37 x 172 = 6364 elements are 3182 bytes and 100 blocks of
// 64 (the last one of 28), and that double quantization stores ui8 absmax codes with one
// f32 scale per 256 blocks.
// CHECK-LABEL: func.func @mlp
// DQ-LABEL: func.func @mlp
// B128-LABEL: func.func @mlp
func.func @mlp(%x: tensor<?x172xf32>) -> tensor<?x37xf32> {
  %w = qlc.weight "down.weight" : tensor<37x172xbf16>
  // CHECK-DAG: %[[Q:.*]] = qlc.weight "down.weight.nf4b64.qweight" : tensor<3182xui8>
  // CHECK-DAG: %[[A:.*]] = qlc.weight "down.weight.nf4b64.absmax" : tensor<100xf32>
  // CHECK: %[[Y:.*]] = qlc.quantized_linear %{{.*}}, %[[Q]], %[[A]] {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 172 : i64, out_features = 37 : i64, source = "down.weight"}
  // CHECK-NOT: "down.weight" :
  // DQ-DAG: %[[Q:.*]] = qlc.weight "down.weight.nf4b64.dq.qweight" : tensor<3182xui8>
  // DQ-DAG: %[[A:.*]] = qlc.weight "down.weight.nf4b64.dq.absmax" : tensor<100xui8>
  // DQ-DAG: %[[A2:.*]] = qlc.weight "down.weight.nf4b64.dq.absmax2" : tensor<1xf32>
  // DQ: qlc.quantized_linear %{{.*}}, %[[Q]], %[[A]] scales2 %[[A2]] {bits = 4 : i64, format = "nf4", group_size = 64
  // B128-DAG: qlc.weight "down.weight.nf4b128.absmax" : tensor<50xf32>
  // B128: qlc.quantized_linear {{.*}}group_size = 128 : i64
  %y = qlc.linear %x, %w : (tensor<?x172xf32>, tensor<37x172xbf16>) -> tensor<?x37xf32>
  // CHECK: return %[[Y]]
  return %y : tensor<?x37xf32>
}

// -----

// Tests that more than 256 blocks give several double-quantization scales
// (128 x 172 / 64 = 344 blocks: 2 scales) and that an odd element count rounds the
// packed bytes up (7 x 9 = 63 elements: 32 bytes, one block).
// CHECK-LABEL: func.func @sizes
// DQ-LABEL: func.func @sizes
func.func @sizes(%x: tensor<?x172xf32>, %z: tensor<?x9xf32>) -> (tensor<?x128xf32>, tensor<?x7xf32>) {
  %w = qlc.weight "up.weight" : tensor<128x172xf16>
  %v = qlc.weight "odd.weight" : tensor<7x9xf32>
  // CHECK-DAG: qlc.weight "up.weight.nf4b64.absmax" : tensor<344xf32>
  // CHECK-DAG: qlc.weight "odd.weight.nf4b64.qweight" : tensor<32xui8>
  // CHECK-DAG: qlc.weight "odd.weight.nf4b64.absmax" : tensor<1xf32>
  // DQ-DAG: qlc.weight "up.weight.nf4b64.dq.absmax" : tensor<344xui8>
  // DQ-DAG: qlc.weight "up.weight.nf4b64.dq.absmax2" : tensor<2xf32>
  %y = qlc.linear %x, %w : (tensor<?x172xf32>, tensor<128x172xf16>) -> tensor<?x128xf32>
  %o = qlc.linear %z, %v : (tensor<?x9xf32>, tensor<7x9xf32>) -> tensor<?x7xf32>
  return %y, %o : tensor<?x128xf32>, tensor<?x7xf32>
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
  // CHECK: qlc.quantized_linear %{{.*}}, %{{.*}}, %{{.*}} bias %{{.*}} {{{.*}}format = "nf4"
  %q = qlc.linear %h, %w, %b : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK: qlc.logits %{{.*}}, %[[E]]
  %l = qlc.logits %q, %e : (tensor<?x64xf32>, tensor<100x64xf32>) -> tensor<?x100xf32>
  return %l : tensor<?x100xf32>
}
