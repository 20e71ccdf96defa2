// RUN: qlc-opt %s -split-input-file --qlc-fold-qkv-split -verify-diagnostics | FileCheck %s

// Tests that the fold is refused when a column range of the split has another reader
// (the split must stay, so nothing would be saved).
// CHECK-LABEL: func.func @other_user
func.func @other_user(%x: tensor<?x128xf32>, %pos: tensor<?xi32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  // CHECK: qlc.split
  // CHECK: qlc.attention %{{.*}}#0, %{{.*}}#1, %{{.*}}#2
  %s:3 = qlc.split %x : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  // expected-remark @+1 {{qlc-fold-qkv-split: layer 0: q/k/v split not folded into the attention: a result of the split has another user}}
  %a = qlc.attention %s#0, %s#1, %s#2, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %t = qlc.add %s#2, %s#2 : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %a, %t : tensor<?x64xf32>, tensor<?x32xf32>
}

// -----

// Tests that the fold is refused when the split's results are not q, k, v in order.
// CHECK-LABEL: func.func @swapped
func.func @swapped(%x: tensor<?x128xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.split
  %s:3 = qlc.split %x : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  // expected-remark @+1 {{qlc-fold-qkv-split: layer 4: q/k/v split not folded into the attention: q, k and v are not the split's results in that order}}
  %a = qlc.attention %s#0, %s#2, %s#1, %pos {layer = 4 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that the fold is refused for a split into other than three parts.
// CHECK-LABEL: func.func @four_parts
func.func @four_parts(%x: tensor<?x136xf32>, %pos: tensor<?xi32>) -> (tensor<?x64xf32>, tensor<?x8xf32>) {
  // CHECK: qlc.split
  %s:4 = qlc.split %x : (tensor<?x136xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x8xf32>)
  // expected-remark @+1 {{qlc-fold-qkv-split: layer 0: q/k/v split not folded into the attention: the split has 4 results, not 3}}
  %a = qlc.attention %s#0, %s#1, %s#2, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a, %s#3 : tensor<?x64xf32>, tensor<?x8xf32>
}
