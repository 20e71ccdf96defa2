// RUN: qlc-opt %s -split-input-file | qlc-opt -split-input-file | FileCheck %s

// Tests that every qlc op survives a print/parse round trip with its attributes.
// CHECK-LABEL: func.func @block
func.func @block(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x512xf32> {
  // CHECK: %[[EMB:.*]] = qlc.weight "model.embed_tokens.weight" : tensor<512x64xbf16>
  %emb = qlc.weight "model.embed_tokens.weight" : tensor<512x64xbf16>
  // CHECK: %[[H:.*]] = qlc.embedding %{{.*}}, %[[EMB]] : (tensor<?xi32>, tensor<512x64xbf16>) -> tensor<?x64xf32>
  %h = qlc.embedding %ids, %emb : (tensor<?xi32>, tensor<512x64xbf16>) -> tensor<?x64xf32>
  %nw = qlc.weight "n" : tensor<64xf32>
  // CHECK: %[[N:.*]] = qlc.rms_norm %[[H]], %{{.*}} {epsilon = 1.000000e-05 : f64}
  %n = qlc.rms_norm %h, %nw {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %wq = qlc.weight "q" : tensor<64x64xf16>
  %bq = qlc.weight "qb" : tensor<64xf16>
  // CHECK: %[[Q:.*]] = qlc.linear %[[N]], %{{.*}}, %{{.*}} : (tensor<?x64xf32>, tensor<64x64xf16>, tensor<64xf16>) -> tensor<?x64xf32>
  %q = qlc.linear %n, %wq, %bq : (tensor<?x64xf32>, tensor<64x64xf16>, tensor<64xf16>) -> tensor<?x64xf32>
  %wk = qlc.weight "k" : tensor<32x64xf32>
  // CHECK: %[[K:.*]] = qlc.linear %[[N]], %{{.*}} : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k = qlc.linear %n, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  // CHECK: %[[QR:.*]] = qlc.rope %[[Q]], %{{.*}} {factor = 8.000000e+00 : f64, head_dim = 8 : i64, original_max_position = 64 : i64, scaling = "llama3", theta = 5.000000e+05 : f64}
  %qr = qlc.rope %q, %pos {head_dim = 8 : i64, theta = 5.0e+05 : f64, scaling = "llama3", factor = 8.0 : f64, original_max_position = 64 : i64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK: %[[KR:.*]] = qlc.rope %[[K]], %{{.*}} {head_dim = 8 : i64, scaling = "none", theta = 1.000000e+04 : f64}
  %kr = qlc.rope %k, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  // CHECK: %[[A:.*]] = qlc.attention %[[QR]], %[[KR]], %[[K]], %{{.*}} {head_dim = 8 : i64, layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, scale = 0.35355339059327373 : f64, sliding_window = 128 : i64}
  %a = qlc.attention %qr, %kr, %k, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64, sliding_window = 128 : i64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK: %[[S:.*]] = qlc.add %[[H]], %[[A]] : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %s = qlc.add %h, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: %[[M:.*]] = qlc.silu_mul %[[S]], %[[S]] : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %m = qlc.silu_mul %s, %s : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: %[[L:.*]] = qlc.logits %[[M]], %[[EMB]] : (tensor<?x64xf32>, tensor<512x64xbf16>) -> tensor<?x512xf32>
  %l = qlc.logits %m, %emb : (tensor<?x64xf32>, tensor<512x64xbf16>) -> tensor<?x512xf32>
  // CHECK: return %[[L]]
  return %l : tensor<?x512xf32>
}

// -----

// Tests that a static token dimension is accepted as well as a dynamic one.
// CHECK-LABEL: func.func @static_tokens
func.func @static_tokens(%x: tensor<3x16xf32>) -> tensor<3x16xf32> {
  // CHECK: qlc.add %{{.*}}, %{{.*}} : (tensor<3x16xf32>, tensor<3x16xf32>) -> tensor<3x16xf32>
  %s = qlc.add %x, %x : (tensor<3x16xf32>, tensor<3x16xf32>) -> tensor<3x16xf32>
  return %s : tensor<3x16xf32>
}

// -----

// Tests that the ops of fused graphs round-trip: split, swiglu and add_rms_norm.
// CHECK-LABEL: func.func @fused_ops
func.func @fused_ops(%x: tensor<?x128xf32>, %h: tensor<?x64xf32>) -> (tensor<?x32xf32>, tensor<?x64xf32>) {
  // CHECK: %[[S:.*]]:3 = qlc.split %{{.*}} : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  %q, %k, %v = qlc.split %x : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  // CHECK: qlc.swiglu %[[S]]#0 : (tensor<?x64xf32>) -> tensor<?x32xf32>
  %a = qlc.swiglu %q : (tensor<?x64xf32>) -> tensor<?x32xf32>
  %w = qlc.weight "norm" : tensor<64xf32>
  // CHECK: qlc.add_rms_norm %{{.*}}, %[[S]]#0, %{{.*}} {epsilon = 1.000000e-05 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %s, %n = qlc.add_rms_norm %h, %q, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return %a, %n : tensor<?x32xf32>, tensor<?x64xf32>
}

// -----

// Tests that an int projection with an input permutation (act-order) round-trips.
// CHECK-LABEL: func.func @qlinear_perm
func.func @qlinear_perm(%x: tensor<?x64xf32>) -> tensor<?x24xf32> {
  %q = qlc.weight "p.qlc.qweight" : tensor<24x32xui8>
  %s = qlc.weight "p.qlc.scales" : tensor<24x2xf16>
  %z = qlc.weight "p.qlc.zeros" : tensor<24x2xui8>
  // CHECK: %[[P:.*]] = qlc.weight "p.qlc.perm" : tensor<64xi32>
  %p = qlc.weight "p.qlc.perm" : tensor<64xi32>
  // CHECK: qlc.quantized_linear %{{.*}}, %{{.*}}, %{{.*}} zeros %{{.*}} perm %[[P]] {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 24 : i64}
  %y = qlc.quantized_linear %x, %q, %s zeros %z perm %p {format = "int", bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, out_features = 24 : i64} : (tensor<?x64xf32>, tensor<24x32xui8>, tensor<24x2xf16>, tensor<24x2xui8>, tensor<64xi32>) -> tensor<?x24xf32>
  return %y : tensor<?x24xf32>
}

// -----

// Tests that an attention with a fused rotary embedding (qlc-fuse-rope) round-trips
// with its rope_* attributes.
// CHECK-LABEL: func.func @attention_rope
func.func @attention_rope(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.attention %{{.*}} {head_dim = 8 : i64, layer = 1 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, rope_factor = 8.000000e+00 : f64, rope_high_freq_factor = 4.000000e+00 : f64, rope_low_freq_factor = 1.000000e+00 : f64, rope_original_max_position = 8192 : i64, rope_scaling = "llama3", rope_theta = 5.000000e+05 : f64, scale = 0.35355339059327373 : f64}
  %a = qlc.attention %q, %k, %k, %pos {layer = 1 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64, rope_theta = 5.0e+05 : f64, rope_scaling = "llama3", rope_factor = 8.0 : f64, rope_low_freq_factor = 1.0 : f64, rope_high_freq_factor = 4.0 : f64, rope_original_max_position = 8192 : i64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that an attention reading packed q/k/v (qlc-fold-qkv-split) round-trips with
// qkv_packed and its one operand three times.
// CHECK-LABEL: func.func @attention_packed
func.func @attention_packed(%x: tensor<?x128xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.attention %arg0, %arg0, %arg0, %arg1 {head_dim = 8 : i64, layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, qkv_packed, scale = 3.500000e-01 : f64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %a = qlc.attention %x, %x, %x, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, qkv_packed} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}
