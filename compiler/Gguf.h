//===- Gguf.h - reading GGUF files (llama.cpp's model format) --*- C++ -*-===//
//
// A GGUF file is a header (magic "GGUF", version, tensor and key-value counts), typed
// metadata key-value pairs, tensor infos (name, dims, ggml type, offset) and an aligned
// data section. GgufFile memory-maps the file and validates all of it up front, so every
// later read is in bounds; problems are reported naming the file (and the key or tensor).
//
//===----------------------------------------------------------------------===//
#ifndef QLC_COMPILER_GGUF_H
#define QLC_COMPILER_GGUF_H

#include "compiler/WeightStore.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qlc {

/// Metadata value types, numbered as in the GGUF specification.
enum class GgufValueType : uint32_t {
  Uint8 = 0,
  Int8 = 1,
  Uint16 = 2,
  Int16 = 3,
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
  Int64 = 11,
  Float64 = 12,
};
const char *ggufValueTypeName(GgufValueType t);

/// One metadata value. Scalars: integers and booleans in `i` (uint64 values above
/// INT64_MAX also in `u`), floats in `f`, strings in `s`. Arrays: `elemType` and `count`,
/// with the elements in `ints`, `floats` or `strings` by element type, or in `items`
/// for arrays of arrays.
struct GgufValue {
  GgufValueType type = GgufValueType::Uint8;
  GgufValueType elemType = GgufValueType::Uint8;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  uint64_t count = 0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufValue> items;

  bool isArray() const { return type == GgufValueType::Array; }
  bool isInteger() const;
  bool isFloat() const { return type == GgufValueType::Float32 || type == GgufValueType::Float64; }
};

/// ggml tensor types, numbered as in ggml.h. Only the ones qlc knows the block layout of
/// are listed; other ids are rejected when the file is opened.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

/// Block geometry of a ggml type: `blockSize` elements take `typeSize` bytes.
struct GgmlTypeInfo {
  const char *name;
  uint32_t blockSize;
  uint32_t typeSize;
  bool dequantizable; // qlc can convert it to float32
};
/// The geometry of type id `id`, or nullopt for an id ggml does not define.
std::optional<GgmlTypeInfo> ggmlTypeInfo(uint32_t id);
/// "F32, F16, BF16, Q8_0, ...": the types qlc dequantizes, for error messages.
std::string dequantizableTypeList();

/// `s` made safe for a one-line error message: control characters and bytes that are not
/// UTF-8 escaped as \xNN, cut to about `max` bytes.
std::string printable(const std::string &s, size_t max = 80);

/// Converts `n` elements (a multiple of the type's block size) at `src` to float32,
/// exactly as gguf-py's `gguf.quants.dequantize` does. Returns false for a type that is
/// not dequantizable.
bool dequantizeGgml(GgmlType type, const uint8_t *src, float *dst, size_t n);

/// One tensor of a GGUF file. `ne` is in ggml order (ne[0] varies fastest); the
/// row-major shape a Hugging Face checkpoint would give it is `ne` reversed.
struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0; // from the start of the data section
  const uint8_t *data = nullptr;
  size_t bytes = 0;
  int64_t numel() const;
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

/// A validated, memory-mapped GGUF file (version 2 or 3, little-endian).
class GgufFile {
public:
  static llvm::Expected<std::unique_ptr<GgufFile>> open(const std::string &path);

  const std::string &path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  /// Keys in file order.
  const std::vector<std::string> &keys() const { return keys_; }
  const GgufValue *find(const std::string &key) const;
  const std::vector<GgufTensorInfo> &tensors() const { return tensors_; }
  const GgufTensorInfo *findTensor(const std::string &name) const;
  /// Hands the mapping over (to a weight store whose tensors point into it); the
  /// tensor infos stay valid as long as the mapping lives.
  std::unique_ptr<MappedFile> releaseMapping() { return std::move(file_); }

private:
  GgufFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::string> keys_;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensorIndex_;
  friend class GgufParser;
};

} // namespace qlc

#endif // QLC_COMPILER_GGUF_H
