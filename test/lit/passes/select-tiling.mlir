// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=sm_90" | FileCheck %s --check-prefix=SM90
// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=sm_89" | FileCheck %s --check-prefix=SM89
// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=x86-64-v3" | FileCheck %s --check-prefix=AVX2
// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=x86-64-v4" | FileCheck %s --check-prefix=AVX512
// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=sm_90 cache=%S/Inputs/tuning-cache.json" | FileCheck %s --check-prefix=CACHE90
// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=x86-64-v3 cache=%S/Inputs/tuning-cache.json" | FileCheck %s --check-prefix=CACHEX86
// RUN: qlc-opt %s -split-input-file -qlc-select-tiling="target=sm_90 cache=%t.absent.json" | FileCheck %s --check-prefix=SM90
// RUN: qlc-opt %s -split-input-file -qlc-compile-pipeline="target=sm_90" | FileCheck %s --check-prefix=SM90
// RUN: qlc-opt %s -split-input-file -qlc-compile-pipeline | FileCheck %s --check-prefix=NONE

// Tests that a narrow projection (172 rows) gets a GEMV of 2 warps of 1 row on sm_90
// (172 / 8 rows a block would leave most of the 132 SMs idle; 86 blocks of 2 rows still
// do not give two a SM, so the smallest block is kept), tensor-core tiles for the small
// and prefill ranges, and that the module records the target. A cache entry of the
// target overrides the model (`by = "cache"`), one of another target (sm_80) does not;
// an absent cache file is an empty cache; the compile pipeline selects only when given
// a target.
// SM90: module attributes {qlc.tiling_target = "sm_90"}
// SM90-LABEL: func.func @narrow
// SM90: qlc.linear {{.*}}qlc.tiling = {decode = {by = "model", max_m = 8 : i64, min_m = 1 : i64, rows = 1 : i64, unroll = 4 : i64, warps = 2 : i64}, prefill = {bm = [[PBM:[0-9]+]] : i64, bn = [[PBN:[0-9]+]] : i64, by = "model", max_m = 0 : i64, max_split_k = 16 : i64, min_m = 33 : i64, warps_m = {{[0-9]+}} : i64, warps_n = {{[0-9]+}} : i64}, small = {bm = {{16|32}} : i64, {{.*}} by = "model", max_m = 32 : i64, max_split_k = 16 : i64, min_m = 9 : i64
// CACHE90-LABEL: func.func @narrow
// CACHE90: qlc.linear {{.*}}qlc.tiling = {decode = {by = "cache", max_m = 8 : i64, min_m = 1 : i64, rows = 4 : i64, unroll = 2 : i64, warps = 4 : i64}, prefill = {bm = 128 : i64, bn = 64 : i64, by = "cache", max_m = 0 : i64, max_split_k = 1 : i64, min_m = 33 : i64, warps_m = 2 : i64, warps_n = 2 : i64}, small = {{{.*}}by = "model"
// SM89-LABEL: func.func @narrow
// SM89: decode = {by = "model", {{.*}} rows = 1 : i64, unroll = 4 : i64, warps = 2 : i64}
// NONE-NOT: qlc.tiling
// NONE-LABEL: func.func @narrow
func.func @narrow(%x: tensor<?x64xf32>) -> tensor<?x172xf32> {
  %w = qlc.weight "w" : tensor<172x64xf16>
  %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf16>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that a wide projection keeps the default GEMV (4 warps of 2 rows: 1376 blocks
// fill 132 SMs ten times over) and splits K at no M of the prefill range's 512 rows
// needs it less: max_split_k stays a cap, the launcher decides from the real SM count.
// On sm_89 (58 SMs) the same. On x86 AVX2 the dense GEMV steps over 8 rows, the small
// range keeps the 4 x 2 register tile, and the GEMM keeps 6 x 2 with a 16 KiB panel (kc
// 256), not 4 x 3 (as many accumulators, and 64 prefill rows need no padding, but all 16
// registers); AVX-512 takes 4 x 4 tiles for the small range.
// SM90-LABEL: func.func @wide
// SM90: qlc.linear {{.*}}decode = {by = "model", max_m = 8 : i64, min_m = 1 : i64, rows = 2 : i64, unroll = 4 : i64, warps = 4 : i64}
// SM89-LABEL: func.func @wide
// SM89: decode = {{{.*}}rows = 2 : i64, unroll = 4 : i64, warps = 4 : i64}
// AVX2-LABEL: func.func @wide
// AVX2: qlc.linear {{.*}}qlc.tiling = {decode = {by = "model", max_m = 1 : i64, min_m = 1 : i64, rows = 8 : i64}, prefill = {by = "model", kc = 256 : i64, max_m = 0 : i64, min_m = 16 : i64, mr = 6 : i64, nv = 2 : i64}, small = {by = "model", max_m = 15 : i64, min_m = 2 : i64, mr = 4 : i64, nr = 2 : i64}}
// AVX512-LABEL: func.func @wide
// AVX512: small = {by = "model", max_m = 15 : i64, min_m = 2 : i64, mr = 4 : i64, nr = 4 : i64}
func.func @wide(%x: tensor<?x4096xf32>) -> tensor<?x11008xf32> {
  %w = qlc.weight "w" : tensor<11008x4096xbf16>
  %y = qlc.linear %x, %w : (tensor<?x4096xf32>, tensor<11008x4096xbf16>) -> tensor<?x11008xf32>
  return %y : tensor<?x11008xf32>
}

// -----

// Tests that an int4 projection on x86 has a decode range up to 3 rows (the GEMM takes
// over at 4) and no small range, and that a cached x86 winner replaces the prefill tile.
// AVX2-LABEL: func.func @int4
// AVX2: qlc.quantized_linear {{.*}}qlc.tiling = {decode = {by = "model", max_m = 3 : i64, min_m = 1 : i64, rows = 4 : i64}, prefill = {by = "model", kc = {{[0-9]+}} : i64, max_m = 0 : i64, min_m = 4 : i64, mr = 6 : i64, nv = 2 : i64}}} :
// CACHEX86-LABEL: func.func @int4
// CACHEX86: prefill = {by = "cache", kc = 512 : i64, max_m = 0 : i64, min_m = 4 : i64, mr = 8 : i64, nv = 1 : i64}
// SM90-LABEL: func.func @int4
// SM90: decode = {by = "model", max_m = 8 : i64, min_m = 1 : i64, rows = 1 : i64, unroll = 8 : i64, warps = 2 : i64}
func.func @int4(%x: tensor<?x64xf32>) -> tensor<?x100xf32> {
  %q = qlc.weight "q" : tensor<100x32xui8>
  %s = qlc.weight "s" : tensor<100x2xf16>
  %z = qlc.weight "z" : tensor<100x2xui8>
  %y = qlc.quantized_linear %x, %q, %s zeros %z {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 64 : i64, out_features = 100 : i64} : (tensor<?x64xf32>, tensor<100x32xui8>, tensor<100x2xf16>, tensor<100x2xui8>) -> tensor<?x100xf32>
  return %y : tensor<?x100xf32>
}

// -----

// Tests that an NF4 projection on x86 has only the GEMM range (its decode path has no
// parameter), and that qlc.logits is tiled like a projection of the vocabulary.
// AVX512-LABEL: func.func @nf4_logits
// AVX512: qlc.quantized_linear {{.*}}qlc.tiling = {prefill = {by = "model", kc = {{[0-9]+}} : i64, max_m = 0 : i64, min_m = 4 : i64, mr = {{[0-9]+}} : i64, nv = {{[0-9]+}} : i64}}
// AVX512: qlc.logits {{.*}}qlc.tiling = {decode = {by = "model", max_m = 1 : i64, min_m = 1 : i64, rows = 8 : i64}
// SM90-LABEL: func.func @nf4_logits
// SM90: qlc.quantized_linear {{.*}}qlc.tiling = {decode
// SM90: qlc.logits {{.*}}qlc.tiling = {decode = {by = "model", max_m = 8 : i64, min_m = 1 : i64, rows = 1 : i64, unroll = 4 : i64, warps = 2 : i64}
func.func @nf4_logits(%x: tensor<?x64xf32>, %e: tensor<?x64xf32>) -> tensor<?x512xf32> {
  %q = qlc.weight "q" : tensor<2048xui8>
  %a = qlc.weight "a" : tensor<64xf32>
  %y = qlc.quantized_linear %x, %q, %a {bits = 4 : i64, format = "nf4", group_size = 64 : i64, in_features = 64 : i64, out_features = 64 : i64} : (tensor<?x64xf32>, tensor<2048xui8>, tensor<64xf32>) -> tensor<?x64xf32>
  %w = qlc.weight "emb" : tensor<512x64xf16>
  %l = qlc.logits %y, %w : (tensor<?x64xf32>, tensor<512x64xf16>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}
