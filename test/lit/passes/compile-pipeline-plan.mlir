// RUN: qlc-opt %s -qlc-compile-pipeline="max-tokens=8" | FileCheck %s
// RUN: qlc-opt %s -qlc-compile-pipeline="max-tokens=8 fuse=false" | FileCheck %s --check-prefix=NOFUSE

// Tests that the compile pipeline fuses the ropes into the attention (with fusion on)
// and ends with qlc-plan-buffers for its max-tokens: 8 tokens x 64 floats = 2048 bytes.
// CHECK-LABEL: module attributes {qlc.buffers = {{{.*}}max_tokens = 8 : i64
// CHECK-NOT: qlc.rope
// CHECK: qlc.attention {{.*}}qlc.buffer = [{bytes = 2048 : i64, offset = {{[0-9]+}} : i64}]{{.*}}rope_theta = 1.000000e+04 : f64
// NOFUSE-LABEL: module attributes {qlc.buffers = {{{.*}}max_tokens = 8 : i64
// NOFUSE-COUNT-2: qlc.rope
module attributes {qlc.model = {num_layers = 1 : i64}} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
    %e = qlc.weight "emb" : tensor<64x64xf32>
    %x = qlc.embedding %tokens, %e : (tensor<?xi32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %qr = qlc.rope %x, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %kr = qlc.rope %x, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %a = qlc.attention %qr, %kr, %x, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 8 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %l = qlc.logits %a, %e : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %l : tensor<?x64xf32>
  }
}
