//===- WeightStore.cpp - memory-mapped safetensors weights -----------------===//
#include "compiler/WeightStore.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using nlohmann::json;
namespace fs = std::filesystem;

namespace qlc {

namespace {
llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}
constexpr uint64_t kMaxHeader = 100ull << 20;
} // namespace

int64_t TensorRef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

llvm::Expected<std::unique_ptr<MappedFile>> MappedFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return err(path + ": not a regular file");
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void *p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return err(path + ": cannot map: " + std::strerror(errno));
    }
    f->data_ = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  return std::move(f);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr)
    munmap(const_cast<uint8_t *>(data_), size_);
}

llvm::Error WeightStore::addFile(const std::string &path) {
  auto fileOr = MappedFile::open(path);
  if (!fileOr)
    return fileOr.takeError();
  std::unique_ptr<MappedFile> file = std::move(*fileOr);
  const size_t size = file->size();
  if (size < 8)
    return err(path + ": truncated safetensors file (" + std::to_string(size) +
               " bytes, no header)");
  uint64_t headerLen = 0;
  std::memcpy(&headerLen, file->data(), 8);
  if (headerLen > size - 8 || headerLen > kMaxHeader)
    return err(path + ": safetensors header length " + std::to_string(headerLen) +
               " exceeds the file (" + std::to_string(size) + " bytes): truncated or not safetensors");
  json header;
  try {
    header = json::parse(file->data() + 8, file->data() + 8 + headerLen);
  } catch (const std::exception &e) {
    return err(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object())
    return err(path + ": safetensors header is not a JSON object");
  const uint64_t dataStart = 8 + headerLen, dataLen = size - dataStart;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__")
      continue;
    const std::string &name = it.key();
    const json &t = it.value();
    auto bad = [&](const std::string &why) {
      return err(path + ": tensor '" + name + "': " + why);
    };
    if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") ||
        !t.contains("data_offsets"))
      return bad("entry needs dtype, shape and data_offsets");
    if (!t["dtype"].is_string())
      return bad("dtype is not a string");
    auto dt = dtypeFromSafetensors(t["dtype"].get<std::string>());
    if (!dt)
      return bad("unsupported dtype '" + t["dtype"].get<std::string>() +
                 "' (supported: F32, F16, BF16, I32)");
    TensorRef ref;
    ref.name = name;
    ref.file = path;
    ref.dtype = *dt;
    if (!t["shape"].is_array())
      return bad("shape is not an array");
    uint64_t numel = 1;
    for (const json &d : t["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        return bad("shape has a negative or non-integer dimension");
      uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > (1ull << 48) / v)
        return bad("shape is too large");
      numel *= v;
      ref.shape.push_back(static_cast<int64_t>(v));
    }
    const json &off = t["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      return bad("data_offsets must be two non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > dataLen)
      return bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                 "] lie outside the data section of " + std::to_string(dataLen) +
                 " bytes (truncated file or lying header)");
    if (e - b != numel * dtypeSize(*dt))
      return bad("data_offsets span " + std::to_string(e - b) + " bytes but dtype " +
                 safetensorsName(*dt) + " and its shape need " +
                 std::to_string(numel * dtypeSize(*dt)));
    ref.data = file->data() + dataStart + b;
    ref.bytes = static_cast<size_t>(e - b);
    if (e > b)
      ranges.emplace_back(b, e);
    if (tensors_.count(name))
      return bad("defined twice (also in " + tensors_[name].file + ")");
    tensors_.emplace(name, std::move(ref));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return err(path + ": safetensors header has overlapping tensor data ranges");
  files_.push_back(std::move(file));
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<WeightStore>> WeightStore::loadFolder(const std::string &dir) {
  auto store = std::make_unique<WeightStore>();
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index)) {
    json j;
    try {
      std::ifstream in(index);
      j = json::parse(in);
    } catch (const std::exception &e) {
      return err(index.string() + ": not valid JSON: " + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      return err(index.string() + ": has no weight_map object");
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        return err(index.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      shards.insert(it.value().get<std::string>());
    }
    for (const std::string &s : shards) {
      if (s.find('/') != std::string::npos || s == "..")
        return err(index.string() + ": shard name '" + s + "' is not a plain file name");
      if (llvm::Error e = store->addFile((fs::path(dir) / s).string()))
        return std::move(e);
    }
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      const TensorRef *t = store->find(it.key());
      if (t == nullptr || fs::path(t->file).filename() != it.value().get<std::string>())
        return err(index.string() + ": tensor '" + it.key() + "' is not in shard " +
                   it.value().get<std::string>());
    }
  } else if (fs::exists(single)) {
    if (llvm::Error e = store->addFile(single.string()))
      return std::move(e);
  } else {
    return err(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  return std::move(store);
}

llvm::Error WeightStore::addOwned(std::string name, DType dtype, std::vector<int64_t> shape,
                                  std::vector<uint8_t> data, const std::string &source) {
  TensorRef ref;
  ref.name = std::move(name);
  ref.file = source;
  ref.dtype = dtype;
  ref.shape = std::move(shape);
  if (static_cast<uint64_t>(ref.numel()) * dtypeSize(dtype) != data.size())
    return err(source + ": tensor '" + ref.name + "': internal error: " +
               std::to_string(data.size()) + " bytes do not match its shape");
  owned_.push_back(std::move(data));
  ref.data = owned_.back().data();
  ref.bytes = owned_.back().size();
  return addRef(std::move(ref));
}

void WeightStore::replaceOwned(const std::string &name, DType dtype, std::vector<int64_t> shape,
                               std::vector<uint8_t> data) {
  TensorRef ref;
  ref.name = name;
  ref.file = "(computed by the compiler)";
  ref.dtype = dtype;
  ref.shape = std::move(shape);
  owned_.push_back(std::move(data));
  ref.data = owned_.back().data();
  ref.bytes = owned_.back().size();
  tensors_[name] = std::move(ref);
}

void WeightStore::adoptMapping(std::unique_ptr<MappedFile> file) {
  files_.push_back(std::move(file));
}

llvm::Error WeightStore::addRef(TensorRef ref) {
  if (tensors_.count(ref.name))
    return err(ref.file + ": tensor '" + ref.name + "' is defined twice");
  std::string name = ref.name;
  tensors_.emplace(std::move(name), std::move(ref));
  return llvm::Error::success();
}

const TensorRef *WeightStore::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

} // namespace qlc
