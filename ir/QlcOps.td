//===- QlcOps.td - qlc dialect operations -----------------*- tablegen -*-===//
#ifndef QLC_OPS_TD
#define QLC_OPS_TD

include "ir/QlcDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"

// Activations: float32 2-D tensors with a dynamic token dimension.
def Qlc_Activation : 2DTensorOf<[F32]>;
def Qlc_TokenIds : 1DTensorOf<[I32]>;
// Weights: static-shaped float tensors in the source (or converted) dtype, or the
// integer tensors of packed quantized weights.
def Qlc_WeightTensor : RankedTensorOf<[F32, F16, BF16]>;
def Qlc_AnyWeightTensor : RankedTensorOf<[F32, F16, BF16, UI8, I8, I32]>;

def Qlc_WeightOp : Qlc_Op<"weight", [Pure]> {
  let summary = "A named tensor of the weight store";
  let description = [{
    Refers to the tensor `tensor_name` in the compiler's weight store. The result type gives
    its shape and element type; the data itself never appears in the IR.

    Example:
    ```mlir
    %w = qlc.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$tensor_name);
  let results = (outs Qlc_AnyWeightTensor:$result);
  let assemblyFormat = "$tensor_name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Qlc_EmbeddingOp : Qlc_Op<"embedding", [Pure]> {
  let summary = "Gathers rows of an embedding table";
  let description = [{
    For every token id in `ids`, copies the row of `table` ([vocab, hidden]) into the
    result, converted to f32. Ids outside [0, vocab) are rejected by the runtime.

    Example:
    ```mlir
    %h = qlc.embedding %ids, %table : (tensor<?xi32>, tensor<512x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Qlc_TokenIds:$ids, Qlc_WeightTensor:$table);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$ids `,` $table attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_RmsNormOp : Qlc_Op<"rms_norm", [Pure]> {
  let summary = "Root-mean-square normalization with a learned scale";
  let description = [{
    `result[t, i] = x[t, i] / sqrt(mean_i(x[t, :]^2) + epsilon) * weight[i]`, computed
    in f32 as Hugging Face's LlamaRMSNorm does.

    Example:
    ```mlir
    %n = qlc.rms_norm %h, %w {epsilon = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$x, Qlc_WeightTensor:$weight, F64Attr:$epsilon);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$x `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_LinearOp : Qlc_Op<"linear", [Pure]> {
  let summary = "Dense projection x * W^T (+ bias)";
  let description = [{
    `weight` has the Hugging Face layout [out_features, in_features]; the optional
    `bias` has [out_features]. The product is accumulated in f32.

    Example:
    ```mlir
    %q = qlc.linear %n, %wq, %bq : (tensor<?x64xf32>, tensor<96x64xf16>, tensor<96xf16>) -> tensor<?x96xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$x, Qlc_WeightTensor:$weight,
                       Optional<Qlc_WeightTensor>:$bias);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat =
      "$x `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_QuantizedLinearOp : Qlc_Op<"quantized_linear",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "Projection by a weight stored quantized, dequantized in the kernel";
  let description = [{
    `x * dequant(W)^T (+ bias)` for a weight of `out_features` x `in_features` that is
    kept packed in memory; kernels dequantize it in registers.

    `format = "int"`: round-to-nearest integers of `bits` (4 or 8) in groups of
    `group_size` consecutive input features of each row (the last group of a row may be
    shorter). `qweight` holds the integers unsigned, row by row: one byte each for 8
    bits, two per byte for 4 bits (low nibble first, rows padded to whole bytes),
    shape [out, ceil(in*bits/8)]. `scales` are [out, groups]; the weight is
    `(q - zero) * scale`, with `zeros` [out, groups] of ui8, or, when `symmetric`,
    the constant 2^(bits-1).

    `format = "nf4"`: bitsandbytes' 4-bit NormalFloat. The weight is flattened and
    split in blocks of `group_size` (64 by default) elements; each element is a code
    book index (two per byte, high nibble first, as bitsandbytes packs) times its
    block's absmax. `scales` holds the absmax in f32 [blocks], or, with double
    quantization, in ui8 codes of bitsandbytes' dynamic 8-bit map with one f32 scale
    per 256 blocks in `scales2` plus the float `absmax_offset` added back.

    `perm` (int format only): an input permutation, i32 [in_features]. The op then
    computes `x[:, perm] * dequant(W)^T`: the columns of W are stored in permuted order,
    column j holding input feature perm[j], so that groups of `group_size` consecutive
    stored columns are contiguous. This is how a GPTQ checkpoint quantized with act-order
    (desc_act) and a g_idx that is not the identity grouping is represented exactly.
    `perm` must be a permutation of [0, in_features); the verifier checks its shape and
    type, the importer its values.

    Example:
    ```mlir
    %y = qlc.quantized_linear %x, %q, %s, %z {format = "int", bits = 4 : i64,
         group_size = 32 : i64, in_features = 64 : i64, out_features = 96 : i64}
         : (tensor<?x64xf32>, tensor<96x32xui8>, tensor<96x2xf16>, tensor<96x2xui8>) -> tensor<?x96xf32>
    %p = qlc.quantized_linear %x, %q, %s zeros %z perm %perm {format = "int", bits = 4 : i64,
         group_size = 32 : i64, in_features = 64 : i64, out_features = 96 : i64}
         : (tensor<?x64xf32>, tensor<96x32xui8>, tensor<96x2xf16>, tensor<96x2xui8>, tensor<64xi32>) -> tensor<?x96xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$x, Qlc_AnyWeightTensor:$qweight,
                       Qlc_AnyWeightTensor:$scales,
                       Optional<Qlc_AnyWeightTensor>:$zeros,
                       Optional<Qlc_AnyWeightTensor>:$scales2,
                       Optional<Qlc_WeightTensor>:$bias,
                       Optional<Qlc_AnyWeightTensor>:$perm,
                       StrAttr:$format, I64Attr:$bits, I64Attr:$group_size,
                       I64Attr:$in_features, I64Attr:$out_features,
                       DefaultValuedAttr<BoolAttr, "false">:$symmetric,
                       DefaultValuedAttr<F64Attr, "0.0">:$absmax_offset,
                       OptionalAttr<StrAttr>:$source);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = [{
    $x `,` $qweight `,` $scales (`zeros` $zeros^)? (`scales2` $scales2^)? (`bias` $bias^)?
    (`perm` $perm^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Qlc_RopeOp : Qlc_Op<"rope", [Pure]> {
  let summary = "Rotary position embedding (rotate-half convention)";
  let description = [{
    Rotates each of the `x`'s heads of `head_dim` channels by the angles
    `position * inv_freq[i]`, pairing channel i with i + head_dim/2 as Hugging Face's
    `rotate_half` does. `inv_freq[i] = theta^(-2i/head_dim)`, then adjusted by
    `scaling`: "none"; "linear" divides by `factor`; "llama3" applies Llama 3.1's
    wavelength-dependent interpolation with `factor`, `low_freq_factor`,
    `high_freq_factor` and `original_max_position`.

    Example:
    ```mlir
    %r = qlc.rope %q, %pos {head_dim = 16 : i64, theta = 1.0e+04 : f64, scaling = "none"}
         : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$x, Qlc_TokenIds:$positions,
                       I64Attr:$head_dim, F64Attr:$theta, StrAttr:$scaling,
                       DefaultValuedAttr<F64Attr, "1.0">:$factor,
                       DefaultValuedAttr<F64Attr, "1.0">:$low_freq_factor,
                       DefaultValuedAttr<F64Attr, "4.0">:$high_freq_factor,
                       DefaultValuedAttr<I64Attr, "8192">:$original_max_position);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$x `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The rotation's parameters, as ir/Rope.h computes frequencies from them.
    ::qlc::RopeParams getParams();
  }];
}

def Qlc_AttentionOp : Qlc_Op<"attention",
    [DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "Causal grouped-query attention over the KV cache of one layer";
  let description = [{
    Appends this step's keys `k` and values `v` to the KV cache of layer `layer` at
    their `positions`, then lets every query of `q` attend causally to all cached
    positions up to its own (and, with `sliding_window`, only to the last
    `sliding_window` of them). `num_heads` query heads share `num_kv_heads` key/value
    heads (grouped-query attention). Scores are scaled by `scale`, normally
    1/sqrt(head_dim). Which sequence each token belongs to is decided at run time.

    `kv_dtype` is how the cache stores keys and values: "f32" (exact, the default),
    "f16", or "int8": per token and KV head, 8-bit codes with an f16 scale and zero
    computed from that head's min and max when the token is appended
    (`qlc-quantize-kv`). Queries, scores and results stay f32.

    With `rope_theta` set, q and k arrive unrotated and the op applies the rotary
    embedding of `qlc.rope` itself, at `positions`, with head_dim channels and the
    `rope_*` parameters (those of `qlc.rope` without the prefix): to each query
    head as it is loaded and to each key head before it is stored in the cache
    (`qlc-fuse-rope`). Without `rope_theta` no `rope_*` attribute may be set.

    With `qkv_packed`, q, k and v are one value: the `[tokens, (num_heads + 2 *
    num_kv_heads) * head_dim]` output of the fused q/k/v projection, whose columns
    from 0, num_heads * head_dim and (num_heads + num_kv_heads) * head_dim are q, k
    and v; the kernels read them in place (`qlc-fold-qkv-split`).

    Example:
    ```mlir
    %o = qlc.attention %q, %k, %v, %pos {layer = 0 : i64, num_heads = 8 : i64,
         num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64}
         : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$q, Qlc_Activation:$k, Qlc_Activation:$v,
                       Qlc_TokenIds:$positions,
                       I64Attr:$layer, I64Attr:$num_heads, I64Attr:$num_kv_heads,
                       I64Attr:$head_dim, F64Attr:$scale,
                       OptionalAttr<I64Attr>:$sliding_window,
                       DefaultValuedAttr<StrAttr, "\"f32\"">:$kv_dtype,
                       OptionalAttr<F64Attr>:$rope_theta,
                       OptionalAttr<StrAttr>:$rope_scaling,
                       OptionalAttr<F64Attr>:$rope_factor,
                       OptionalAttr<F64Attr>:$rope_low_freq_factor,
                       OptionalAttr<F64Attr>:$rope_high_freq_factor,
                       OptionalAttr<I64Attr>:$rope_original_max_position,
                       UnitAttr:$qkv_packed);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat =
      "$q `,` $k `,` $v `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The rotary embedding the op applies to q and k (rope_theta set), if any; unset
    /// rope_* parameters take qlc.rope's defaults.
    std::optional<::qlc::RopeParams> getRope();
    /// Makes the op apply the rotation `p` (the attributes qlc-fuse-rope sets).
    void setRope(const ::qlc::RopeParams &p);
  }];
}

def Qlc_SiluMulOp : Qlc_Op<"silu_mul", [Pure]> {
  let summary = "SwiGLU activation: silu(gate) * up";
  let description = [{
    Elementwise `gate / (1 + exp(-gate)) * up`.

    Example:
    ```mlir
    %a = qlc.silu_mul %g, %u : (tensor<?x172xf32>, tensor<?x172xf32>) -> tensor<?x172xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$gate, Qlc_Activation:$up);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_SwiGluOp : Qlc_Op<"swiglu", [Pure]> {
  let summary = "SwiGLU activation on a fused [gate | up] projection";
  let description = [{
    The epilogue of a fused gate/up projection (`qlc-fuse-gate-up`): `x` holds the
    gate in its first half of features and the up projection in the second, and
    `result[t, i] = silu(x[t, i]) * x[t, I + i]` with `I` the result width, computed as
    `qlc.silu_mul` computes it.

    Example:
    ```mlir
    %a = qlc.swiglu %gu : (tensor<?x344xf32>) -> tensor<?x172xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$x);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_SplitOp : Qlc_Op<"split", [Pure]> {
  let summary = "Splits the features of an activation into consecutive column ranges";
  let description = [{
    Result `j` holds features `[o_j, o_j + w_j)` of `x`, where `w_j` is its width and
    `o_j` the sum of the widths before it; the widths add up to the width of `x`. It
    separates the outputs of a fused projection (`qlc-fuse-qkv`).

    Example:
    ```mlir
    %q, %k, %v = qlc.split %qkv : (tensor<?x128xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
    ```
  }];
  let arguments = (ins Qlc_Activation:$x);
  let results = (outs Variadic<Qlc_Activation>:$results);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_AddRmsNormOp : Qlc_Op<"add_rms_norm", [Pure]> {
  let summary = "Residual add followed by RMSNorm, in one pass over the rows";
  let description = [{
    `sum = lhs + rhs` and `result = rms_norm(sum, weight, epsilon)`, both results
    computed exactly as `qlc.add` then `qlc.rms_norm` compute them; the residual
    stream continues from `sum` (`qlc-fuse-norm-residual`).

    Example:
    ```mlir
    %s, %n = qlc.add_rms_norm %h, %o, %w {epsilon = 1.0e-05 : f64}
             : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins Qlc_Activation:$lhs, Qlc_Activation:$rhs, Qlc_WeightTensor:$weight,
                       F64Attr:$epsilon);
  let results = (outs Qlc_Activation:$sum, Qlc_Activation:$result);
  let assemblyFormat =
      "$lhs `,` $rhs `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_AddOp : Qlc_Op<"add", [Pure, Commutative]> {
  let summary = "Elementwise residual add";
  let description = [{
    Example:
    ```mlir
    %s = qlc.add %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$lhs, Qlc_Activation:$rhs);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Qlc_LogitsOp : Qlc_Op<"logits", [Pure]> {
  let summary = "Final projection to vocabulary logits";
  let description = [{
    `x * weight^T` with `weight` of shape [vocab, hidden] (the lm_head, or the
    embedding table when embeddings are tied). At run time only the rows the caller
    asks for are computed: the last token of each sequence when generating, every
    token when dumping logits.

    Example:
    ```mlir
    %l = qlc.logits %n, %emb : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins Qlc_Activation:$x, Qlc_WeightTensor:$weight);
  let results = (outs Qlc_Activation:$result);
  let assemblyFormat = "$x `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // QLC_OPS_TD
