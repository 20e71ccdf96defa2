// RUN: qlc-opt %s -split-input-file -qlc-fuse-qkv -verify-diagnostics | FileCheck %s

// Tests that weights of different element types are refused with a remark and the
// projections are left as they were.
// CHECK-LABEL: func.func @dtypes
func.func @dtypes(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  // CHECK-COUNT-3: qlc.linear
  // CHECK-NOT: qlc.split
  %wq = qlc.weight "q" : tensor<16x16xf16>
  %q = qlc.linear %x, %wq : (tensor<?x16xf32>, tensor<16x16xf16>) -> tensor<?x16xf32>
  %wk = qlc.weight "k" : tensor<8x16xbf16>
  %k = qlc.linear %x, %wk : (tensor<?x16xf32>, tensor<8x16xbf16>) -> tensor<?x8xf32>
  %wv = qlc.weight "v" : tensor<8x16xf16>
  %v = qlc.linear %x, %wv : (tensor<?x16xf32>, tensor<8x16xf16>) -> tensor<?x8xf32>
  // expected-remark @+1 {{qlc-fuse-qkv: layer 0: q, k and v projections not fused: their weights differ in element type (f16 vs bf16)}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %o : tensor<?x16xf32>
}

// -----

// Tests that projections of different inputs are refused.
// CHECK-LABEL: func.func @inputs
func.func @inputs(%x: tensor<?x16xf32>, %x2: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  // CHECK-COUNT-3: qlc.linear
  %wq = qlc.weight "q" : tensor<16x16xf32>
  %q = qlc.linear %x, %wq : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
  %wk = qlc.weight "k" : tensor<8x16xf32>
  %k = qlc.linear %x2, %wk : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %wv = qlc.weight "v" : tensor<8x16xf32>
  %v = qlc.linear %x, %wv : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  // expected-remark @+1 {{not fused: they read different inputs}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %o : tensor<?x16xf32>
}

// -----

// Tests that a bias on some projections only is refused.
// CHECK-LABEL: func.func @some_bias
func.func @some_bias(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  %wq = qlc.weight "q" : tensor<16x16xf32>
  %bq = qlc.weight "q.bias" : tensor<16xf32>
  %q = qlc.linear %x, %wq, %bq : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  %wk = qlc.weight "k" : tensor<8x16xf32>
  %k = qlc.linear %x, %wk : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %wv = qlc.weight "v" : tensor<8x16xf32>
  %v = qlc.linear %x, %wv : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  // expected-remark @+1 {{not fused: some have a bias and some do not}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %o : tensor<?x16xf32>
}

// -----

