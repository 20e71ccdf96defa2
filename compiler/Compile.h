//===- Compile.h - the qlc compile driver ----------------------*- C++ -*-===//
#ifndef QLC_COMPILER_COMPILE_H
#define QLC_COMPILER_COMPILE_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qlc {

/// What `qlc compile` was asked to do.
struct CompileOptions {
  std::string source;        // HF model folder
  std::string output;        // artifact path
  std::string target = "native";
  std::string quant = "none";
  int64_t groupSize = -1;    // -1: the scheme's default; 0: per channel
  std::string kvCache = "f32"; // KV cache storage: f32 (exact), f16 or int8
  std::string embeddingDtype = "f16"; // embedding/lm_head under weight quantization
  std::string calibFile;       // gptq-*: calibration text; empty: the bundled text
  std::string calibTokens;     // gptq-*: calibration token ids instead of text
  int64_t calibSamples = 128;  // gptq-*: calibration sequences
  int64_t calibSeqLen = 512;   // gptq-*: tokens per calibration sequence
  std::string calibDevice = "auto"; // gptq-*/awq-*: auto, cpu or cuda
  bool calibFlagsGiven = false; // any of --calib* was given (refused for other schemes)
  bool actOrder = false;       // gptq-*: act-order (desc_act, static groups)
  int64_t maxSeqLen = 0;     // 0: min(max_position_embeddings, 4096)
  int64_t maxTokens = 512;   // tokens per forward step
  int64_t maxBatch = 1;      // KV plan: sequences held at once that the pages cover
  int64_t kvPageSize = 0;    // KV plan: positions per page; 0: the target's choice
  int64_t kvMemoryMiB = 0;   // KV plan: MiB the cache may take; 0: no cap
  std::string cxx;           // host C++ compiler; empty: $CXX, then c++, g++, clang++
  std::string nvcc;          // CUDA compiler; empty: $NVCC, nvcc, /usr/local/cuda/bin/nvcc
  bool fuse = true;          // run the fusion passes
  bool selectTiling = true;  // run qlc-select-tiling (false: the kernels' default configs)
  std::string tuningCache;   // qlc-select-tiling's cache; empty: defaultTuningCache()
  bool autotune = false;     // time the candidate configs on this machine into the cache
  std::string passPipeline;  // a textual pass pipeline replacing the one --quant builds
  bool printIrAfterAll = false;
  std::vector<std::string> printIrAfter; // pass flags (qlc-fuse-qkv, ...) to print IR after
  bool timing = false;
  bool verbose = false;
  bool keepTemps = false;
  std::string emitCheckpoint;  // also write the quantized model as a GPTQ/AWQ checkpoint here
  std::string checkpointFormat = "gptq"; // gptq (AutoGPTQ v1 zeros) or gptq_v2
};

/// Errors carry a category: bad input (exit code 2) or an internal failure (exit 1).
class CompileError : public llvm::ErrorInfo<CompileError> {
public:
  static char ID;
  CompileError(std::string msg, bool badInput) : msg(std::move(msg)), badInput(badInput) {}
  void log(llvm::raw_ostream &os) const override { os << msg; }
  std::error_code convertToErrorCode() const override { return llvm::inconvertibleErrorCode(); }
  std::string msg;
  bool badInput;
};

/// The tuning cache used when --tuning-cache is not given:
/// $XDG_CACHE_HOME/qlc/tuning.json, else ~/.cache/qlc/tuning.json.
std::string defaultTuningCache();

/// Runs the whole pipeline: import, passes, codegen, host compile, artifact write.
llvm::Error compileModel(const CompileOptions &opts);

/// Runs the pipeline of opts.quant up to quantization (no codegen) and writes the result
/// to the folder opts.output as an AutoGPTQ (gptq-*, rtn-*) or AutoAWQ GEMM (awq-w4)
/// checkpoint that transformers and vLLM load.
llvm::Error exportCheckpoint(const CompileOptions &opts);

/// Imports `source` (a model folder, or a config.json alone when configOnly) and prints
/// its qlc IR to stdout, after the compile pipeline of `quant` (and the fusion passes
/// when `fuse`).
llvm::Error importAndPrint(const std::string &source, bool configOnly, const std::string &quant,
                           bool fuse = false, const std::string &target = "",
                           const std::string &tuningCache = "");

} // namespace qlc

#endif // QLC_COMPILER_COMPILE_H
