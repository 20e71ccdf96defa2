// RUN: qlc-opt %s -qlc-cast-weights="dtype=int3" -verify-diagnostics

// Tests that an unknown storage type is refused with a diagnostic naming it.
// expected-error @+1 {{qlc-cast-weights: unknown dtype 'int3' (expected f32, f16 or bf16)}}
module {
  func.func @f() {
    %w = qlc.weight "w" : tensor<8x8xf32>
    return
  }
}