// Tests that a quantized projection does not fuse with a float one.
// CHECK-LABEL: func.func @mixed
func.func @mixed(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.quantized_linear
  // CHECK-COUNT-2: qlc.linear
  %q0 = qlc.weight "q.qweight" : tensor<64x32xui8>
  %s0 = qlc.weight "q.scales" : tensor<64x2xf16>
  %q = qlc.quantized_linear %x, %q0, %s0 {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 64 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<64x32xui8>, tensor<64x2xf16>) -> tensor<?x64xf32>
  %wk = qlc.weight "k" : tensor<32x64xf32>
  %k = qlc.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %wv = qlc.weight "v" : tensor<32x64xf32>
  %v = qlc.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  // expected-remark @+1 {{not fused: one is quantized and another is not}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that int projections of different group sizes are refused, naming both schemes.
// CHECK-LABEL: func.func @group_sizes
func.func @group_sizes(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-COUNT-3: qlc.quantized_linear
  %q0 = qlc.weight "q.qweight" : tensor<64x32xui8>
  %s0 = qlc.weight "q.scales" : tensor<64x2xf16>
  %q = qlc.quantized_linear %x, %q0, %s0 {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 64 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<64x32xui8>, tensor<64x2xf16>) -> tensor<?x64xf32>
  %q1 = qlc.weight "k.qweight" : tensor<32x32xui8>
  %s1 = qlc.weight "k.scales" : tensor<32x1xf16>
  %k = qlc.quantized_linear %x, %q1, %s1 {bits = 4 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 32 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x1xf16>) -> tensor<?x32xf32>
  %q2 = qlc.weight "v.qweight" : tensor<32x32xui8>
  %s2 = qlc.weight "v.scales" : tensor<32x2xf16>
  %v = qlc.quantized_linear %x, %q2, %s2 {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 32 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf16>) -> tensor<?x32xf32>
  // expected-remark @+1 {{not fused: their quantization schemes differ (int w4 g32 sym vs int w4 g64 sym)}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that NF4 projections whose blocks would straddle two weights are refused
// (24*20 = 480 elements is not a multiple of the block of 64).
// CHECK-LABEL: func.func @nf4_straddle
func.func @nf4_straddle(%x: tensor<?x20xf32>, %pos: tensor<?xi32>) -> tensor<?x24xf32> {
  // CHECK-COUNT-3: qlc.quantized_linear
  %q0 = qlc.weight "q.qweight" : tensor<240xui8>
  %a0 = qlc.weight "q.absmax" : tensor<8xf32>
  %q = qlc.quantized_linear %x, %q0, %a0 {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 20 : i64, out_features = 24 : i64} : (tensor<?x20xf32>, tensor<240xui8>, tensor<8xf32>) -> tensor<?x24xf32>
  %q1 = qlc.weight "k.qweight" : tensor<80xui8>
  %a1 = qlc.weight "k.absmax" : tensor<3xf32>
  %k = qlc.quantized_linear %x, %q1, %a1 {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 20 : i64, out_features = 8 : i64} : (tensor<?x20xf32>, tensor<80xui8>, tensor<3xf32>) -> tensor<?x8xf32>
  %q2 = qlc.weight "v.qweight" : tensor<80xui8>
  %a2 = qlc.weight "v.absmax" : tensor<3xf32>
  %v = qlc.quantized_linear %x, %q2, %a2 {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 20 : i64, out_features = 8 : i64} : (tensor<?x20xf32>, tensor<80xui8>, tensor<3xf32>) -> tensor<?x8xf32>
  // expected-remark @+1 {{not fused: nf4 blocks of 64 elements would straddle two weights (24x20 is not a multiple)}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 3 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x24xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x24xf32>
  return %o : tensor<?x24xf32>
}

// -----

// Tests that double-quantized NF4 is refused: each weight's absmax codes have an offset
// of their own.
// CHECK-LABEL: func.func @nf4_dq
func.func @nf4_dq(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  %q0 = qlc.weight "q.qweight" : tensor<2048xui8>
  %a0 = qlc.weight "q.absmax" : tensor<64xui8>
  %b0 = qlc.weight "q.absmax2" : tensor<1xf32>
  %q = qlc.quantized_linear %x, %q0, %a0 scales2 %b0 {absmax_offset = 0.5 : f64, bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 64 : i64} : (tensor<?x64xf32>, tensor<2048xui8>, tensor<64xui8>, tensor<1xf32>) -> tensor<?x64xf32>
  %q1 = qlc.weight "k.qweight" : tensor<1024xui8>
  %a1 = qlc.weight "k.absmax" : tensor<32xui8>
  %b1 = qlc.weight "k.absmax2" : tensor<1xf32>
  %k = qlc.quantized_linear %x, %q1, %a1 scales2 %b1 {absmax_offset = 0.25 : f64, bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 32 : i64} : (tensor<?x64xf32>, tensor<1024xui8>, tensor<32xui8>, tensor<1xf32>) -> tensor<?x32xf32>
  %q2 = qlc.weight "v.qweight" : tensor<1024xui8>
  %a2 = qlc.weight "v.absmax" : tensor<32xui8>
  %b2 = qlc.weight "v.absmax2" : tensor<1xf32>
  %v = qlc.quantized_linear %x, %q2, %a2 scales2 %b2 {absmax_offset = 0.25 : f64, bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 32 : i64} : (tensor<?x64xf32>, tensor<1024xui8>, tensor<32xui8>, tensor<1xf32>) -> tensor<?x32xf32>
  // expected-remark @+1 {{not fused: nf4 with double quantization}}
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}
