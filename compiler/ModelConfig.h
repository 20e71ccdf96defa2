//===- ModelConfig.h - config.json of a Hugging Face model -----*- C++ -*-===//
#ifndef QLC_COMPILER_MODELCONFIG_H
#define QLC_COMPILER_MODELCONFIG_H

#include "ir/Rope.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qlc {

/// The quantization_config of a pre-quantized checkpoint (AutoGPTQ/GPTQModel or AutoAWQ
/// GEMM), as transformers reads it.
struct CheckpointQuant {
  std::string method;     // "gptq" or "awq"
  int64_t bits = 4;
  int64_t groupSize = -1; // -1: one group per row
  bool descAct = false;   // gptq: act-order (g_idx may then be a permutation of groups)
  bool sym = true;        // gptq: symmetric (zeros all 2^(bits-1))
  /// gptq checkpoint_format: "gptq" (v1: qzeros hold zero - 1) or "gptq_v2" (the zero
  /// itself); awq: "gemm".
  std::string format = "gptq";
};

/// The architecture-independent description of a decoder-only model.
struct ModelConfig {
  std::string architecture; // LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM
  int64_t hiddenSize = 0, intermediateSize = 0, numLayers = 0;
  int64_t numHeads = 0, numKvHeads = 0, headDim = 0, vocabSize = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  RopeParams rope;
  bool tieWordEmbeddings = false;
  bool qkvBias = false, oBias = false, mlpBias = false;
  std::optional<int64_t> slidingWindow;
  std::string dtype = "float32"; // torch_dtype / dtype, informational
  int64_t bosTokenId = -1;
  std::vector<int64_t> eosTokenIds;
  /// Set when config.json has a quantization_config qlc can import.
  std::optional<CheckpointQuant> checkpointQuant;
};

/// The architectures the importer understands.
const std::vector<std::string> &supportedArchitectures();

/// Parses config.json text; `source` names the file in error messages.
llvm::Expected<ModelConfig> parseModelConfig(const std::string &text, const std::string &source);
/// Reads and parses `path`.
llvm::Expected<ModelConfig> loadModelConfig(const std::string &path);

} // namespace qlc

#endif // QLC_COMPILER_MODELCONFIG_H
