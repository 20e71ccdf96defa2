// RUN: qlc-opt %s -split-input-file --qlc-plan-buffers="max-tokens=4" | FileCheck %s

// Tests that values with disjoint lifetimes share an offset, that a value live across
// others keeps its own, and that peak and arena are the most bytes live at one op:
// every buffer is 4 tokens x 16 floats = 256 bytes; %x lives from the embedding to
// the add, %a dies where %b is made, %c takes %a's bytes, the logits' scratch %x's.
// Live at the add: %x, %b, %c = 768 bytes.
// CHECK-LABEL: module attributes
// CHECK-SAME: qlc.buffers = {alignment = 64 : i64, arena_bytes = 768 : i64, max_tokens = 4 : i64, num_buffers = 5 : i64, peak_bytes = 768 : i64}
module attributes {qlc.model = {num_layers = 1 : i64}} {
  // CHECK-LABEL: func.func @forward
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x32xf32> {
    %e = qlc.weight "emb" : tensor<32x16xf32>
    // CHECK: qlc.embedding {{.*}} {qlc.buffer = [{bytes = 256 : i64, offset = [[X:[0-9]+]] : i64}]}
    %x = qlc.embedding %tokens, %e : (tensor<?xi32>, tensor<32x16xf32>) -> tensor<?x16xf32>
    %w = qlc.weight "w" : tensor<16x16xf32>
    // CHECK: qlc.linear {{.*}} {qlc.buffer = [{bytes = 256 : i64, offset = [[A:[0-9]+]] : i64}]}
    %a = qlc.linear %x, %w : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    // CHECK: qlc.linear {{.*}} {qlc.buffer = [{bytes = 256 : i64, offset = [[B:[0-9]+]] : i64}]}
    %b = qlc.linear %a, %w : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    // CHECK: qlc.add {{.*}} {qlc.buffer = [{bytes = 256 : i64, offset = [[A]] : i64}]}
    %c = qlc.add %x, %b : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    // CHECK: qlc.logits {{.*}} {qlc.scratch = {bytes = 256 : i64, offset = [[X]] : i64}}
    %l = qlc.logits %c, %e : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    return %l : tensor<?x32xf32>
  }
}

// -----

// Tests that every result of a multi-result op gets a buffer of its own width, that a
// result nobody reads still gets one (live at its op only), and that an input
// permutation's gather scratch (the input's width) is live during its op only.
// 4 tokens: %s parts 4x64x4 = 1024, 512, 512 bytes; %q's gather 4x32x4 = 512.
// CHECK-LABEL: module attributes
// CHECK-SAME: num_buffers = 7 : i64
module attributes {qlc.model = {num_layers = 1 : i64}} {
  // CHECK-LABEL: func.func @forward
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x128xf32> {
    %e = qlc.weight "emb" : tensor<128x128xf32>
    %x = qlc.embedding %tokens, %e : (tensor<?xi32>, tensor<128x128xf32>) -> tensor<?x128xf32>
    // CHECK: qlc.split {{.*}} {qlc.buffer = [{bytes = 1024 : i64, offset = {{[0-9]+}} : i64}, {bytes = 512 : i64, offset = {{[0-9]+}} : i64}, {bytes = 512 : i64, offset = {{[0-9]+}} : i64}]}
    %s:3 = qlc.split %x : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
    %qw = qlc.weight "q.qweight" : tensor<128x16xui8>
    %qs = qlc.weight "q.scales" : tensor<128x1xf16>
    %qp = qlc.weight "q.perm" : tensor<32xi32>
    // CHECK: qlc.quantized_linear
    // CHECK-SAME: qlc.scratch = {bytes = 512 : i64, offset = {{[0-9]+}} : i64}
    %q = qlc.quantized_linear %s#1, %qw, %qs perm %qp {bits = 4 : i64, format = "int", group_size = 32 : i64, in_features = 32 : i64, out_features = 128 : i64, symmetric = true} : (tensor<?x32xf32>, tensor<128x16xui8>, tensor<128x1xf16>, tensor<32xi32>) -> tensor<?x128xf32>
    %l = qlc.logits %q, %e : (tensor<?x128xf32>, tensor<128x128xf32>) -> tensor<?x128xf32>
    return %l : tensor<?x128xf32>
  }
}

// -----

// Tests that a module that already has a plan is planned again (here for 4 tokens
// instead of 1): the old sizes and summary are replaced (the embedding and the logits'
// scratch, 256 bytes each, both live at the logits).
// CHECK-LABEL: module attributes
// CHECK-SAME: qlc.buffers = {alignment = 64 : i64, arena_bytes = 512 : i64, max_tokens = 4 : i64, num_buffers = 2 : i64, peak_bytes = 512 : i64}
module attributes {qlc.buffers = {alignment = 64 : i64, arena_bytes = 64 : i64, max_tokens = 1 : i64, num_buffers = 1 : i64, peak_bytes = 64 : i64}} {
  // CHECK-LABEL: func.func @forward
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    // CHECK: qlc.embedding {{.*}} {qlc.buffer = [{bytes = 256 : i64, offset = 0 : i64}]}
    %x = qlc.embedding %tokens, %e {qlc.buffer = [{bytes = 64 : i64, offset = 0 : i64}]} : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %l = qlc.logits %x, %e : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %l : tensor<?x16xf32>
  }
}

// -----

// Tests that a module without @forward is left alone (nothing to plan).
// CHECK-LABEL: func.func @not_forward
// CHECK-NOT: qlc.buffer
func.func @not_forward(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %s = qlc.add %x, %x : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  return %s : tensor<?x16xf32>
}
