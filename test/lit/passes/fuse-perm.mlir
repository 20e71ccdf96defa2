// RUN: qlc-opt %s -split-input-file -qlc-fuse-qkv -qlc-fuse-gate-up -verify-diagnostics | FileCheck %s

// Tests that projections sharing one input permutation (act-order checkpoints quantize
// q, k and v in one Hessian order) fuse, and the fused projection keeps that perm.
// CHECK-LABEL: func.func @same_perm
func.func @same_perm(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: %[[P:.*]] = qlc.weight "attn.g_idx.perm" : tensor<64xi32>
  // CHECK: %[[Y:.*]] = qlc.quantized_linear %{{.*}}, %{{.*}}, %{{.*}} perm %[[P]] {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 128 : i64, symmetric = true}
  // CHECK: qlc.split %[[Y]]
  %p = qlc.weight "attn.g_idx.perm" : tensor<64xi32>
  %q0 = qlc.weight "q.qweight" : tensor<64x32xui8>
  %s0 = qlc.weight "q.scales" : tensor<64x2xf16>
  %q = qlc.quantized_linear %x, %q0, %s0 perm %p {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 64 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<64x32xui8>, tensor<64x2xf16>, tensor<64xi32>) -> tensor<?x64xf32>
  %q1 = qlc.weight "k.qweight" : tensor<32x32xui8>
  %s1 = qlc.weight "k.scales" : tensor<32x2xf16>
  %k = qlc.quantized_linear %x, %q1, %s1 perm %p {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 32 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf16>, tensor<64xi32>) -> tensor<?x32xf32>
  %q2 = qlc.weight "v.qweight" : tensor<32x32xui8>
  %s2 = qlc.weight "v.scales" : tensor<32x2xf16>
  %v = qlc.quantized_linear %x, %q2, %s2 perm %p {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 32 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf16>, tensor<64xi32>) -> tensor<?x32xf32>
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that projections with different input permutations are refused with a remark
// (without weight data, differently named perms count as different) and stay apart.
// CHECK-LABEL: func.func @different_perms
func.func @different_perms(%x: tensor<?x64xf32>) -> tensor<?x96xf32> {
  // CHECK-COUNT-2: qlc.quantized_linear
  // CHECK-NOT: qlc.swiglu
  %pg = qlc.weight "gate.perm" : tensor<64xi32>
  %pu = qlc.weight "up.perm" : tensor<64xi32>
  %qg = qlc.weight "gate.qweight" : tensor<96x32xui8>
  %sg = qlc.weight "gate.scales" : tensor<96x2xf16>
  %g = qlc.quantized_linear %x, %qg, %sg perm %pg {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 96 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<96x32xui8>, tensor<96x2xf16>, tensor<64xi32>) -> tensor<?x96xf32>
  %qu = qlc.weight "up.qweight" : tensor<96x32xui8>
  %su = qlc.weight "up.scales" : tensor<96x2xf16>
  %u = qlc.quantized_linear %x, %qu, %su perm %pu {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 96 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<96x32xui8>, tensor<96x2xf16>, tensor<64xi32>) -> tensor<?x96xf32>
  // expected-remark @+1 {{gate and up projections not fused: their input permutations (act-order) differ}}
  %y = qlc.silu_mul %g, %u : (tensor<?x96xf32>, tensor<?x96xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

// -----

// Tests that a projection with an input permutation does not fuse with one without.
// CHECK-LABEL: func.func @some_perm
func.func @some_perm(%x: tensor<?x64xf32>) -> tensor<?x96xf32> {
  // CHECK-COUNT-2: qlc.quantized_linear
  %pg = qlc.weight "gate.perm" : tensor<64xi32>
  %qg = qlc.weight "gate.qweight" : tensor<96x32xui8>
  %sg = qlc.weight "gate.scales" : tensor<96x2xf16>
  %g = qlc.quantized_linear %x, %qg, %sg perm %pg {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 96 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<96x32xui8>, tensor<96x2xf16>, tensor<64xi32>) -> tensor<?x96xf32>
  %qu = qlc.weight "up.qweight" : tensor<96x32xui8>
  %su = qlc.weight "up.scales" : tensor<96x2xf16>
  %u = qlc.quantized_linear %x, %qu, %su {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 96 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<96x32xui8>, tensor<96x2xf16>) -> tensor<?x96xf32>
  // expected-remark @+1 {{not fused: some have an input permutation (act-order) and some do not}}
  %y = qlc.silu_mul %g, %u : (tensor<?x96xf32>, tensor<?x96xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}
