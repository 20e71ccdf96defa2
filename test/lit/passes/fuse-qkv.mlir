// RUN: qlc-opt %s -split-input-file -qlc-fuse-qkv | FileCheck %s

// Tests that float q, k and v projections of one input become one projection whose
// weight concatenates theirs (q rows, then k, then v), split back for rope and attention.
// CHECK-LABEL: func.func @float_qkv
func.func @float_qkv(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: %[[W:.*]] = qlc.weight "l0.attn.{q,k,v}_proj.weight" : tensor<128x64xbf16>
  // CHECK: %[[Y:.*]] = qlc.linear %{{.*}}, %[[W]] : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  // CHECK: %[[S:.*]]:3 = qlc.split %[[Y]] : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  // CHECK-NOT: qlc.linear
  // CHECK: %[[QR:.*]] = qlc.rope %[[S]]#0
  // CHECK: %[[KR:.*]] = qlc.rope %[[S]]#1
  // CHECK: qlc.attention %[[QR]], %[[KR]], %[[S]]#2
  // CHECK-NOT: "l0.attn.q_proj.weight"
  %wq = qlc.weight "l0.attn.q_proj.weight" : tensor<64x64xbf16>
  %q = qlc.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
  %wk = qlc.weight "l0.attn.k_proj.weight" : tensor<32x64xbf16>
  %k = qlc.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xbf16>) -> tensor<?x32xf32>
  %wv = qlc.weight "l0.attn.v_proj.weight" : tensor<32x64xbf16>
  %v = qlc.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xbf16>) -> tensor<?x32xf32>
  %qr = qlc.rope %q, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %kr = qlc.rope %k, %pos {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %o = qlc.attention %qr, %kr, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that biases are concatenated like the weights (Qwen2's q/k/v bias).
// CHECK-LABEL: func.func @bias
func.func @bias(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  // CHECK-DAG: %[[B:.*]] = qlc.weight "{q,k,v}.bias" : tensor<32xf16>
  // CHECK-DAG: %[[W:.*]] = qlc.weight "{q,k,v}.weight" : tensor<32x16xf16>
  // CHECK: qlc.linear %{{.*}}, %[[W]], %[[B]] : (tensor<?x16xf32>, tensor<32x16xf16>, tensor<32xf16>) -> tensor<?x32xf32>
  %wq = qlc.weight "q.weight" : tensor<16x16xf16>
  %bq = qlc.weight "q.bias" : tensor<16xf16>
  %q = qlc.linear %x, %wq, %bq : (tensor<?x16xf32>, tensor<16x16xf16>, tensor<16xf16>) -> tensor<?x16xf32>
  %wk = qlc.weight "k.weight" : tensor<8x16xf16>
  %bk = qlc.weight "k.bias" : tensor<8xf16>
  %k = qlc.linear %x, %wk, %bk : (tensor<?x16xf32>, tensor<8x16xf16>, tensor<8xf16>) -> tensor<?x8xf32>
  %wv = qlc.weight "v.weight" : tensor<8x16xf16>
  %bv = qlc.weight "v.bias" : tensor<8xf16>
  %v = qlc.linear %x, %wv, %bv : (tensor<?x16xf32>, tensor<8x16xf16>, tensor<8xf16>) -> tensor<?x8xf32>
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %o : tensor<?x16xf32>
}

// -----

// Tests that int-quantized projections of one scheme fuse into one packed weight:
// qweight, scales and zeros are concatenated along the output rows.
// CHECK-LABEL: func.func @int4
func.func @int4(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-DAG: %[[Q:.*]] = qlc.weight "{q,k,v}.rtn4ag32.qweight" : tensor<128x32xui8>
  // CHECK-DAG: %[[S:.*]] = qlc.weight "{q,k,v}.rtn4ag32.scales" : tensor<128x2xf16>
  // CHECK-DAG: %[[Z:.*]] = qlc.weight "{q,k,v}.rtn4ag32.zeros" : tensor<128x2xui8>
  // CHECK: %[[Y:.*]] = qlc.quantized_linear %{{.*}}, %[[Q]], %[[S]] zeros %[[Z]] {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 128 : i64, source = "{q,k,v}"}
  // CHECK: qlc.split %[[Y]]
  %q0 = qlc.weight "q.rtn4ag32.qweight" : tensor<64x32xui8>
  %s0 = qlc.weight "q.rtn4ag32.scales" : tensor<64x2xf16>
  %z0 = qlc.weight "q.rtn4ag32.zeros" : tensor<64x2xui8>
  %q = qlc.quantized_linear %x, %q0, %s0 zeros %z0 {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 64 : i64, source = "q"} : (tensor<?x64xf32>, tensor<64x32xui8>, tensor<64x2xf16>, tensor<64x2xui8>) -> tensor<?x64xf32>
  %q1 = qlc.weight "k.rtn4ag32.qweight" : tensor<32x32xui8>
  %s1 = qlc.weight "k.rtn4ag32.scales" : tensor<32x2xf16>
  %z1 = qlc.weight "k.rtn4ag32.zeros" : tensor<32x2xui8>
  %k = qlc.quantized_linear %x, %q1, %s1 zeros %z1 {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 32 : i64, source = "k"} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf16>, tensor<32x2xui8>) -> tensor<?x32xf32>
  %q2 = qlc.weight "v.rtn4ag32.qweight" : tensor<32x32xui8>
  %s2 = qlc.weight "v.rtn4ag32.scales" : tensor<32x2xf16>
  %z2 = qlc.weight "v.rtn4ag32.zeros" : tensor<32x2xui8>
  %v = qlc.quantized_linear %x, %q2, %s2 zeros %z2 {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 32 : i64, source = "v"} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf16>, tensor<32x2xui8>) -> tensor<?x32xf32>
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that NF4 projections fuse when no block straddles two weights (64*64 and
// 32*64 elements are multiples of the block of 64): flat qweight and absmax concatenate.
// CHECK-LABEL: func.func @nf4_aligned
func.func @nf4_aligned(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-DAG: qlc.weight "{q,k,v}.nf4b64.qweight" : tensor<4096xui8>
  // CHECK-DAG: qlc.weight "{q,k,v}.nf4b64.absmax" : tensor<128xf32>
  // CHECK: qlc.quantized_linear {{.*}} {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 128 : i64, source = "{q,k,v}"}
  %q0 = qlc.weight "q.nf4b64.qweight" : tensor<2048xui8>
  %a0 = qlc.weight "q.nf4b64.absmax" : tensor<64xf32>
  %q = qlc.quantized_linear %x, %q0, %a0 {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 64 : i64, source = "q"} : (tensor<?x64xf32>, tensor<2048xui8>, tensor<64xf32>) -> tensor<?x64xf32>
  %q1 = qlc.weight "k.nf4b64.qweight" : tensor<1024xui8>
  %a1 = qlc.weight "k.nf4b64.absmax" : tensor<32xf32>
  %k = qlc.quantized_linear %x, %q1, %a1 {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 32 : i64, source = "k"} : (tensor<?x64xf32>, tensor<1024xui8>, tensor<32xf32>) -> tensor<?x32xf32>
  %q2 = qlc.weight "v.nf4b64.qweight" : tensor<1024xui8>
  %a2 = qlc.weight "v.nf4b64.absmax" : tensor<32xf32>
  %v = qlc.quantized_linear %x, %q2, %a2 {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 32 : i64, source = "v"} : (tensor<?x64xf32>, tensor<1024xui8>, tensor<32xf32>) -> tensor<?x32xf32>
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that an attention whose operands are already split is left alone (the pass
// can run twice).
// CHECK-LABEL: func.func @already_fused
func.func @already_fused(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  // CHECK: qlc.split
  // CHECK-NOT: qlc.split
  %w = qlc.weight "{q,k,v}.weight" : tensor<32x16xf32>
  %y = qlc.linear %x, %w : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
  %s:3 = qlc.split %y : (tensor<?x32xf32>) -> (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>)
  %o = qlc.attention %s#0, %s#1, %s#2, %pos {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %o : tensor<?x16xf32>
}
