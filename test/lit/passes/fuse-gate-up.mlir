// RUN: qlc-opt %s -split-input-file -qlc-fuse-gate-up | FileCheck %s

// Tests that the gate and up projections become one of twice the width (gate rows
// first) and that silu_mul becomes a swiglu on its two halves.
// CHECK-LABEL: func.func @mlp
func.func @mlp(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // CHECK: %[[W:.*]] = qlc.weight "l0.mlp.{gate,up}_proj.weight" : tensor<344x64xbf16>
  // CHECK: %[[GU:.*]] = qlc.linear %{{.*}}, %[[W]] : (tensor<?x64xf32>, tensor<344x64xbf16>) -> tensor<?x344xf32>
  // CHECK: %[[A:.*]] = qlc.swiglu %[[GU]] : (tensor<?x344xf32>) -> tensor<?x172xf32>
  // CHECK-NOT: qlc.silu_mul
  // CHECK: qlc.linear %[[A]]
  %wg = qlc.weight "l0.mlp.gate_proj.weight" : tensor<172x64xbf16>
  %g = qlc.linear %x, %wg : (tensor<?x64xf32>, tensor<172x64xbf16>) -> tensor<?x172xf32>
  %wu = qlc.weight "l0.mlp.up_proj.weight" : tensor<172x64xbf16>
  %u = qlc.linear %x, %wu : (tensor<?x64xf32>, tensor<172x64xbf16>) -> tensor<?x172xf32>
  %a = qlc.silu_mul %g, %u : (tensor<?x172xf32>, tensor<?x172xf32>) -> tensor<?x172xf32>
  %wd = qlc.weight "l0.mlp.down_proj.weight" : tensor<64x172xbf16>
  %y = qlc.linear %a, %wd : (tensor<?x172xf32>, tensor<64x172xbf16>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that symmetric 8-bit projections fuse (no zero points to concatenate).
// CHECK-LABEL: func.func @int8_sym
func.func @int8_sym(%x: tensor<?x64xf32>) -> tensor<?x40xf32> {
  // CHECK-DAG: qlc.weight "{gate,up}.qweight" : tensor<80x64xui8>
  // CHECK-DAG: qlc.weight "{gate,up}.scales" : tensor<80x1xf16>
  // CHECK: qlc.quantized_linear {{.*}} {bits = 8 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 80 : i64, symmetric = true}
  // CHECK: qlc.swiglu
  %q0 = qlc.weight "gate.qweight" : tensor<40x64xui8>
  %s0 = qlc.weight "gate.scales" : tensor<40x1xf16>
  %g = qlc.quantized_linear %x, %q0, %s0 {bits = 8 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 40 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<40x64xui8>, tensor<40x1xf16>) -> tensor<?x40xf32>
  %q1 = qlc.weight "up.qweight" : tensor<40x64xui8>
  %s1 = qlc.weight "up.scales" : tensor<40x1xf16>
  %u = qlc.quantized_linear %x, %q1, %s1 {bits = 8 : i64, format = "int", group_size = 64 : i64, in_features = 64 : i64, out_features = 40 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<40x64xui8>, tensor<40x1xf16>) -> tensor<?x40xf32>
  %a = qlc.silu_mul %g, %u : (tensor<?x40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  return %a : tensor<?x40xf32>
}
