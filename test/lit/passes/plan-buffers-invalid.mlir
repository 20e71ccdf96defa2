// RUN: qlc-opt %s -split-input-file --qlc-plan-buffers="max-tokens=4 verify=true" -verify-diagnostics

// Tests that a plan where two values live at the same time overlap is refused: %a is
// read by the add, so %b may not take its bytes.
module attributes {qlc.buffers = {alignment = 64 : i64, arena_bytes = 512 : i64, max_tokens = 4 : i64, num_buffers = 3 : i64, peak_bytes = 768 : i64}} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    %a = qlc.embedding %tokens, %e {qlc.buffer = [{bytes = 256 : i64, offset = 0 : i64}]} : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    // expected-error @+1 {{buffer [0, +256) overlaps the buffer [0, +256) of 'qlc.embedding', which is live at the same time}}
    %b = qlc.linear %a, %e {qlc.buffer = [{bytes = 256 : i64, offset = 0 : i64}]} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %c = qlc.add %a, %b {qlc.buffer = [{bytes = 256 : i64, offset = 256 : i64}]} : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    return %c : tensor<?x16xf32>
  }
}

// -----

// Tests that an activation without a buffer (an op added after planning) is refused.
module attributes {qlc.buffers = {alignment = 64 : i64, arena_bytes = 512 : i64, max_tokens = 4 : i64, num_buffers = 2 : i64, peak_bytes = 512 : i64}} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    %a = qlc.embedding %tokens, %e {qlc.buffer = [{bytes = 256 : i64, offset = 0 : i64}]} : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    // expected-error @+1 {{has no qlc.buffer {offset, bytes} for its result #0 in the buffer plan}}
    %b = qlc.linear %a, %e : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %b : tensor<?x16xf32>
  }
}

// -----

// Tests that a buffer too small for max-tokens rows, or reaching past the arena, is
// refused.
module attributes {qlc.buffers = {alignment = 64 : i64, arena_bytes = 256 : i64, max_tokens = 4 : i64, num_buffers = 1 : i64, peak_bytes = 256 : i64}} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    // expected-error @+1 {{buffer [64, +256) must be aligned to 64, hold 256 bytes and lie in the arena of 256 bytes}}
    %a = qlc.embedding %tokens, %e {qlc.buffer = [{bytes = 256 : i64, offset = 64 : i64}]} : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %a : tensor<?x16xf32>
  }
}

// -----

// Tests that a summary that disagrees with the buffers (peak_bytes) is refused.
// expected-error @+1 {{the qlc.buffers summary (peak_bytes 128, num_buffers 1) differs from its buffers (peak_bytes 256, num_buffers 1)}}
module attributes {qlc.buffers = {alignment = 64 : i64, arena_bytes = 256 : i64, max_tokens = 4 : i64, num_buffers = 1 : i64, peak_bytes = 128 : i64}} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    %a = qlc.embedding %tokens, %e {qlc.buffer = [{bytes = 256 : i64, offset = 0 : i64}]} : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %a : tensor<?x16xf32>
  }
}

// -----

// Tests that a plan made for another max-tokens is refused.
// expected-error @+1 {{the qlc.buffers plan is for max_tokens 8, not 4; run qlc-plan-buffers with max-tokens=4}}
module attributes {qlc.buffers = {alignment = 64 : i64, arena_bytes = 512 : i64, max_tokens = 8 : i64, num_buffers = 1 : i64, peak_bytes = 512 : i64}} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    %a = qlc.embedding %tokens, %e {qlc.buffer = [{bytes = 512 : i64, offset = 0 : i64}]} : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %a : tensor<?x16xf32>
  }
}

// -----

// Tests that a module with @forward but no plan at all is refused by the check.
// expected-error @+1 {{the module has no qlc.buffers plan}}
module {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = qlc.weight "emb" : tensor<16x16xf32>
    %a = qlc.embedding %tokens, %e : (tensor<?xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %a : tensor<?x16xf32>
  }
}
