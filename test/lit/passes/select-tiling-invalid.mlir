// RUN: qlc-opt %s -qlc-select-tiling="target=sm_75" -verify-diagnostics
// RUN: not qlc-opt %s -qlc-select-tiling="target=sm_90 cache=%S/Inputs/tuning-cache-malformed.json" 2>&1 | FileCheck %s --check-prefix=MALFORMED
// RUN: not qlc-opt %s -qlc-select-tiling="target=sm_90 cache=%S/Inputs/tuning-cache-illegal.json" 2>&1 | FileCheck %s --check-prefix=ILLEGAL
// RUN: not qlc-opt %s -qlc-select-tiling="target=sm_90 cache=%S/Inputs" 2>&1 | FileCheck %s --check-prefix=DIR
// RUN: not qlc-opt %s -qlc-select-tiling="target=sm_90 max-tokens=0" 2>&1 | FileCheck %s --check-prefix=TOKENS

// Tests that an unknown target is refused naming it and the known ones; that a cache
// file that is not JSON, or not a file, is an error naming the file; that a cached
// config the kernel does not take (3 warps) is refused naming the file, the kernel, the
// shape, the range and the legal candidates; and that max-tokens must be positive.
// MALFORMED: error: qlc-select-tiling: tuning cache {{.*}}Inputs/tuning-cache-malformed.json: is not JSON
// ILLEGAL: error: qlc-select-tiling: tuning cache {{.*}}tuning-cache-illegal.json: config {rows=2 unroll=4 warps=3} of linear.f16 64x172 (decode) is not legal on sm_90 (candidates: {warps=4 rows=2 unroll=4},
// DIR: error: qlc-select-tiling: tuning cache {{.*}}Inputs: cannot be read
// TOKENS: error: qlc-select-tiling: max-tokens must be positive, got 0
// expected-error @+1 {{qlc-select-tiling: unknown target 'sm_75' (expected x86-64, x86-64-v3, x86-64-v4, native, sm_80, sm_86, sm_89 or sm_90)}}
module {
  func.func @narrow(%x: tensor<?x64xf32>) -> tensor<?x172xf32> {
    %w = qlc.weight "w" : tensor<172x64xf16>
    %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf16>) -> tensor<?x172xf32>
    return %y : tensor<?x172xf32>
  }
}
