// RUN: qlc-opt %s -qlc-fuse-norm-residual -verify-diagnostics | FileCheck %s

// Tests that the fusion is refused when an op between the add and the norm reads the
// sum (the fused op sits at the norm).
// CHECK-LABEL: func.func @early_user
func.func @early_user(%h: tensor<?x64xf32>, %o: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  // CHECK: qlc.add
  // CHECK: qlc.rms_norm
  %s = qlc.add %h, %o : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %t = qlc.add %s, %s : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %w = qlc.weight "norm.weight" : tensor<64xf32>
  // expected-remark @+1 {{qlc-fuse-norm-residual: not fused: an op between the add and the norm reads the sum}}
  %n = qlc.rms_norm %s, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %n, %t : tensor<?x64xf32>, tensor<?x64xf32>
}
