// RUN: qlc-opt %s -qlc-quantize-kv="dtype=int4" -verify-diagnostics

// Tests that an unknown KV cache dtype is refused with a diagnostic naming it.
// expected-error @+1 {{qlc-quantize-kv: unknown dtype 'int4' (expected f32, f16 or int8)}}
module {
  func.func @f(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) -> tensor<?x64xf32> {
    %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    return %a : tensor<?x64xf32>
  }
}
