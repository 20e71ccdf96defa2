// RUN: qlc-opt %s -split-input-file -qlc-quantize-kv | FileCheck %s
// RUN: qlc-opt %s -split-input-file -qlc-quantize-kv="dtype=f16" | FileCheck %s --check-prefix=F16
// RUN: qlc-opt %s -split-input-file -qlc-compile-pipeline="kv-cache=int8" | FileCheck %s
// RUN: qlc-opt %s -split-input-file -qlc-compile-pipeline | FileCheck %s --check-prefix=F32

// Tests that every layer's attention gets the cache dtype, that the module records the
// plan (int8: per-token, per-head scales), and that the default pipeline keeps the
// exact f32 cache (kv_dtype left at its default, no plan).
// CHECK: module attributes {qlc.kv_cache = {dtype = "int8", scales = "per-token-head-asym"}}
// F16: module attributes {qlc.kv_cache = {dtype = "f16"}}
// F32-NOT: qlc.kv_cache
// CHECK-LABEL: func.func @two_layers
// F16-LABEL: func.func @two_layers
// F32-LABEL: func.func @two_layers
func.func @two_layers(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: %[[A0:.*]] = qlc.attention {{.*}} {head_dim = 8 : i64, kv_dtype = "int8", layer = 0 : i64,
  // F16: qlc.attention {{.*}} kv_dtype = "f16", layer = 0
  // F32-NOT: kv_dtype
  %a0 = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK: qlc.attention %[[A0]], {{.*}} kv_dtype = "int8", layer = 1 : i64, {{.*}} sliding_window = 16 : i64
  // F16: qlc.attention {{.*}} kv_dtype = "f16", layer = 1
  %a1 = qlc.attention %a0, %k, %k, %p {layer = 1 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, sliding_window = 16 : i64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a1 : tensor<?x64xf32>
}

// -----

// Tests that an attention already marked is rewritten to the requested dtype, and
// left alone by a pipeline that keeps the default cache.
// CHECK-LABEL: func.func @remark
// F16-LABEL: func.func @remark
// F32-LABEL: func.func @remark
func.func @remark(%q: tensor<?x16xf32>, %k: tensor<?x16xf32>, %p: tensor<?xi32>) -> tensor<?x16xf32> {
  // CHECK: qlc.attention {{.*}} kv_dtype = "int8"
  // F16: qlc.attention {{.*}} kv_dtype = "f16"
  // F32: qlc.attention {{.*}} kv_dtype = "f16"
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 1 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64, kv_dtype = "f16"} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}
