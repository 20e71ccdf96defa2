//===- qlc.cpp - the qlc compiler driver: compile, import, inspect ---------===//
#include "compiler/Artifact.h"
#include "compiler/Compile.h"
#include "compiler/DumpWeights.h"
#include "passes/Passes.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

using nlohmann::json;

namespace {

/// Prints an error the way every qlc tool does and returns its exit code.
int report(llvm::Error e) {
  int code = 1;
  llvm::handleAllErrors(
      std::move(e),
      [&](const qlc::CompileError &ce) {
        code = ce.badInput ? 2 : 1;
        std::cerr << "qlc: error: " << ce.msg << "\n";
      },
      [&](const llvm::ErrorInfoBase &other) {
        code = 2;
        std::cerr << "qlc: error: " << other.message() << "\n";
      });
  return code;
}

std::string humanBytes(double b) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

int inspect(const std::string &path, bool asJson) {
  auto manOr = qlc::readArtifactManifest(path);
  if (!manOr) {
    std::cerr << "qlc: error: " << llvm::toString(manOr.takeError()) << "\n";
    return 2;
  }
  const json &m = *manOr;
  if (asJson) {
    std::cout << m.dump(2) << "\n";
    return 0;
  }
  try {
    const json &model = m.at("model");
    std::cout << fmt::format("artifact   {}\n", path);
    std::cout << fmt::format("qlc        {} (format {}, abi {})\n", m.at("qlc_version").get<std::string>(),
                             m.at("format_version").get<int>(), m.at("abi_version").get<int>());
    std::cout << fmt::format("target     {} ({})\n", m.at("target").at("name").get<std::string>(),
                             m.at("target").at("kernel_isa").get<std::string>());
    std::cout << fmt::format("model      {}: {} layers, hidden {}, heads {}/{} kv, head_dim {}, vocab {}\n",
                             model.at("architecture").get<std::string>(), model.at("num_layers").get<int64_t>(),
                             model.at("hidden_size").get<int64_t>(), model.at("num_heads").get<int64_t>(),
                             model.at("num_kv_heads").get<int64_t>(), model.at("head_dim").get<int64_t>(),
                             model.at("vocab_size").get<int64_t>());
    std::string ckpt;
    if (const json &q = m.at("quant"); q.contains("checkpoint")) {
      const json &c = q.at("checkpoint");
      ckpt = fmt::format(" (pre-quantized {} checkpoint: {} bits, group size {}{})",
                         c.at("quant_method").get<std::string>(), c.at("bits").get<int64_t>(),
                         c.at("group_size").get<int64_t>(),
                         c.at("desc_act").get<bool>() ? ", act-order" : "");
    }
    std::cout << fmt::format("quant      {}{}\n", m.at("quant").at("scheme").get<std::string>(),
                             ckpt);
    std::cout << fmt::format("exec       max_seq_len {}, max_tokens/step {}, scratch {}\n",
                             model.at("max_seq_len").get<int64_t>(), m.at("exec").at("max_tokens").get<int64_t>(),
                             humanBytes(m.at("exec").at("scratch_bytes").get<double>()));
    if (const json &ex = m.at("exec"); ex.contains("activations")) {
      const json &a = ex.at("activations");
      std::cout << fmt::format("activations: peak {} bytes for max_tokens {} (arena {} bytes, {} "
                               "buffers{})\n",
                               a.at("peak_bytes").get<int64_t>(), a.at("max_tokens").get<int64_t>(),
                               a.at("arena_bytes").get<int64_t>(),
                               a.at("num_buffers").get<int64_t>(),
                               a.value("staging_bytes", int64_t{0}) > 0
                                   ? fmt::format(", then {} bytes of step staging",
                                                 a.at("staging_bytes").get<int64_t>())
                                   : "");
    }
    const json &kv = m.at("exec").at("kv_cache");
    std::string scales = kv.value("scales", "none");
    std::cout << fmt::format("kv cache   {}{}, {} per position of a sequence\n",
                             kv.at("dtype").get<std::string>(),
                             scales == "none" ? "" : " (scales " + scales + ")",
                             humanBytes(kv.value("bytes_per_position", 0.0)));
    if (kv.contains("page_size"))
      std::cout << fmt::format("kv pages   {} positions a page ({}), {} pages ({}) for {} "
                               "sequence(s) of {} pages{}; layout {}\n",
                               kv.at("page_size").get<int64_t>(),
                               humanBytes(kv.value("page_bytes", 0.0)),
                               kv.at("pages").get<int64_t>(),
                               humanBytes(kv.value("page_bytes", 0.0) * kv.value("pages", 0.0)),
                               kv.value("max_batch", int64_t{1}),
                               kv.at("max_pages_per_seq").get<int64_t>(),
                               kv.value("budget_bytes", int64_t{0}) > 0
                                   ? ", budget " + humanBytes(kv.value("budget_bytes", 0.0))
                                   : std::string(),
                               kv.value("layout", std::string("?")));
    std::map<std::string, const json *> weights;
    double total = 0;
    for (const json &w : m.at("weights")) {
      weights[w.at("name").get<std::string>()] = &w;
      total += w.at("bytes").get<double>();
    }
    std::cout << fmt::format("weights    {} tensors, {}\n", weights.size(), humanBytes(total));
    std::cout << "kernels\n";
    for (const json &k : m.at("kernels")) {
      std::string wname = k.at("weight").get<std::string>();
      std::string size;
      if (auto it = weights.find(wname); it != weights.end())
        size = fmt::format("{} {}", it->second->at("dtype").get<std::string>(),
                           humanBytes(it->second->at("bytes").get<double>()));
      std::cout << fmt::format("  {:<20} {:<48} {:<10} {}\n", k.at("op").get<std::string>(),
                               k.at("kernel").get<std::string>(), size, wname);
    }
  } catch (const std::exception &e) {
    std::cerr << "qlc: error: " << path << ": manifest lacks a field: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  qlc::registerQlcPassesAndPipelines(); // for --pass-pipeline
  CLI::App app{"qlc: ahead-of-time compiler for decoder-only language models"};
  app.require_subcommand(1);
  qlc::CompileOptions co;
  auto *compile = app.add_subcommand("compile", "Compile a model folder into an artifact");
  compile
      ->add_option("source", co.source,
                   "Hugging Face model folder (config.json + safetensors) or .gguf file")
      ->required();
  compile->add_option("-o,--output", co.output, "Artifact to write")->required();
  compile
      ->add_option("--target", co.target,
                   "CPU: x86-64, x86-64-v3, x86-64-v4, native (this machine); NVIDIA GPU: sm_80, "
                   "sm_86, sm_89, sm_90 (needs nvcc; the artifact runs on that GPU or newer)")
      ->capture_default_str();
  compile->add_option("--quant", co.quant,
                      "none (source dtype), f32, f16, bf16, rtn-w4, rtn-w8, gptq-w4, gptq-w8, "
                      "awq-w4, awq-w8 (-sym: symmetric), nf4, nf4-dq (bitsandbytes NF4, -dq: "
                      "double quantization)")
      ->capture_default_str();
  compile->add_option("--kv-cache", co.kvCache,
                      "KV cache storage: f32 (exact), f16, or int8 (per-token, per-head "
                      "scale and zero)")
      ->capture_default_str();
  compile->add_option("--embedding-dtype", co.embeddingDtype,
                      "With rtn/nf4: storage of the embedding table and the logits "
                      "projection: f16 (f32 sources narrowed, 16-bit kept), bf16, f32, source")
      ->capture_default_str();
  compile->add_option("--group-size", co.groupSize,
                      "Quantization group size (default: 128 for 4 bits, per channel for 8; "
                      "0: per channel)");
  auto *calibOpt = compile->add_option(
      "--calib", co.calibFile,
      "gptq-*/awq-*: calibration text file (default: a bundled public-domain sample)");
  auto *tokensOpt = compile->add_option(
      "--calib-tokens", co.calibTokens,
      "gptq-*/awq-*: calibration token ids (white-space separated) instead of text");
  auto *samplesOpt = compile->add_option("--calib-samples", co.calibSamples,
                                         "gptq-*/awq-*: calibration sequences")
                         ->capture_default_str();
  auto *seqLenOpt = compile->add_option("--calib-seqlen", co.calibSeqLen,
                                        "gptq-*/awq-*: tokens per calibration sequence")
                        ->capture_default_str();
  auto *deviceOpt =
      compile
          ->add_option("--calib-device", co.calibDevice,
                       "gptq-*/awq-*: where calibration computes: auto (a CUDA GPU if there "
                       "is one, else the CPU), cpu, cuda")
          ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
          ->capture_default_str();
  compile->add_flag("--act-order", co.actOrder,
                    "gptq-*: quantize columns by decreasing Hessian diagonal (static groups)");
  compile->add_option("--max-seq-len", co.maxSeqLen,
                      "Default positions per sequence (0: min(max_position_embeddings, 4096))");
  compile->add_option("--max-tokens", co.maxTokens, "Tokens per forward step (prefill chunk); the activation arena is planned for it")
      ->capture_default_str();
  compile->add_option("--max-batch", co.maxBatch,
                      "Sequences held at once that the KV plan's pages cover")
      ->capture_default_str();
  compile->add_option("--kv-page-size", co.kvPageSize,
                      "Positions per KV cache page (0: the target's, 16 cuda, 32 x86)")
      ->capture_default_str();
  compile->add_option("--kv-memory", co.kvMemoryMiB,
                      "MiB the KV cache may take: caps the plan's pages (0: no cap)")
      ->capture_default_str();
  compile->add_option("--cxx", co.cxx, "Host C++ compiler for the generated code (x86 targets)");
  compile->add_option("--nvcc", co.nvcc, "CUDA compiler for the generated code (sm_* targets)");
  compile->add_flag("--fuse,!--no-fuse", co.fuse,
                    "Fuse q/k/v and gate/up projections, RoPE into attention and residual "
                    "adds into norms (default; --no-fuse: keep the imported graph's ops)");
  compile->add_flag("--select-tiling,!--no-select-tiling", co.selectTiling,
                    "Choose the projection kernels' tile configs for the target with "
                    "qlc-select-tiling (default; --no-select-tiling: the kernels' defaults)");
  compile->add_option("--tuning-cache", co.tuningCache,
                      "Tuning cache qlc-select-tiling prefers over its cost model and "
                      "--autotune writes (default: ~/.cache/qlc/tuning.json)");
  compile->add_flag("--autotune", co.autotune,
                    "Time the candidate tile configs on this machine (x86: this CPU; sm_*: "
                    "its GPU) and store the winners in the tuning cache");
  compile->add_option("--pass-pipeline", co.passPipeline,
                      "Run this textual pass pipeline instead of the one --quant and --fuse "
                      "build, e.g. 'builtin.module(qlc-fuse-qkv,qlc-quantize-rtn{bits=4})'");
  compile->add_flag("--print-ir-after-all", co.printIrAfterAll,
                    "Print the IR after every pass (to stderr)");
  compile->add_option("--mlir-print-ir-after", co.printIrAfter,
                      "Print the IR after this pass (its flag, e.g. qlc-fuse-qkv; repeatable, "
                      "or a comma list)")
      ->allow_extra_args(false)
      ->delimiter(',');
  compile->add_flag("--timing", co.timing, "Report the time of each stage and pass");
  compile->add_flag("-v,--verbose", co.verbose, "Report each stage");
  compile->add_flag("--keep-temps", co.keepTemps, "Keep the generated source and build files");
  compile->add_option("--emit-checkpoint", co.emitCheckpoint,
                      "Also write the quantized model to this folder as an AutoGPTQ (gptq-*, "
                      "rtn-*) or AutoAWQ GEMM (awq-w4) checkpoint, as qlc export does");
  compile->add_option("--checkpoint-format", co.checkpointFormat,
                      "GPTQ checkpoint_format: gptq (AutoGPTQ v1, zeros stored minus one; "
                      "vLLM) or gptq_v2 (GPTQModel)")
      ->capture_default_str();

  qlc::CompileOptions eo;
  auto *exp = app.add_subcommand(
      "export", "Quantize a model folder and write it as a GPTQ or AWQ checkpoint folder");
  exp->add_option("source", eo.source, "Hugging Face model folder (config.json + safetensors)")
      ->required();
  exp->add_option("-o,--output", eo.output, "Checkpoint folder to write (new or empty)")
      ->required();
  exp->add_option("--quant", eo.quant,
                  "gptq-w4, gptq-w8, rtn-w4, rtn-w8 (-sym: symmetric) as AutoGPTQ "
                  "checkpoints; awq-w4 (-sym) as an AutoAWQ GEMM checkpoint")
      ->required();
  exp->add_option("--group-size", eo.groupSize, "Quantization group size, as for compile");
  exp->add_option("--embedding-dtype", eo.embeddingDtype,
                  "Storage of the embedding table and lm_head, as for compile")
      ->capture_default_str();
  auto *eCalib = exp->add_option("--calib", eo.calibFile, "Calibration text, as for compile");
  auto *eTokens = exp->add_option("--calib-tokens", eo.calibTokens,
                                  "Calibration token ids, as for compile");
  auto *eSamples = exp->add_option("--calib-samples", eo.calibSamples, "As for compile")
                       ->capture_default_str();
  auto *eSeqLen = exp->add_option("--calib-seqlen", eo.calibSeqLen, "As for compile")
                      ->capture_default_str();
  auto *eDevice = exp->add_option("--calib-device", eo.calibDevice, "As for compile")
                      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
                      ->capture_default_str();
  exp->add_flag("--act-order", eo.actOrder, "gptq-*: act-order (static groups), as for compile");
  exp->add_option("--checkpoint-format", eo.checkpointFormat,
                  "gptq (AutoGPTQ v1, zeros stored minus one; vLLM) or gptq_v2 (GPTQModel)")
      ->capture_default_str();
  exp->add_flag("--timing", eo.timing, "Report the time of each stage and pass");
  exp->add_flag("-v,--verbose", eo.verbose, "Report each stage");

  std::string importSrc, importQuant = "none";
  bool configOnly = false, importFuse = false;
  auto *imp = app.add_subcommand("import", "Print the qlc IR of a model folder or config.json");
  imp->add_option("source", importSrc, "Model folder, or config.json with --config-only")->required();
  imp->add_flag("--config-only", configOnly, "Build the IR from config.json alone (no weights)");
  imp->add_option("--quant", importQuant, "Run the compile pipeline of this scheme first")
      ->capture_default_str();
  imp->add_flag("--fuse", importFuse, "Run the fusion passes too (after --quant)");
  std::string importTarget, importCache;
  imp->add_option("--target", importTarget,
                  "Run qlc-select-tiling for this target too (shows qlc.tiling)");
  imp->add_option("--tuning-cache", importCache, "qlc-select-tiling's tuning cache");

  std::string inspectPath;
  bool inspectJson = false;
  auto *ins = app.add_subcommand("inspect", "Show an artifact's manifest, kernels and sizes");
  ins->add_option("artifact", inspectPath, "Artifact file")->required();
  ins->add_flag("--json", inspectJson, "Print the manifest as JSON");

  std::string dumpSrc, dumpOut, dumpQuant = "none";
  std::vector<std::string> dumpNames;
  bool dumpRaw = false;
  int64_t dumpGroupSize = -1;
  auto *dump = app.add_subcommand(
      "dump-weights", "Debug: write imported tensors as float32 .npy (--quant: compiled ones)");
  dump->add_option("source", dumpSrc, "Model folder or .gguf file")->required();
  dump->add_option("--out", dumpOut, "Directory for <tensor>.npy files")->required();
  dump->add_option("--tensor", dumpNames, "Only this tensor (repeatable)");
  dump->add_flag("--raw", dumpRaw, "GGUF: every tensor under its GGUF name, only dequantized");
  dump->add_option("--quant", dumpQuant,
                   "Run the compile pipeline of this scheme first and write the tensors the "
                   "compiled IR reads in their own dtype, plus module.mlir")
      ->capture_default_str();
  dump->add_option("--group-size", dumpGroupSize, "Quantization group size, as for compile");

  std::string tokSrc;
  auto *ggufTok = app.add_subcommand("gguf-tokenizer",
                                     "Debug: print the tokenizer.json synthesized from a GGUF");
  ggufTok->add_option("source", tokSrc, ".gguf file")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success))
      return app.exit(e); // --help
    // One line, like every other error (CLI11's own report spans two).
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::cerr << "qlc: error: " << msg << " (see --help)\n";
    return 2;
  }
  if (*compile) {
    co.calibFlagsGiven = calibOpt->count() + tokensOpt->count() + samplesOpt->count() +
                             seqLenOpt->count() + deviceOpt->count() >
                         0;
    if (llvm::Error e = qlc::compileModel(co))
      return report(std::move(e));
    return 0;
  }
  if (*exp) {
    eo.calibFlagsGiven = eCalib->count() + eTokens->count() + eSamples->count() + eSeqLen->count() +
                             eDevice->count() >
                         0;
    if (llvm::Error e = qlc::exportCheckpoint(eo))
      return report(std::move(e));
    return 0;
  }
  if (*imp) {
    if (llvm::Error e = qlc::importAndPrint(importSrc, configOnly, importQuant, importFuse,
                                               importTarget, importCache))
      return report(std::move(e));
    return 0;
  }
  if (*dump) {
    if (llvm::Error e = qlc::dumpWeights(dumpSrc, dumpOut, dumpNames, dumpRaw, dumpQuant,
                                             dumpGroupSize))
      return report(std::move(e));
    return 0;
  }
  if (*ggufTok) {
    auto jsonOr = qlc::ggufTokenizerJson(tokSrc);
    if (!jsonOr)
      return report(jsonOr.takeError());
    std::cout << *jsonOr << "\n";
    return 0;
  }
  return inspect(inspectPath, inspectJson);
}
