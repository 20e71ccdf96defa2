//===- EmitCuda.cpp - qlc dialect -> CUDA C++ calling the kernel templates -===//
//
// The CUDA spelling of the kernel calls (codegen/KernelEmitter.h): kernels of
// qlc::cuda (codegen/cuda/kernels) are host launchers that take the session's stream
// first; weights, activations and the KV cache are device memory. The forward copies
// the step's tokens, positions, slots and logit rows into a staging area at the end of
// the scratch arena, runs the kernels, and copies the logits back. After the staging, the
// f16 tiles of the cuBLAS path for projections of many rows (qlc_cuda_blas.cuh).
//
#include "codegen/Codegen.h"
#include "codegen/KernelEmitter.h"

#include <fmt/format.h>

#include <algorithm>

namespace qlc {

namespace {

class CudaSyntax : public KernelSyntax {
public:
  explicit CudaSyntax(const TargetInfo &target) : target(target) {}
  std::string kernel(const std::string &name, const std::vector<std::string> &targs,
                     bool qualified) const override {
    std::string s = (qualified ? "qlc::cuda::" : "") + name + "<";
    for (size_t i = 0; i < targs.size(); ++i)
      s += (i ? ", " : "") + targs[i];
    return s + ">";
  }
  std::string targetName() const override { return target.name(); }
  /// qlc::cuda::Tiling<GemvCfg<warps, rows, unroll>, MmaCfg<small>, MmaCfg<prefill>>.
  std::string tiling(mlir::DictionaryAttr t, std::string &error) const override {
    auto params = [&](const char *range, std::initializer_list<const char *> keys) {
      std::string s;
      for (const char *k : keys) {
        const int64_t v = tilingParam(t, range, k);
        if (v <= 0 && error.empty())
          error = std::string("range ") + range + " lacks a positive " + k;
        s += (s.empty() ? "" : ", ") + std::to_string(v);
      }
      return s;
    };
    const char *mma[] = {"bm", "bn", "warps_m", "warps_n", "max_split_k"};
    std::string s = "qlc::cuda::Tiling<qlc::cuda::GemvCfg<" +
                    params("decode", {"warps", "rows", "unroll"}) + ">, qlc::cuda::MmaCfg<" +
                    params("small", {mma[0], mma[1], mma[2], mma[3], mma[4]}) +
                    ">, qlc::cuda::MmaCfg<" +
                    params("prefill", {mma[0], mma[1], mma[2], mma[3], mma[4]}) + ">>";
    return error.empty() ? s : "";
  }
  std::string execArg() const override { return "s"; }
  std::string elementType(const std::string &dt) const override {
    if (dt == "f32") return "float";
    if (dt == "u8") return "uint8_t";
    if (dt == "i8") return "int8_t";
    if (dt == "i32") return "int32_t";
    return "qlc::cuda::" + dt;
  }
  bool supportsPerm() const override { return true; }
  bool w4Tiles() const override { return true; }
  std::string kvFormat(const std::string &dt) const override {
    return dt == "int8" ? "qlc::cuda::KvI8" : dt == "f16" ? "qlc::cuda::KvF16" : "qlc::cuda::KvF32";
  }
  std::string attentionArgs(int64_t layer, const std::string &scale, const std::string &q,
                            const std::string &k, const std::string &v, const std::string &out,
                            const std::string &invFreq) const override {
    return fmt::format("ctx->kv, ctx->block_table, ctx->max_pages_per_seq, M, st->positions, "
                       "st->slots, {}, {}, {}, {}, {}, {}, {}",
                       layer, scale, q, k, v, out, invFreq);
  }
  std::string logitsArgs(const std::string &x, const std::string &w,
                         const std::string &tmp) const override {
    return fmt::format("st->n_logits, st->logit_rows, {}, {}, {}, st->logits", x, w, tmp);
  }
  std::string tableRef(const ConstTable &t) const override { return t.name + "_d"; }
  /// The step's inputs and logits (qlc_cuda_artifact.cuh's staging_bytes).
  static int64_t ioBytes(const CodegenOptions &opts, int64_t vocab) {
    const int64_t ints = (opts.maxTokens * 4 + 255) / 256 * 64;
    return 5 * ints * 4 + opts.maxTokens * vocab * 4;
  }
  static int64_t roundUp256(int64_t b) { return (b + 255) / 256 * 256; }
  /// qlc_cuda_blas.cuh's blas_ld and blas_band_rows x blas_ld, largest over the
  /// projections (the generated code checks them against the kernels').
  static std::pair<int64_t, int64_t> blasExtent(const StagingNeeds &needs) {
    int64_t ld = 0, band = 0;
    for (const auto &[k, n] : needs.projections) {
      const int64_t l = (k + 7) / 8 * 8, chunk = int64_t{32} << 20;
      const int64_t bands = (n * l + chunk - 1) / chunk;
      const int64_t rows = std::min(n, ((n + bands - 1) / bands + 127) / 128 * 128);
      ld = std::max(ld, l);
      band = std::max(band, rows * l);
    }
    return {ld, band};
  }
  /// qlc_cuda_blas.cuh's kBlasMinM (checked by the generated code): steps of fewer rows
  /// never take the cuBLAS path, so artifacts whose steps are shorter plan no tiles for it.
  static constexpr int64_t kBlasMinM = 65;
  static int64_t blasBytes(const CodegenOptions &opts, const StagingNeeds &needs) {
    const auto [ld, band] = blasExtent(needs);
    if (ld == 0 || opts.maxTokens < kBlasMinM)
      return 0;
    return roundUp256(opts.maxTokens * ld * 2) + roundUp256(band * 2);
  }
  int64_t stagingBytes(const CodegenOptions &opts, const StagingNeeds &needs) const override {
    return roundUp256(ioBytes(opts, needs.vocab)) + blasBytes(opts, needs);
  }
  std::string finish(const std::vector<ConstTable> &tables, const std::string &decls,
                     const std::string &body, const CodegenOptions &opts, int64_t staging,
                     const StagingNeeds &needs) const override {
    const int64_t vocab = needs.vocab;
    // The cuBLAS path's f16 tiles follow the step's inputs and logits.
    const auto [ld, band] = blasExtent(needs);
    const int64_t blasOffset = staging + roundUp256(ioBytes(opts, vocab));
    std::string blasChecks;
    for (const auto &[k, n] : needs.projections)
      blasChecks += fmt::format("static_assert(qlc::cuda::blas_ld<{0}>() <= {2} && "
                                "qlc::cuda::blas_band_rows<{0}, {1}>() * qlc::cuda::blas_ld<{0}>() "
                                "<= {3}, \"the cuBLAS tiles differ from the emitter's\");\n",
                                k, n, ld, band);
    if (ld > 0)
      blasChecks += fmt::format("static_assert(qlc::cuda::kBlasMinM == {},\n"
                                "              \"the emitter's cuBLAS threshold differs\");\n",
                                kBlasMinM);
    if (ld > 0 && blasBytes(opts, needs) > 0)
      blasChecks +=
          fmt::format("static_assert(qlc::cuda::blas_scratch_bytes({}, {}, {}) == {},\n"
                      "              \"the cuBLAS scratch differs from the emitter's\");\n",
                      opts.maxTokens, ld, band, blasBytes(opts, needs));
    std::string defs, refs;
    for (const ConstTable &t : tables) {
      std::string values;
      for (float f : t.values)
        values += fmt::format("{:a}f, ", f);
      defs += fmt::format("__device__ const float {}[{}] = {{{}}};\n", t.name, t.values.size(),
                          values);
      refs += fmt::format("  static const float *const {} = qlc::cuda::symbol_address({});\n",
                          tableRef(t), t.name);
    }
    const std::string cc = target.name().substr(3);
    // Programmatic dependent launch (griddepcontrol) exists from sm_90 on; the kernels'
    // waits compile to nothing below it, so older targets must not launch that way.
    const int pdl = std::stoi(cc) >= 90 ? 1 : 0;
    return fmt::format(
        "// Generated by qlc {ver} for target {tgt}. Do not edit.\n"
        "#define QLC_CUDA_PDL {pdl}\n"
        "#include \"qlc_cuda_kernels.cuh\"\n"
        "#include \"qlc_cuda_artifact.cuh\"\n\n"
        "namespace {{\n{defs}{decls}"
        "static_assert(qlc::cuda::staging_bytes<{maxt}, {vocab}>() == {stbytes},\n"
        "              \"the staging area differs from the emitter's\");\n"
        "{blaschecks}"
        "}} // namespace\n\n"
        "QLC_CUDA_DEVICE_API({cc})\n\n"
        "extern \"C\" __attribute__((visibility(\"default\"))) uint32_t "
        "qlc_artifact_abi_version(void) {{ return QLC_ABI_VERSION; }}\n\n"
        "extern \"C\" __attribute__((visibility(\"default\"))) int\n"
        "qlc_artifact_forward(const qlc_exec_ctx *ctx, const qlc_step *host_step) {{\n"
        "  const int64_t M = host_step->n_tokens;\n"
        "  if (M <= 0 || M > {maxt} || host_step->n_logits < 0 || host_step->n_logits > {maxt})\n"
        "    return 1;\n"
        "  if (ctx->page_size != kKvPageSize || ctx->block_table == nullptr)\n"
        "    return qlc::cuda::fail_page_size(ctx->page_size, kKvPageSize);\n"
        "{refs}"
        "  cudaStream_t s = static_cast<cudaStream_t>(ctx->pool);\n"
        "  qlc_step staged;\n"
        "  if (int rc = qlc::cuda::stage_step<{maxt}>(ctx, host_step, {staging}, s, &staged))\n"
        "    return rc;\n"
        "  const qlc_step *st = &staged;\n"
        "  qlc::cuda::BlasScope blas(ctx, ctx->scratch + {bloff}, {blbytes});\n"
        "  auto launch = [&](cudaStream_t s) {{\n"
        "{body}"
        "  }};\n"
        "  if (int rc = qlc::cuda::run_kernels(ctx, M, st->n_logits, s, launch))\n"
        "    return rc;\n"
        "  return qlc::cuda::finish_step<{vocab}>(ctx, host_step, st, s);\n}}\n",
        fmt::arg("ver", QLC_VERSION_STRING), fmt::arg("tgt", target.name()), fmt::arg("defs", defs),
        fmt::arg("decls", decls), fmt::arg("maxt", opts.maxTokens), fmt::arg("vocab", vocab),
        fmt::arg("stbytes", ioBytes(opts, vocab)), fmt::arg("blaschecks", blasChecks),
        fmt::arg("bloff", blasOffset), fmt::arg("blbytes", blasBytes(opts, needs)),
        fmt::arg("cc", cc), fmt::arg("refs", refs), fmt::arg("staging", staging),
        fmt::arg("body", body), fmt::arg("pdl", pdl));
  }

private:
  const TargetInfo &target;
};

} // namespace

llvm::Expected<CodegenResult> emitCuda(mlir::ModuleOp module, const TargetInfo &target,
                                       const CodegenOptions &opts) {
  if (target.kind() != "cuda")
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "emitCuda called for a non-CUDA target " + target.name());
  return emitKernelCalls(module, CudaSyntax(target), opts);
}

} // namespace qlc
