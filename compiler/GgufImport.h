//===- GgufImport.h - GGUF model -> qlc config, weights, tokenizer -*- C++ -*-===//
//
// Maps a llama.cpp model file (general.architecture llama or qwen2) onto what the
// Hugging Face frontend produces: a ModelConfig, a weight store keyed by Hugging Face
// tensor names (block formats dequantized to float32, llama's q/k rows permuted back to
// rotate-half order, as transformers' GGUF loader does), and a tokenizer.json text built
// from the tokenizer.ggml.* metadata the way transformers' GGUF converter builds it.
//
//===----------------------------------------------------------------------===//
#ifndef QLC_COMPILER_GGUFIMPORT_H
#define QLC_COMPILER_GGUFIMPORT_H

#include "compiler/Gguf.h"
#include "compiler/ModelConfig.h"
#include "compiler/WeightStore.h"

#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qlc {

/// The tokenizer.ggml.* metadata of a GGUF file. Ids are -1 when absent.
struct GgufTokenizer {
  std::string model; // tokenizer.ggml.model: llama (SentencePiece), gpt2 (byte-level BPE), ...
  std::string pre;   // tokenizer.ggml.pre: the pre-tokenizer llama.cpp applies
  std::vector<std::string> tokens;
  std::vector<float> scores; // empty when absent
  std::vector<int32_t>
      tokenTypes; // empty when absent; 1 normal, 2 unknown, 3 control, 4 user, 6 byte
  std::vector<std::string> merges; // "left right"; empty when absent
  bool hasMerges = false;
  int64_t bosId = -1, eosId = -1, unkId = -1, padId = -1;
  std::optional<bool> addBos, addEos, addSpacePrefix;
  std::string chatTemplate;
};

/// Reads tokenizer.ggml.*; fails naming the file and key on a wrongly typed value or an
/// id outside the vocabulary.
llvm::Expected<GgufTokenizer> readGgufTokenizer(const GgufFile &file);

/// Builds Hugging Face tokenizer.json text for `tok` the way transformers' GGUF converter
/// does for `architecture` (general.architecture): GGUFLlamaConverter for llama (with its
/// SentencePiece and llama-3/byte-level variants), GGUFQwen2Converter for qwen2. The post
/// processor adds BOS/EOS as tokenizer.ggml.add_bos_token/add_eos_token say.
llvm::Expected<std::string> buildTokenizerJson(const GgufTokenizer &tok,
                                               const std::string &architecture,
                                               const std::string &source);

/// The model config a GGUF file's metadata describes.
llvm::Expected<ModelConfig> ggufModelConfig(const GgufFile &file);

/// A GGUF model imported for compilation.
struct GgufModel {
  ModelConfig config;
  std::unique_ptr<WeightStore> store; // null when imported with configOnly
  std::string tokenizerJson;          // empty when tokenizerError says why
  std::string tokenizerError;
  std::string chatTemplate;           // tokenizer.chat_template, may be empty
  std::string bosToken, eosToken;     // the text of the bos/eos tokens, may be empty
};

/// Opens, validates and imports `path`. With configOnly, reads no tensor data.
llvm::Expected<GgufModel> importGguf(const std::string &path, bool configOnly = false);

} // namespace qlc

#endif // QLC_COMPILER_GGUFIMPORT_H
