// RUN: qlc-opt %s -split-input-file --qlc-fuse-rope -verify-diagnostics | FileCheck %s

// Tests that the fusion is refused when a rope result has another user (it must still
// be computed, so nothing would be saved, and the attention would rotate twice).
// CHECK-LABEL: func.func @other_user
func.func @other_user(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  // CHECK-COUNT-2: qlc.rope
  %qr = qlc.rope %q, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %kr = qlc.rope %k, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  // CHECK: qlc.attention %{{.*}} {head_dim = 8 : i64, layer = 3 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, scale = 3.500000e-01 : f64}
  // expected-remark @+1 {{qlc-fuse-rope: layer 3: rope not fused into the attention: the rope of k has another user}}
  %a = qlc.attention %qr, %kr, %k, %pos {layer = 3 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %t = qlc.add %kr, %kr : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %a, %t : tensor<?x64xf32>, tensor<?x32xf32>
}

// -----

// Tests that the fusion is refused when the ropes of q and k differ.
// CHECK-LABEL: func.func @different
func.func @different(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-COUNT-2: qlc.rope
  %qr = qlc.rope %q, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %kr = qlc.rope %k, %pos {head_dim = 8 : i64, theta = 5.0e+05 : f64, scaling = "none"} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  // expected-remark @+1 {{qlc-fuse-rope: layer 0: rope not fused into the attention: the ropes of q and k differ}}
  %a = qlc.attention %qr, %kr, %k, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that the fusion is refused when only q is rotated.
// CHECK-LABEL: func.func @only_q
func.func @only_q(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.rope
  %qr = qlc.rope %q, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // expected-remark @+1 {{qlc-fuse-rope: layer 0: rope not fused into the attention: only q comes from a qlc.rope}}
  %a = qlc.attention %qr, %k, %k, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that the fusion is refused when the ropes rotate at other positions than the
// attention's.
// CHECK-LABEL: func.func @other_positions
func.func @other_positions(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>, %pos2: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-COUNT-2: qlc.rope
  %qr = qlc.rope %q, %pos2 {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %kr = qlc.rope %k, %pos2 {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  // expected-remark @+1 {{qlc-fuse-rope: layer 0: rope not fused into the attention: a rope rotates at other positions than the attention's}}
  %a = qlc.attention %qr, %kr, %k, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}
