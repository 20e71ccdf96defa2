// RUN: qlc-opt %s -split-input-file -qlc-fuse-norm-residual | FileCheck %s

// Tests that an RMSNorm of a residual add becomes one add_rms_norm whose sum carries
// the residual stream on.
// CHECK-LABEL: func.func @block
func.func @block(%h: tensor<?x64xf32>, %o: tensor<?x64xf32>, %d: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // CHECK: %[[W:.*]] = qlc.weight "post_attention_layernorm.weight"
  // CHECK: %[[S:.*]], %[[N:.*]] = qlc.add_rms_norm %{{.*}}, %{{.*}}, %[[W]] {epsilon = 1.000000e-05 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NOT: qlc.rms_norm
  // CHECK: %[[M:.*]] = qlc.add %[[N]], %{{.*}}
  // CHECK: qlc.add %[[S]], %[[M]]
  %s = qlc.add %h, %o : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %w = qlc.weight "post_attention_layernorm.weight" : tensor<64xf32>
  %n = qlc.rms_norm %s, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %m = qlc.add %n, %d : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %r = qlc.add %s, %m : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// Tests that a norm of anything but an add is left alone.
// CHECK-LABEL: func.func @plain
func.func @plain(%h: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // CHECK: qlc.rms_norm
  %w = qlc.weight "norm.weight" : tensor<64xf32>
  %n = qlc.rms_norm %h, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %n : tensor<?x64xf32>
}
