// RUN: qlc-opt %s -split-input-file -qlc-fuse-gate-up -verify-diagnostics | FileCheck %s

// Tests that a gate projection read by another op is not fused (its result must stay).
// CHECK-LABEL: func.func @shared_gate
func.func @shared_gate(%x: tensor<?x16xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  // CHECK: qlc.silu_mul
  %wg = qlc.weight "gate" : tensor<8x16xf32>
  %g = qlc.linear %x, %wg : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %wu = qlc.weight "up" : tensor<8x16xf32>
  %u = qlc.linear %x, %wu : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  // expected-remark @+1 {{qlc-fuse-gate-up: gate and up projections not fused: another op reads one of them}}
  %a = qlc.silu_mul %g, %u : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a, %g : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Tests that asymmetric and symmetric int projections are refused.
// CHECK-LABEL: func.func @symmetry
func.func @symmetry(%x: tensor<?x64xf32>) -> tensor<?x40xf32> {
  // CHECK: qlc.silu_mul
  %q0 = qlc.weight "gate.qweight" : tensor<40x64xui8>
  %s0 = qlc.weight "gate.scales" : tensor<40x1xf16>
  %g = qlc.quantized_linear %x, %q0, %s0 {bits = 8 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 40 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<40x64xui8>, tensor<40x1xf16>) -> tensor<?x40xf32>
  %q1 = qlc.weight "up.qweight" : tensor<40x64xui8>
  %s1 = qlc.weight "up.scales" : tensor<40x1xf16>
  %z1 = qlc.weight "up.zeros" : tensor<40x1xui8>
  %u = qlc.quantized_linear %x, %q1, %s1 zeros %z1 {bits = 8 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 40 : i64} : (tensor<?x64xf32>, tensor<40x64xui8>, tensor<40x1xf16>, tensor<40x1xui8>) -> tensor<?x40xf32>
  // expected-remark @+1 {{not fused: their quantization schemes differ (int w8 g64 sym vs int w8 g64)}}
  %a = qlc.silu_mul %g, %u : (tensor<?x40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  return %a : tensor<?x40xf32>
}

// -----

// Tests that 4-bit and 8-bit projections are refused.
// CHECK-LABEL: func.func @bits
func.func @bits(%x: tensor<?x64xf32>) -> tensor<?x40xf32> {
  %q0 = qlc.weight "gate.qweight" : tensor<40x32xui8>
  %s0 = qlc.weight "gate.scales" : tensor<40x1xf16>
  %g = qlc.quantized_linear %x, %q0, %s0 {bits = 4 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 40 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<40x32xui8>, tensor<40x1xf16>) -> tensor<?x40xf32>
  %q1 = qlc.weight "up.qweight" : tensor<40x64xui8>
  %s1 = qlc.weight "up.scales" : tensor<40x1xf16>
  %u = qlc.quantized_linear %x, %q1, %s1 {bits = 8 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 40 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<40x64xui8>, tensor<40x1xf16>) -> tensor<?x40xf32>
  // expected-remark @+1 {{not fused: their quantization schemes differ (int w4 g64 sym vs int w8 g64 sym)}}
  %a = qlc.silu_mul %g, %u : (tensor<?x40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  return %a : tensor<?x40xf32>
}
