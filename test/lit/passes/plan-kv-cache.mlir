// RUN: qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=100 max-batch=3" | FileCheck %s
// RUN: qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=100 max-batch=3 target=cuda" | FileCheck %s --check-prefix=CUDA
// RUN: qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=100 max-batch=3 page-size=7 memory-budget=70000" | FileCheck %s --check-prefix=BUDGET
// RUN: qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=100 max-batch=3 memory-fraction=0.5 target-memory=140000" | FileCheck %s --check-prefix=FRAC
// RUN: qlc-opt %s -split-input-file -qlc-quantize-kv -qlc-plan-kv-cache="max-seq-len=100 max-batch=3" | FileCheck %s --check-prefix=INT8
// RUN: qlc-opt %s -split-input-file -qlc-compile-pipeline="kv-cache=f16 max-seq-len=64 max-batch=2 target=sm_90" | FileCheck %s --check-prefix=PIPE

// Tests the plan of two layers with 4 KV heads of 8 channels: f32 rows of 128 bytes, 512
// bytes a position (2 layers x k,v). x86 pages hold 32 positions (16384 bytes): 4 pages a
// sequence of 100, 12 for 3 sequences; CUDA pages 16 (8192 bytes): 7 a sequence, 21. A
// budget of 70000 bytes holds 19 pages of 7 positions (3584 bytes), capping the 3 x 15 =
// 45; half of 140000 bytes holds 4 x86 pages, the 4 one sequence needs. qlc-quantize-kv's int8 rows (heads of 4 + 8 bytes) keep its scales in
// the plan, and the compile pipeline plans last.
// CHECK: module attributes {qlc.kv_cache = {budget_bytes = 0 : i64, dtype = "f32", layout = "page,layer,kv,position,head", max_batch = 3 : i64, max_pages_per_seq = 4 : i64, max_seq_len = 100 : i64, page_bytes = 16384 : i64, page_size = 32 : i64, pages = 12 : i64}
// CUDA: module attributes {qlc.kv_cache = {budget_bytes = 0 : i64, dtype = "f32", layout = "page,layer,kv,position,head", max_batch = 3 : i64, max_pages_per_seq = 7 : i64, max_seq_len = 100 : i64, page_bytes = 8192 : i64, page_size = 16 : i64, pages = 21 : i64}
// BUDGET: module attributes {qlc.kv_cache = {budget_bytes = 70000 : i64, dtype = "f32", layout = "page,layer,kv,position,head", max_batch = 3 : i64, max_pages_per_seq = 15 : i64, max_seq_len = 100 : i64, page_bytes = 3584 : i64, page_size = 7 : i64, pages = 19 : i64}
// FRAC: module attributes {qlc.kv_cache = {budget_bytes = 70000 : i64, {{.*}} max_pages_per_seq = 4 : i64, {{.*}} page_bytes = 16384 : i64, page_size = 32 : i64, pages = 4 : i64}
// INT8: module attributes {qlc.kv_cache = {budget_bytes = 0 : i64, dtype = "int8", layout = "page,layer,kv,position,head", max_batch = 3 : i64, max_pages_per_seq = 4 : i64, max_seq_len = 100 : i64, page_bytes = 6144 : i64, page_size = 32 : i64, pages = 12 : i64, scales = "per-token-head-asym"}
// PIPE: module attributes {qlc.kv_cache = {budget_bytes = 0 : i64, dtype = "f16", layout = "page,layer,kv,position,head", max_batch = 2 : i64, max_pages_per_seq = 4 : i64, max_seq_len = 64 : i64, page_bytes = 4096 : i64, page_size = 16 : i64, pages = 8 : i64}
// CHECK-LABEL: func.func @two_layers
// CUDA-LABEL: func.func @two_layers
// BUDGET-LABEL: func.func @two_layers
// INT8-LABEL: func.func @two_layers
// PIPE-LABEL: func.func @two_layers
module attributes {qlc.model = {num_layers = 2 : i64}} {
func.func @two_layers(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: qlc.attention
  // CHECK-NOT: page
  %a0 = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %a1 = qlc.attention %a0, %k, %k, %p {layer = 1 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, sliding_window = 16 : i64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %a1 : tensor<?x64xf32>
}
}

// -----

// Tests that a plan already made (by an earlier run, or qlc-quantize-kv's dtype and
// scales) is replaced field by field, keeping the fields this pass does not plan, and
// that the layer count comes from the attention ops when qlc.model is absent (one
// layer of one f16 head of 16 channels: 64 bytes a position).
// CHECK: module attributes {qlc.kv_cache = {budget_bytes = 0 : i64, dtype = "f16", layout = "page,layer,kv,position,head", max_batch = 3 : i64, max_pages_per_seq = 4 : i64, max_seq_len = 100 : i64, note = "kept", page_bytes = 2048 : i64, page_size = 32 : i64, pages = 12 : i64}}
// CUDA: page_bytes = 1024 : i64, page_size = 16 : i64, pages = 21 : i64
// CHECK-LABEL: func.func @replan
module attributes {qlc.kv_cache = {dtype = "f16", note = "kept", page_size = 4 : i64, pages = 1 : i64}} {
func.func @replan(%q: tensor<?x16xf32>, %k: tensor<?x16xf32>, %p: tensor<?xi32>) -> tensor<?x16xf32> {
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 1 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64, kv_dtype = "f16"} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}
}
