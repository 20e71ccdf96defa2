//===- WeightStore.h - memory-mapped safetensors weights -------*- C++ -*-===//
#ifndef QLC_COMPILER_WEIGHTSTORE_H
#define QLC_COMPILER_WEIGHTSTORE_H

#include "compiler/DType.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qlc {

/// One tensor of a safetensors file, pointing into the file's mapping.
struct TensorRef {
  std::string name;
  std::string file;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
  int64_t numel() const;
};

/// A read-only memory mapping of one file.
class MappedFile {
public:
  static llvm::Expected<std::unique_ptr<MappedFile>> open(const std::string &path);
  ~MappedFile();
  const uint8_t *data() const { return data_; }
  size_t size() const { return size_; }
  const std::string &path() const { return path_; }

private:
  MappedFile() = default;
  std::string path_;
  const uint8_t *data_ = nullptr;
  size_t size_ = 0;
};

/// Tensors by name from one safetensors file or a sharded set. The IR refers to these
/// by name; data is read straight from the mapping when the artifact is written.
class WeightStore {
public:
  /// Loads `dir`/model.safetensors, or the shards listed by
  /// `dir`/model.safetensors.index.json. Every header is validated.
  static llvm::Expected<std::unique_ptr<WeightStore>> loadFolder(const std::string &dir);
  /// Parses and validates one safetensors file and adds its tensors.
  llvm::Error addFile(const std::string &path);

  /// Adds a tensor whose bytes the store owns (e.g. dequantized from a GGUF block
  /// format); `source` names the file it came from. Fails on a duplicate name.
  llvm::Error addOwned(std::string name, DType dtype, std::vector<int64_t> shape,
                       std::vector<uint8_t> data, const std::string &source);
  /// Adds a tensor the store owns, replacing any of the same name (passes' outputs).
  void replaceOwned(const std::string &name, DType dtype, std::vector<int64_t> shape,
                    std::vector<uint8_t> data);
  /// Keeps `file` alive for tensors added with addRef that point into its mapping.
  void adoptMapping(std::unique_ptr<MappedFile> file);
  /// Adds a tensor that points into a mapping the store holds. Fails on a duplicate name.
  llvm::Error addRef(TensorRef ref);

  const TensorRef *find(const std::string &name) const;
  const std::map<std::string, TensorRef> &tensors() const { return tensors_; }

private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorRef> tensors_;
  std::deque<std::vector<uint8_t>> owned_;
};

} // namespace qlc

#endif // QLC_COMPILER_WEIGHTSTORE_H
