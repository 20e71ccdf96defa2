// RUN: qlc-opt %s -qlc-fuse-qkv -qlc-fuse-gate-up -qlc-quantize-rtn="bits=4 group-size=32" | FileCheck %s
// RUN: qlc-opt %s -qlc-quantize-rtn="bits=4 group-size=32" -qlc-fuse-qkv -qlc-fuse-gate-up | FileCheck %s
// RUN: qlc-opt %s --pass-pipeline="builtin.module(qlc-compile-pipeline{quant=rtn-w4 group-size=32 fuse=true})" | FileCheck %s

// Tests that fusing then quantizing and quantizing then fusing give the same module:
// the same fused tensors under the same names, read by the same quantized projections
// (with a weight store, the same data: e2e test_fusion.py compares the logits).
// CHECK-LABEL: func.func @layer
func.func @layer(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK-DAG: %[[Q:.*]] = qlc.weight "attn.{q,k,v}_proj.weight.rtn4ag32.qweight" : tensor<128x32xui8>
  // CHECK-DAG: %[[S:.*]] = qlc.weight "attn.{q,k,v}_proj.weight.rtn4ag32.scales" : tensor<128x2xf16>
  // CHECK-DAG: %[[Z:.*]] = qlc.weight "attn.{q,k,v}_proj.weight.rtn4ag32.zeros" : tensor<128x2xui8>
  // CHECK: %[[QKV:.*]] = qlc.quantized_linear %{{.*}}, %[[Q]], %[[S]] zeros %[[Z]] {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 128 : i64, source = "attn.{q,k,v}_proj.weight"}
  // The compile pipeline also folds the split into the attention (qlc-fold-qkv-split).
  // CHECK: qlc.{{split|attention}} %[[QKV]]
  // CHECK-DAG: %[[GQ:.*]] = qlc.weight "mlp.{gate,up}_proj.weight.rtn4ag32.qweight" : tensor<192x32xui8>
  // CHECK-DAG: %[[GS:.*]] = qlc.weight "mlp.{gate,up}_proj.weight.rtn4ag32.scales" : tensor<192x2xf16>
  // CHECK-DAG: %[[GZ:.*]] = qlc.weight "mlp.{gate,up}_proj.weight.rtn4ag32.zeros" : tensor<192x2xui8>
  // CHECK: %[[GU:.*]] = qlc.quantized_linear %{{.*}}, %[[GQ]], %[[GS]] zeros %[[GZ]] {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 192 : i64, source = "mlp.{gate,up}_proj.weight"}
  // CHECK: qlc.swiglu %[[GU]]
  %wq = qlc.weight "attn.q_proj.weight" : tensor<64x64xf32>
  %q = qlc.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %wk = qlc.weight "attn.k_proj.weight" : tensor<32x64xf32>
  %k = qlc.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %wv = qlc.weight "attn.v_proj.weight" : tensor<32x64xf32>
  %v = qlc.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %wg = qlc.weight "mlp.gate_proj.weight" : tensor<96x64xf32>
  %g = qlc.linear %o, %wg : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  %wu = qlc.weight "mlp.up_proj.weight" : tensor<96x64xf32>
  %u = qlc.linear %o, %wu : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  %a = qlc.silu_mul %g, %u : (tensor<?x96xf32>, tensor<?x96xf32>) -> tensor<?x96xf32>
  %wd = qlc.weight "mlp.down_proj.weight" : tensor<64x96xf32>
  %y = qlc.linear %a, %wd : (tensor<?x96xf32>, tensor<64x96xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
