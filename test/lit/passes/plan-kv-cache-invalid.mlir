// RUN: qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=100 max-batch=3 memory-budget=40000" -verify-diagnostics
// RUN: not qlc-opt %s -split-input-file -qlc-plan-kv-cache 2>&1 | FileCheck %s --check-prefix=NOLEN
// RUN: not qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=8 target=tpu" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=8 memory-fraction=0.5" 2>&1 | FileCheck %s --check-prefix=FRAC
// RUN: not qlc-opt %s -split-input-file -qlc-plan-kv-cache="max-seq-len=8 max-batch=0" 2>&1 | FileCheck %s --check-prefix=BATCH

// Tests that options no plan serves are refused, naming the option.
// NOLEN: qlc-plan-kv-cache: max-seq-len must be positive, got 0
// TARGET: qlc-plan-kv-cache: unknown target 'tpu' (expected x86 or cuda)
// FRAC: qlc-plan-kv-cache: memory-fraction needs target-memory (the target's bytes)
// BATCH: qlc-plan-kv-cache: max-batch must be positive, got 0

// Tests that a budget that cannot hold one sequence of max-seq-len is refused: 40000
// bytes hold 2 x86 pages of 16384 bytes, a sequence of 100 positions needs 4.
// expected-error @+1 {{qlc-plan-kv-cache: a memory budget of 40000 bytes holds 2 pages of 16384 bytes; one sequence of max-seq-len 100 needs 4}}
module attributes {qlc.model = {num_layers = 2 : i64}} {
  func.func @f(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) -> tensor<?x64xf32> {
    %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    return %a : tensor<?x64xf32>
  }
}

// -----

// Tests that layers with different KV rows (here head widths) are refused: one pool of
// pages serves every layer.
module {
  func.func @mixed(%q: tensor<?x16xf32>, %k: tensor<?x16xf32>, %p: tensor<?xi32>) -> tensor<?x16xf32> {
    %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 1 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    // expected-error @+1 {{qlc-plan-kv-cache: this attention's KV rows (f16, 1 heads of 16) differ from another layer's (f32, 1 heads of 16): the cache needs one row format}}
    %b = qlc.attention %a, %k, %k, %p {layer = 1 : i64, num_heads = 1 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64, kv_dtype = "f16"} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    return %b : tensor<?x16xf32>
  }
}

// -----

// Tests that a module without attention has no cache to plan.
// expected-error @+1 {{qlc-plan-kv-cache: the module has no qlc.attention: nothing to cache}}
module {
  func.func @none(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
    return %x : tensor<?x16xf32>
  }
}

// -----

// Tests that a module plan whose dtype disagrees with the attention ops is refused.
// expected-error @+1 {{qlc-plan-kv-cache: the module's qlc.kv_cache dtype 'int8' differs from the attention ops' kv_dtype 'f32'}}
module attributes {qlc.kv_cache = {dtype = "int8"}} {
  func.func @disagree(%q: tensor<?x16xf32>, %k: tensor<?x16xf32>, %p: tensor<?xi32>) -> tensor<?x16xf32> {
    %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 1 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    return %a : tensor<?x16xf32>
  }
}
