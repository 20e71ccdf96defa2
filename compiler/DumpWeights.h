//===- DumpWeights.h - debug dumps of imported weights and tokenizers -*- C++ -*-===//
#ifndef QLC_COMPILER_DUMPWEIGHTS_H
#define QLC_COMPILER_DUMPWEIGHTS_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qlc {

/// Writes tensors of `source` (a Hugging Face model folder or a .gguf file) to
/// `outDir`/<name>.npy as float32, in the row-major shape the compiler sees. A GGUF is
/// imported (Hugging Face names, dequantized, q/k rows unpermuted) unless `raw`, which
/// dumps every tensor under its GGUF name, only dequantized. `names` empty: all tensors.
/// With `quant` other than "none", runs the compile pipeline of that scheme first and
/// writes the tensors the compiled IR reads, each in its stored dtype (u8, f16, f32, ...;
/// bf16 as uint16 bits), plus the IR as module.mlir. Errors are CompileErrors (bad
/// input: exit code 2).
llvm::Error dumpWeights(const std::string &source, const std::string &outDir,
                        const std::vector<std::string> &names, bool raw,
                        const std::string &quant = "none", int64_t groupSize = -1);

/// The Hugging Face tokenizer.json text qlc synthesizes from a GGUF file's metadata.
llvm::Expected<std::string> ggufTokenizerJson(const std::string &path);

} // namespace qlc

#endif // QLC_COMPILER_DUMPWEIGHTS_H
