// RUN: not qlc-opt %s --pass-pipeline="builtin.module(qlc-compile-pipeline{quant=rtn-w5})" 2>&1 | FileCheck %s --check-prefix=QUANT
// RUN: not qlc-opt %s --pass-pipeline="builtin.module(qlc-compile-pipeline{kv-cache=int4})" 2>&1 | FileCheck %s --check-prefix=KV
// RUN: not qlc-opt %s --pass-pipeline="builtin.module(qlc-compile-pipeline{fuse=maybe})" 2>&1 | FileCheck %s --check-prefix=FUSE
// RUN: qlc-opt %s --pass-pipeline="builtin.module(qlc-compile-pipeline{fuse=false})" | FileCheck %s --check-prefix=NOFUSE

// Tests that the named pipeline fails (instead of running nothing) on options no
// pipeline serves, naming the option, and that fuse=false leaves the projections apart.
// QUANT: qlc-compile-pipeline: --quant rtn-w5: unknown or not implemented yet
// KV: qlc-compile-pipeline: --kv-cache int4: unknown (available: f32, f16, int8)
// FUSE: fuse
// NOFUSE-LABEL: func.func @f
// NOFUSE-COUNT-2: qlc.linear
// NOFUSE: qlc.silu_mul
func.func @f(%x: tensor<?x16xf32>) -> tensor<?x8xf32> {
  %wg = qlc.weight "gate" : tensor<8x16xf32>
  %g = qlc.linear %x, %wg : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %wu = qlc.weight "up" : tensor<8x16xf32>
  %u = qlc.linear %x, %wu : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %a = qlc.silu_mul %g, %u : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}
