// RUN: qlc-opt %s -split-input-file --qlc-fuse-rope | FileCheck %s

// Tests that the ropes of q and k move into the attention: it takes the unrotated q
// and k and the rope's parameters, and the ropes are gone.
// CHECK-LABEL: func.func @fused
func.func @fused(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-NOT: qlc.rope
  // CHECK: qlc.attention %arg0, %arg1, %arg2, %arg3 {head_dim = 8 : i64, layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, rope_factor = 8.000000e+00 : f64, rope_high_freq_factor = 4.000000e+00 : f64, rope_low_freq_factor = 1.000000e+00 : f64, rope_original_max_position = 64 : i64, rope_scaling = "llama3", rope_theta = 5.000000e+05 : f64, scale = 0.35355339059327373 : f64}
  // CHECK-NOT: qlc.rope
  %qr = qlc.rope %q, %pos {head_dim = 8 : i64, theta = 5.0e+05 : f64, scaling = "llama3", factor = 8.0 : f64, original_max_position = 64 : i64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %kr = qlc.rope %k, %pos {head_dim = 8 : i64, theta = 5.0e+05 : f64, scaling = "llama3", factor = 8.0 : f64, original_max_position = 64 : i64} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %a = qlc.attention %qr, %kr, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests the fusion after qlc-fuse-qkv: q and k are columns of one split, and the
// attention reads them straight from it.
// CHECK-LABEL: func.func @after_qkv
func.func @after_qkv(%x: tensor<?x128xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: %[[S:.*]]:3 = qlc.split
  // CHECK-NOT: qlc.rope
  // CHECK: qlc.attention %[[S]]#0, %[[S]]#1, %[[S]]#2, %arg1 {{{.*}}rope_scaling = "none", rope_theta = 1.000000e+04 : f64
  %s:3 = qlc.split %x : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  %qr = qlc.rope %s#0, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %kr = qlc.rope %s#1, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %a = qlc.attention %qr, %kr, %s#2, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that running the pass again changes nothing (no rope left to fuse).
// CHECK-LABEL: func.func @twice
func.func @twice(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.attention %arg0, %arg1, %arg1, %arg2 {{{.*}}rope_theta = 1.000000e+04 : f64
  %a = qlc.attention %q, %k, %k, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, rope_theta = 1.0e+04 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}
