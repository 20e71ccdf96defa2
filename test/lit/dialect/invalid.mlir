// RUN: qlc-opt %s -split-input-file -verify-diagnostics

// Tests that a weight needs a name.
func.func @weight_name() {
  // expected-error @+1 {{weight name must not be empty}}
  %w = qlc.weight "" : tensor<4x4xf32>
  return
}

// -----

// Tests that weights must have static shapes.
func.func @weight_dynamic() {
  // expected-error @+1 {{weight shape must be static}}
  %w = qlc.weight "w" : tensor<?x4xf32>
  return
}

// -----

// Tests that weights of other element types are rejected by the type constraint.
func.func @weight_int() {
  // expected-error @+1 {{must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type or 8-bit unsigned integer or 8-bit signless integer or 32-bit signless integer values}}
  %w = qlc.weight "w" : tensor<4x4xi1>
  return
}

// -----

// Tests that linear checks in_features against the input width.
func.func @linear_k(%x: tensor<?x64xf32>) {
  %w = qlc.weight "w" : tensor<32x48xf32>
  // expected-error @+1 {{weight in_features 48 differs from input width 64}}
  %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<32x48xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that linear checks its result width against out_features.
func.func @linear_n(%x: tensor<?x64xf32>) {
  %w = qlc.weight "w" : tensor<32x64xf32>
  // expected-error @+1 {{result width 16 differs from weight out_features 32}}
  %y = qlc.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x16xf32>
  return
}

// -----

// Tests that a bias must match out_features.
func.func @linear_bias(%x: tensor<?x64xf32>) {
  %w = qlc.weight "w" : tensor<32x64xf32>
  %b = qlc.weight "b" : tensor<64xf32>
  // expected-error @+1 {{bias must be 1-D of out_features 32}}
  %y = qlc.linear %x, %w, %b : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<64xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that mismatched static token counts are caught.
func.func @linear_tokens(%x: tensor<3x64xf32>) {
  %w = qlc.weight "w" : tensor<32x64xf32>
  // expected-error @+1 {{token dimensions differ: 3 vs 4}}
  %y = qlc.linear %x, %w : (tensor<3x64xf32>, tensor<32x64xf32>) -> tensor<4x32xf32>
  return
}

// -----

// Tests that activations need a static feature dimension.
func.func @dynamic_width(%x: tensor<?x?xf32>) {
  %w = qlc.weight "w" : tensor<8xf32>
  // expected-error @+1 {{input must have a static feature dimension}}
  %y = qlc.rms_norm %x, %w {epsilon = 1.0e-05 : f64} : (tensor<?x?xf32>, tensor<8xf32>) -> tensor<?x?xf32>
  return
}

// -----

// Tests that rms_norm's weight matches the width.
func.func @rms_norm_weight(%x: tensor<?x64xf32>) {
  %w = qlc.weight "w" : tensor<32xf32>
  // expected-error @+1 {{weight must be 1-D of the input width 64}}
  %y = qlc.rms_norm %x, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that epsilon must be positive.
func.func @rms_norm_eps(%x: tensor<?x64xf32>) {
  %w = qlc.weight "w" : tensor<64xf32>
  // expected-error @+1 {{epsilon must be positive}}
  %y = qlc.rms_norm %x, %w {epsilon = 0.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that rope's head_dim must be even.
func.func @rope_odd(%x: tensor<?x63xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{head_dim must be positive and even, got 7}}
  %y = qlc.rope %x, %p {head_dim = 7 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x63xf32>, tensor<?xi32>) -> tensor<?x63xf32>
  return
}

// -----

// Tests that rope's input width is a multiple of head_dim.
func.func @rope_width(%x: tensor<?x60xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{input width 60 is not a multiple of head_dim 8}}
  %y = qlc.rope %x, %p {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "none"} : (tensor<?x60xf32>, tensor<?xi32>) -> tensor<?x60xf32>
  return
}

// -----

// Tests that an unknown rope scaling is rejected.
func.func @rope_scaling(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{unknown rope scaling 'yarn'}}
  %y = qlc.rope %x, %p {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "yarn"} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that llama3 scaling needs ordered frequency factors.
func.func @rope_llama3(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{llama3 scaling needs high_freq_factor > low_freq_factor}}
  %y = qlc.rope %x, %p {head_dim = 8 : i64, theta = 1.0e+04 : f64, scaling = "llama3", low_freq_factor = 4.0 : f64, high_freq_factor = 1.0 : f64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that query heads must be a multiple of key/value heads.
func.func @attention_gqa(%q: tensor<?x48xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{num_heads 6 is not a multiple of num_kv_heads 4}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 6 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x48xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x48xf32>
  return
}

// -----

// Tests that q's width must be num_heads * head_dim.
func.func @attention_q(%q: tensor<?x48xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{q width 48 differs from num_heads*head_dim 64}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x48xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that k and v widths must be num_kv_heads * head_dim.
func.func @attention_kv(%q: tensor<?x64xf32>, %k: tensor<?x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{k and v width must be num_kv_heads*head_dim 32}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64} : (tensor<?x64xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that packed q/k/v must be one value.
func.func @attention_packed_values(%x: tensor<?x128xf32>, %y: tensor<?x128xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{with qkv_packed, q, k and v must be the same value}}
  %a = qlc.attention %x, %y, %x, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, qkv_packed} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that packed q/k/v must be (num_heads + 2 * num_kv_heads) * head_dim wide.
func.func @attention_packed_width(%x: tensor<?x96xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{with qkv_packed, the q/k/v width 96 differs from (num_heads+2*num_kv_heads)*head_dim 128}}
  %a = qlc.attention %x, %x, %x, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, qkv_packed} : (tensor<?x96xf32>, tensor<?x96xf32>, tensor<?x96xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that a sliding window must be positive.
func.func @attention_window(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{sliding_window must be positive}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, sliding_window = 0 : i64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that the KV cache dtype must be one the kernels store.
func.func @attention_kv_dtype(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{unknown kv_dtype 'int4' (expected f32, f16 or int8)}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, kv_dtype = "int4"} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that silu_mul's operands must agree.
func.func @silu_mul(%g: tensor<?x64xf32>, %u: tensor<?x32xf32>) {
  // expected-error @+1 {{gate, up and result must have the same type}}
  %a = qlc.silu_mul %g, %u : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that swiglu's input must be twice as wide as its result.
func.func @swiglu(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{input width 64 must be twice the result width 16}}
  %a = qlc.swiglu %x : (tensor<?x64xf32>) -> tensor<?x16xf32>
  return
}

// -----

// Tests that split's result widths must add up to its input width.
func.func @split_widths(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{result widths add up to 48, not the input width 64}}
  %a, %b = qlc.split %x : (tensor<?x64xf32>) -> (tensor<?x32xf32>, tensor<?x16xf32>)
  return
}

// -----

// Tests that split needs two results at least.
func.func @split_one(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{needs at least two results, got 1}}
  %a = qlc.split %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that add_rms_norm's weight must have the input width.
func.func @add_rms_norm_weight(%a: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{weight must be 1-D of the input width 64}}
  %s, %n = qlc.add_rms_norm %a, %a, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<32xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

// Tests that add's operands must agree.
func.func @add(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>) {
  // expected-error @+1 {{operands and result must have the same type}}
  %s = qlc.add %a, %b : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that the logits weight must be [vocab, hidden].
func.func @logits_weight(%x: tensor<?x64xf32>) {
  %w = qlc.weight "lm_head.weight" : tensor<512x32xf32>
  // expected-error @+1 {{weight must be [vocab, 64]}}
  %l = qlc.logits %x, %w : (tensor<?x64xf32>, tensor<512x32xf32>) -> tensor<?x512xf32>
  return
}

// -----

// Tests that the logits width equals the vocabulary size.
func.func @logits_vocab(%x: tensor<?x64xf32>) {
  %w = qlc.weight "lm_head.weight" : tensor<512x64xf32>
  // expected-error @+1 {{result width must equal the vocabulary size 512}}
  %l = qlc.logits %x, %w : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x500xf32>
  return
}

// -----

// Tests that the embedding result width must equal the table width.
func.func @embedding(%ids: tensor<?xi32>) {
  %t = qlc.weight "emb" : tensor<512x64xf32>
  // expected-error @+1 {{result width 32 differs from table width 64}}
  %h = qlc.embedding %ids, %t : (tensor<?xi32>, tensor<512x64xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that an asymmetric int scheme needs zero points.
func.func @qlinear_zeros(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<8x32xui8>
  %s = qlc.weight "s" : tensor<8x2xf16>
  // expected-error @+1 {{an asymmetric scheme needs zeros}}
  %y = qlc.quantized_linear %x, %q, %s {format = "int", bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, out_features = 8 : i64} : (tensor<?x64xf32>, tensor<8x32xui8>, tensor<8x2xf16>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that the packed weight's shape follows bits and in_features.
func.func @qlinear_shape(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<8x64xui8>
  %s = qlc.weight "s" : tensor<8x2xf16>
  // expected-error @+1 {{qweight must be [8, 32]}}
  %y = qlc.quantized_linear %x, %q, %s {format = "int", bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, out_features = 8 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<8x64xui8>, tensor<8x2xf16>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that the scales follow the number of groups (a shorter last group counts).
func.func @qlinear_groups(%x: tensor<?x72xf32>) {
  %q = qlc.weight "q" : tensor<8x36xui8>
  %s = qlc.weight "s" : tensor<8x2xf16>
  // expected-error @+1 {{scales must be float [8, 3]}}
  %y = qlc.quantized_linear %x, %q, %s {format = "int", bits = 4 : i64, group_size = 32 : i64, in_features = 72 : i64, out_features = 8 : i64, symmetric = true} : (tensor<?x72xf32>, tensor<8x36xui8>, tensor<8x2xf16>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that unknown formats and bit widths are refused.
func.func @qlinear_format(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<8x32xui8>
  %s = qlc.weight "s" : tensor<8x2xf16>
  // expected-error @+1 {{unknown format 'fp4' (expected int or nf4)}}
  %y = qlc.quantized_linear %x, %q, %s {format = "fp4", bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, out_features = 8 : i64} : (tensor<?x64xf32>, tensor<8x32xui8>, tensor<8x2xf16>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that nf4 blocks cover the flattened weight.
func.func @nf4_blocks(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<256xui8>
  %s = qlc.weight "s" : tensor<4xf32>
  // expected-error @+1 {{nf4 scales must be [8]}}
  %y = qlc.quantized_linear %x, %q, %s {format = "nf4", bits = 4 : i64, group_size = 64 : i64, in_features = 64 : i64, out_features = 8 : i64} : (tensor<?x64xf32>, tensor<256xui8>, tensor<4xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that an input permutation must name every input feature once: i32 [in_features].
func.func @qlinear_perm_shape(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<8x32xui8>
  %s = qlc.weight "s" : tensor<8x2xf16>
  %p = qlc.weight "p" : tensor<32xi32>
  // expected-error @+1 {{perm must be i32 [64] (one input feature per column)}}
  %y = qlc.quantized_linear %x, %q, %s perm %p {format = "int", bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, out_features = 8 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<8x32xui8>, tensor<8x2xf16>, tensor<32xi32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that an input permutation of another element type is refused.
func.func @qlinear_perm_type(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<8x32xui8>
  %s = qlc.weight "s" : tensor<8x2xf16>
  %p = qlc.weight "p" : tensor<64xf32>
  // expected-error @+1 {{perm must be i32 [64]}}
  %y = qlc.quantized_linear %x, %q, %s perm %p {format = "int", bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, out_features = 8 : i64, symmetric = true} : (tensor<?x64xf32>, tensor<8x32xui8>, tensor<8x2xf16>, tensor<64xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that nf4 takes no input permutation.
func.func @nf4_perm(%x: tensor<?x64xf32>) {
  %q = qlc.weight "q" : tensor<256xui8>
  %s = qlc.weight "s" : tensor<8xf32>
  %p = qlc.weight "p" : tensor<64xi32>
  // expected-error @+1 {{nf4 takes no input permutation (perm is for the int format)}}
  %y = qlc.quantized_linear %x, %q, %s perm %p {format = "nf4", bits = 4 : i64, group_size = 64 : i64, in_features = 64 : i64, out_features = 8 : i64} : (tensor<?x64xf32>, tensor<256xui8>, tensor<8xf32>, tensor<64xi32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that rope_* attributes of an attention need rope_theta (the fused rope).
func.func @attention_rope_no_theta(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope_* attributes need rope_theta (the fused rotary embedding)}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, rope_scaling = "none"} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that a fused rope is checked like qlc.rope: a positive theta.
func.func @attention_rope_theta(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope_theta and rope_factor must be positive}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, rope_theta = -1.0 : f64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that a fused rope's scaling must be known.
func.func @attention_rope_scaling(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{unknown rope_scaling 'yarn'}}
  %a = qlc.attention %q, %k, %k, %p {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35 : f64, rope_theta = 1.0e+04 : f64, rope_scaling = "yarn"} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}
