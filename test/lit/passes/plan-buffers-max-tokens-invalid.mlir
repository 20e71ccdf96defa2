// RUN: qlc-opt %s -split-input-file --qlc-plan-buffers="max-tokens=0" -verify-diagnostics
// RUN: not qlc-opt %s --qlc-plan-buffers="max-tokens=65537" 2>&1 | FileCheck %s

// Tests that max-tokens outside [1, 65536] is refused, naming the option and the value.
// CHECK: max-tokens must be in [1, 65536], got 65537
// expected-error @+1 {{qlc-plan-buffers: max-tokens must be in [1, 65536], got 0}}
module {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    %a = qlc.embedding %tokens, %e : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %a : tensor<?x16xf32>
  }
}
