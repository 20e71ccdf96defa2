// RUN: qlc-opt %s -split-input-file --qlc-fold-qkv-split | FileCheck %s

// Tests that the attention reads q, k and v in place from the fused projection: the
// split's input becomes all three operands, with qkv_packed, and the split is gone.
// CHECK-LABEL: func.func @folded
func.func @folded(%x: tensor<?x128xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-NOT: qlc.split
  // CHECK: qlc.attention %arg0, %arg0, %arg0, %arg1 {head_dim = 8 : i64, layer = 2 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, qkv_packed, rope_scaling = "none", rope_theta = 1.000000e+04 : f64, scale = 0.35355339059327373 : f64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK-NOT: qlc.split
  %s:3 = qlc.split %x : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  %a = qlc.attention %s#0, %s#1, %s#2, %pos {layer = 2 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64, rope_theta = 1.0e+04 : f64, rope_scaling = "none"} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that running the pass again changes nothing (the attention is packed already),
// and that an attention whose q does not come from a split is left alone silently.
// CHECK-LABEL: func.func @twice
func.func @twice(%x: tensor<?x128xf32>, %q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  // CHECK: qlc.attention %arg0, %arg0, %arg0, %arg3 {{{.*}}qkv_packed
  // CHECK: qlc.attention %arg1, %arg2, %arg2, %arg3 {head_dim = 8 : i64, layer = 1 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, scale = 3.500000e-01 : f64}
  %a = qlc.attention %x, %x, %x, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, qkv_packed} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %b = qlc.attention %q, %k, %k, %pos {layer = 1 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a, %b : tensor<?x64xf32>, tensor<?x64xf32>
}
