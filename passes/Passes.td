//===- Passes.td - qlc passes ------------------------------*- tablegen -*-===//
#ifndef QLC_PASSES_TD
#define QLC_PASSES_TD

include "mlir/Pass/PassBase.td"

def CastWeightsPass : Pass<"qlc-cast-weights", "mlir::ModuleOp"> {
  let summary = "Converts matrix weights to one floating-point storage type";
  let description = [{
    Rewrites the result type of every 2-D `qlc.weight` (projections, embedding, lm_head)
    to the element type given by `dtype` (f32, f16 or bf16); the artifact writer then
    converts the stored data, rounding to nearest even. 1-D weights (norm scales,
    biases) are left alone: kernels read them in f32 whatever their source type, and
    so are integer matrices (packed quantized data). This is what `qlc compile
    --quant f16|bf16|f32` runs; with `only-narrow`, only matrices wider than `dtype`
    are cast (f32 to f16, never bf16 to f16), which is how the embedding and the logits
    projection are stored after weight quantization (`--embedding-dtype`).
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"f16\"",
           "Storage type of matrix weights: f32, f16 or bf16">,
    Option<"onlyNarrow", "only-narrow", "bool", /*default=*/"false",
           "Cast only matrices whose float type is wider than dtype">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def QuantizeRtnPass : Pass<"qlc-quantize-rtn", "mlir::ModuleOp"> {
  let summary = "Round-to-nearest integer quantization of the projections' weights";
  let description = [{
    Rewrites every `qlc.linear` into a `qlc.quantized_linear` of format "int": each
    row of the weight is split in groups of `group-size` input features (the last group
    may be shorter; 0 means one group per row) and rounded to `bits`-bit integers with
    an f16 scale and, unless `symmetric`, a ui8 zero point per group, following
    AutoGPTQ's conventions (the range always includes 0; symmetric zero is
    2^(bits-1)). With a weight store attached (qlc compile) the packed tensors are
    computed and added to it; the embedding and the logits projection are not touched.
  }];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "4 or 8">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "Input features per group; 0: per channel">,
    Option<"symmetric", "symmetric", "bool", /*default=*/"false",
           "No zero points: zero is 2^(bits-1)">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def QuantizeGptqPass : Pass<"qlc-quantize-gptq", "mlir::ModuleOp"> {
  let summary = "GPTQ quantization of the projections' weights, calibrated on sample text";
  let description = [{
    Rewrites every `qlc.linear` into a `qlc.quantized_linear` of format "int" (the
    layout, scales and zero points of `qlc-quantize-rtn`), choosing the integers with
    GPTQ (passes/Gptq.h): the float model runs on the calibration samples attached to
    the context (`qlc compile --calib`), op by op on the CPU; at each linear the
    Hessian `sum x^T x` of its input is accumulated, the weight is quantized, and the
    linear is computed with the quantized weight, so every later linear is calibrated
    on the outputs of the already-quantized ones (sequential over blocks and, inside a
    block, true-sequential). Linears reading the same input share its Hessian.

    `act-order` quantizes columns by decreasing Hessian diagonal; with groups smaller
    than a row it needs `static-groups` (scales fixed up front from the unmodified
    weight), since the op keeps per-group scales in natural column order and has no
    g_idx. Progress and the time of each stage go to stderr.

    With no weight provider attached (qlc-opt, lit) only the IR is rewritten; with one
    but no calibration samples the pass fails. Tensors are named
    `<weight>.gptq<bits><a|s>g<group>[o]` (o: act-order).
  }];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "4 or 8">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "Input features per group; 0: per channel">,
    Option<"symmetric", "symmetric", "bool", /*default=*/"false",
           "No zero points: zero is 2^(bits-1)">,
    Option<"dampPercent", "damp-percent", "double", /*default=*/"0.01",
           "Fraction of the mean Hessian diagonal added to the diagonal">,
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Columns per lazy batch update">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "Quantize columns by decreasing Hessian diagonal (desc_act)">,
    Option<"staticGroups", "static-groups", "bool", /*default=*/"false",
           "Fix every group's scale and zero before GPTQ runs">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def QuantizeAwqPass : Pass<"qlc-quantize-awq", "mlir::ModuleOp"> {
  let summary = "AWQ quantization of the projections' weights, calibrated on sample text";
  let description = [{
    Rewrites every `qlc.linear` into a `qlc.quantized_linear` of format "int" (the
    layout, scales and zero points of `qlc-quantize-rtn`) after AWQ's searches
    (passes/Awq.h). The float model runs on the calibration samples attached to the
    context (`qlc compile --calib`); for each block (decoder layer), each group of
    linears reading one input gets the per-channel scale search s = mean|x|^alpha over
    `grid` values of alpha, judged by the group's output error over all calibration
    tokens; the weights are multiplied by s and 1/s is folded into the op producing
    the input: the rms_norm's weight (a new f32 tensor `<weight>.awq`), or the rows
    (and bias) of the preceding linear (up_proj before down_proj; v_proj before
    o_proj when there are as many KV heads as query heads). Inputs with neither are
    not scaled. Then, unless `clip=false`, each weight's (row, group) ranges are
    clipped to the best of absmax * (1 - i/grid), i < grid/2 (not for q and k, as in
    AutoAWQ), and the weights are quantized round-to-nearest in groups with zero
    points. The next block is calibrated on the float block's outputs, as in AutoAWQ.

    With no weight provider attached (qlc-opt, lit) only the IR is rewritten; with one
    but no calibration samples the pass fails. Tensors are named
    `<weight>.awq<bits><a|s>g<group>`.
  }];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "4 or 8">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "Input features per group; 0: per channel">,
    Option<"symmetric", "symmetric", "bool", /*default=*/"false",
           "No zero points: zero is 2^(bits-1)">,
    Option<"grid", "grid", "int64_t", /*default=*/"20",
           "Values of alpha in the scale search; shrink steps are grid/2">,
    Option<"clip", "clip", "bool", /*default=*/"true", "Run the clipping search">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def QuantizeNf4Pass : Pass<"qlc-quantize-nf4", "mlir::ModuleOp"> {
  let summary = "bitsandbytes NF4 quantization of the projections' weights";
  let description = [{
    Rewrites every `qlc.linear` into a `qlc.quantized_linear` of format "nf4", as
    bitsandbytes' `quantize_4bit(quant_type="nf4")` stores it (QLoRA's 4-bit
    NormalFloat): the weight flattened in blocks of `block-size` elements (the last
    may be shorter), each element the nearest of the 16 NF4 values after division by
    its block's absmax, two codes per byte, high nibble first. With `double-quant`
    the f32 absmax are quantized again as QLoRA does (`compress_statistics=True`):
    their mean is subtracted and they become codes of bitsandbytes' dynamic 8-bit map
    with one f32 scale per 256 blocks; the mean is the op's `absmax_offset`. With a
    weight store attached (qlc compile) the packed tensors, named
    `<weight>.nf4b<block-size>[.dq].qweight/.absmax[/.absmax2]`, are computed bit for
    bit as bitsandbytes 0.50 does on the CPU; the embedding and the logits projection
    are not touched.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"64",
           "Elements per absmax block: 32, 64, ..., 4096 as bitsandbytes allows">,
    Option<"doubleQuant", "double-quant", "bool", /*default=*/"false",
           "Quantize the absmax too (8-bit dynamic map, blocks of 256)">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def QuantizeKvPass : Pass<"qlc-quantize-kv", "mlir::ModuleOp"> {
  let summary = "Chooses how the KV cache stores keys and values (f16 or int8)";
  let description = [{
    Sets `kv_dtype` on every `qlc.attention` and records the choice in the module's
    `qlc.kv_cache` attribute, the KV-cache plan: codegen checks that every attention
    agrees with it and writes the row size to the manifest, by which the runtime
    sizes the cache. "int8" quantizes online, per token and KV head: a head's values
    of a token become uint8 codes with an f16 scale and zero taken from their min and
    max when the token is appended; no calibration data is needed, and a prefill and
    a token-by-token decode store the same codes. "f16" rounds to IEEE half; "f32"
    keeps the exact cache.
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"int8\"", "f32, f16 or int8">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def PlanKvCachePass : Pass<"qlc-plan-kv-cache", "mlir::ModuleOp"> {
  let summary = "Plans the paged KV cache: page size, page count, dtype and layout";
  let description = [{
    Decides how the KV cache is paged and records the plan as the module's
    `qlc.kv_cache` attribute, which codegen reads (the page size becomes a kernel
    constant) and writes to the manifest, from which the runtime sizes the session's
    page pool. The cache is a pool of pages of `page_size` positions each; a page holds
    every layer's k and v rows of its positions (layout "page,layer,kv,position,head"),
    and a block table per sequence slot maps position / page_size to a page.

    dtype: the attention ops' kv_dtype (set by qlc-quantize-kv; all must agree).
    page_size: the option, or per target when 0: 16 on CUDA (as vLLM: small pages
    waste little of the last page and a block of 128 threads covers 8 whole pages),
    32 on x86 (the attention kernel scores blocks of 32 positions, so a block reads
    one contiguous page). pages: enough for max-batch sequences of max-seq-len
    (max_pages_per_seq = ceil(max-seq-len / page_size) each), capped by the memory
    budget (memory-budget bytes, and memory-fraction of target-memory bytes); a budget
    that cannot hold one sequence of max-seq-len is an error.
  }];
  let options = [
    Option<"maxSeqLen", "max-seq-len", "int64_t", /*default=*/"0",
           "Positions per sequence (required, > 0)">,
    Option<"maxBatch", "max-batch", "int64_t", /*default=*/"1",
           "Sequences held at once that the pages must cover">,
    Option<"pageSize", "page-size", "int64_t", /*default=*/"0",
           "Positions per page; 0: chosen for the target (16 cuda, 32 x86)">,
    Option<"target", "target", "std::string", /*default=*/"\"x86\"",
           "Target kind: x86 or cuda">,
    Option<"memoryBudget", "memory-budget", "int64_t", /*default=*/"0",
           "Bytes the KV cache may take; 0: no cap">,
    Option<"memoryFraction", "memory-fraction", "double", /*default=*/"0.0",
           "Fraction of target-memory the KV cache may take; 0: no cap">,
    Option<"targetMemory", "target-memory", "int64_t", /*default=*/"0",
           "Bytes of the target's memory (with memory-fraction)">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def FuseQkvPass : Pass<"qlc-fuse-qkv", "mlir::ModuleOp"> {
  let summary = "Merges the q, k and v projections of each attention into one";
  let description = [{
    For every `qlc.attention` whose q, k and v come (through `qlc.rope` for q and k)
    from three projections of the same input, emits one projection whose weight is
    theirs concatenated along the output features (q rows, then k, then v; biases
    likewise) and a `qlc.split` that gives rope and attention their parts back. Float
    projections fuse when their weights share an element type; quantized ones when
    they share the format, bits, group size and symmetry: "int" rows are packed
    independently, and NF4 blocks must not straddle two weights (the weights' sizes
    multiples of the block size) and must not be double-quantized. Anything else is
    refused with a remark and left as it was. With a weight store attached the fused
    tensors, named like `model.layers.0.self_attn.{q,k,v}_proj.weight`, are added to
    it; fusing quantized projections and quantizing a fused one give the same tensors
    under the same names.
  }];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def FuseGateUpPass : Pass<"qlc-fuse-gate-up", "mlir::ModuleOp"> {
  let summary = "Merges each MLP's gate and up projections, with a SwiGLU epilogue";
  let description = [{
    For every `qlc.silu_mul` whose gate and up are projections of the same input read
    by nothing else, emits one projection of twice the width (gate rows, then up rows)
    followed by `qlc.swiglu`, which applies silu(gate) * up to the two halves of its
    rows. The legality rules and tensor names are those of `qlc-fuse-qkv`; refusals
    are remarks.
  }];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def FuseNormResidualPass : Pass<"qlc-fuse-norm-residual", "mlir::ModuleOp"> {
  let summary = "Merges a residual add and the RMSNorm of its sum";
  let description = [{
    Rewrites `qlc.rms_norm` of a `qlc.add` into one `qlc.add_rms_norm` producing both
    the sum (the residual stream, which replaces the add's result) and the normalized
    rows, so the kernel reads the two addends once. Refused with a remark when an op
    placed between the add and the norm reads the sum.
  }];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def SelectTilingPass : Pass<"qlc-select-tiling", "mlir::ModuleOp"> {
  let summary = "Chooses the projection kernels' tile configs per M-range for a target";
  let description = [{
    For every `qlc.linear`, `qlc.quantized_linear` and `qlc.logits` attaches
    `qlc.tiling`, a dictionary with one entry per range of token rows M the kernel
    distinguishes (decode, small, prefill): the range's bounds (`min_m`, `max_m`, 0:
    unbounded), the template parameters the kernel takes there (CUDA GEMV warps, rows
    per warp and loads in flight; tensor-core GEMM block tile, warps and the cap on
    split-K; x86 GEMV rows, register tiles and the GEMM's K slice) and `by` = "model"
    or "cache". The candidates are the configurations the kernels are tested with, for
    the target of `target` (passes/TargetDesc.h: SM count, shared memory, registers;
    vector width, registers, caches); a simple cost model (passes/Tiling.cpp) picks one
    unless the tuning cache `cache` (written by `qlc compile --autotune`) holds a
    winner for the target, kernel, shape and range. The module gets
    `qlc.tiling_target`, which codegen checks against its target. A missing cache file
    is an empty cache; a malformed one, or a cached config that is not a candidate, is
    an error naming the file.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"\"",
           "x86-64, x86-64-v3, x86-64-v4, native, sm_80, sm_86, sm_89 or sm_90">,
    Option<"cache", "cache", "std::string", /*default=*/"\"\"",
           "A tuning cache file (JSON) whose winners override the cost model">,
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"512",
           "Tokens per step: the M the model assumes for the prefill range">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def FuseRopePass : Pass<"qlc-fuse-rope", "mlir::ModuleOp"> {
  let summary = "Moves the rotary embedding of q and k into the attention";
  let description = [{
    For every `qlc.attention` whose q and k both come from a `qlc.rope` read by
    nothing else, at the attention's positions, with the same parameters and the
    attention's head_dim, the attention takes the unrotated q and k and the rope's
    parameters as its `rope_*` attributes, and the two ropes go: the kernels rotate
    each query head as they load it and each key head before they store it in the
    KV cache, with the rope kernel's arithmetic (the same inverse-frequency tables,
    ir/Rope.h). Anything else (a rope result with another user, ropes that differ,
    only one of q and k rotated, an attention that already rotates) is refused with a
    remark and left as it was.
  }];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def FoldQkvSplitPass : Pass<"qlc-fold-qkv-split", "mlir::ModuleOp"> {
  let summary = "Lets the attention read q, k and v in place from the fused projection";
  let description = [{
    For every `qlc.attention` whose q, k and v are the three results of one
    `qlc.split` (the fused q/k/v projection's output, after `qlc-fuse-qkv`), in that
    order, read by nothing else, with widths num_heads * head_dim, num_kv_heads *
    head_dim and num_kv_heads * head_dim, the attention takes the split's input as q,
    k and v with `qkv_packed` and the split goes: the kernels read the columns in
    place (rows of the fused width), which saves the split's copies (three kernel
    launches per layer on CUDA) and its buffers. Anything else is refused with a
    remark and left as it was. Runs after quantization: the calibration executor
    does not run packed attention.
  }];
  let dependentDialects = ["::qlc::QlcDialect"];
}

def PlanBuffersPass : Pass<"qlc-plan-buffers", "mlir::ModuleOp"> {
  let summary = "Plans the activation buffers of @forward in one arena (liveness and reuse)";
  let description = [{
    Gives every activation of @forward (each op result of type tensor<?xNxf32> but
    the logits, which go to the caller's buffer) a region of `max-tokens` f32 rows,
    rounded up to 64 bytes, and every op that needs scratch while it runs (the gather
    of a permuted quantized linear, the logits' row buffer) a region of its own. A
    value is live from its op to its last user, a scratch region during its op only;
    regions live at the same op never overlap (so no op's output aliases its inputs),
    and the others reuse the same bytes. Offsets are assigned greedy by size: regions
    in decreasing size, each in the smallest gap left by the regions live with it, or
    above them. The plan is written as `qlc.buffer = [{bytes, offset}, ...]` (one per
    result) and `qlc.scratch = {bytes, offset}` on the ops, and `qlc.buffers =
    {alignment, arena_bytes, max_tokens, num_buffers, peak_bytes}` on the module,
    where peak_bytes is the most bytes live at one op (the lower bound of any plan).
    Codegen places the buffers there. Any earlier plan is replaced; with `verify` the
    pass instead checks the plan the module carries (what codegen does before using
    it) and fails on an inconsistent one.
  }];
  let options = [
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"512",
           "Tokens per forward step the arena is sized for (qlc compile --max-tokens)">,
    Option<"verify", "verify", "bool", /*default=*/"false",
           "Check the module's existing plan instead of making one">
  ];
  let dependentDialects = ["::qlc::QlcDialect"];
}

#endif // QLC_PASSES_TD
