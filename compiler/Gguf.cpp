//===- Gguf.cpp - reading GGUF files ---------------------------------------===//
#include "compiler/Gguf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

// Limits well above any real model, so a corrupted count fails cleanly instead of
// allocating without bound.
constexpr uint32_t kMaxDims = 4; // GGML_MAX_DIMS
constexpr uint64_t kMaxKeyLen = 65535;
constexpr uint64_t kMaxTensorNameLen = 1024;         // ggml itself allows 63 bytes
constexpr uint64_t kMaxElements = uint64_t{1} << 48; // per tensor
constexpr int kMaxArrayDepth = 4;

struct TypeRow {
  uint32_t id;
  GgmlTypeInfo info;
};
// Block geometry as in gguf-py's GGML_QUANT_SIZES.
constexpr TypeRow kTypes[] = {
    {0, {"F32", 1, 4, true}},          {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},       {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, true}},       {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},       {9, {"Q8_1", 32, 40, false}},
    {10, {"Q2_K", 256, 84, false}},    {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, 144, true}},    {13, {"Q5_K", 256, 176, false}},
    {14, {"Q6_K", 256, 210, true}},    {15, {"Q8_K", 256, 292, false}},
    {16, {"IQ2_XXS", 256, 66, false}}, {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},   {21, {"IQ3_S", 256, 110, false}},
    {22, {"IQ2_S", 256, 82, false}},   {23, {"IQ4_XS", 256, 136, false}},
    {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},        {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},        {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},        {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},   {39, {"MXFP4", 32, 17, false}},
    {40, {"NVFP4", 64, 36, false}},    {41, {"Q1_0", 128, 18, false}},
};

size_t scalarSize(GgufValueType t) {
  switch (t) {
  case GgufValueType::Uint8:
  case GgufValueType::Int8:
  case GgufValueType::Bool:
    return 1;
  case GgufValueType::Uint16:
  case GgufValueType::Int16:
    return 2;
  case GgufValueType::Uint32:
  case GgufValueType::Int32:
  case GgufValueType::Float32:
    return 4;
  case GgufValueType::Uint64:
  case GgufValueType::Int64:
  case GgufValueType::Float64:
    return 8;
  default:
    return 0;
  }
}

bool knownValueType(uint32_t t) { return t <= 12; }

} // namespace

const char *ggufValueTypeName(GgufValueType t) {
  static const char *names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                "int32",  "float32", "bool",   "string", "array",
                                "uint64", "int64",   "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

bool GgufValue::isInteger() const {
  return !isArray() && !isFloat() && type != GgufValueType::String;
}

std::string printable(const std::string &s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size() && c >= 0x20 && c != 0x7f;
    for (size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n > 1 && (c == 0xC0 || c == 0xC1 || c > 0xF4))
      ok = false;
    if (!ok) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      continue;
    }
    out.append(s, i, n);
    i += n - 1;
  }
  return out;
}

std::optional<GgmlTypeInfo> ggmlTypeInfo(uint32_t id) {
  for (const TypeRow &r : kTypes)
    if (r.id == id)
      return r.info;
  return std::nullopt;
}

std::string dequantizableTypeList() {
  std::string s;
  for (const TypeRow &r : kTypes)
    if (r.info.dequantizable)
      s += (s.empty() ? "" : ", ") + std::string(r.info.name);
  return s;
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne)
    n *= d;
  return n;
}

/// Reads the file front to back with bounds checks; the first problem wins.
class GgufParser {
public:
  GgufParser(GgufFile &g) : g(g), p(g.file_->data()), size(g.file_->size()) {}

  llvm::Error parse();

private:
  llvm::Error fail(const std::string &what) { return err(g.path_ + ": " + what); }
  llvm::Error truncated(const std::string &where) {
    return fail("truncated GGUF file: it ends (at " + std::to_string(size) + " bytes) inside " +
                where);
  }
  template <typename T> bool read(T &v) {
    if (size - pos < sizeof(T))
      return false;
    std::memcpy(&v, p + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
  /// Reads a length-prefixed string; `what` names it in errors.
  llvm::Error readString(std::string &s, const std::string &what, uint64_t maxLen);
  llvm::Error readValue(GgufValue &v, GgufValueType t, const std::string &key, int depth);
  llvm::Error readKv(uint64_t index);
  llvm::Error readTensorInfo(GgufTensorInfo &t, size_t index);

  GgufFile &g;
  const uint8_t *p;
  size_t size;
  size_t pos = 0;
};

llvm::Error GgufParser::readString(std::string &s, const std::string &what, uint64_t maxLen) {
  uint64_t len = 0;
  if (!read(len))
    return truncated("the length of the " + what);
  if (len > size - pos)
    return fail(what + ": string length " + std::to_string(len) +
                " runs past the end of the file (" + std::to_string(size - pos) +
                " bytes left; truncated or corrupted)");
  if (len > maxLen)
    return fail(what + ": string length " + std::to_string(len) + " exceeds the limit of " +
                std::to_string(maxLen));
  s.assign(reinterpret_cast<const char *>(p + pos), len);
  pos += len;
  return llvm::Error::success();
}

llvm::Error GgufParser::readValue(GgufValue &v, GgufValueType t, const std::string &key,
                                  int depth) {
  v.type = t;
  const std::string where = "metadata key '" + printable(key) + "'";
  switch (t) {
  case GgufValueType::String:
    return readString(v.s, where, size);
  case GgufValueType::Array: {
    uint32_t et = 0;
    if (!read(et) || !read(v.count))
      return truncated("the array header of " + where);
    if (!knownValueType(et))
      return fail(where + ": unknown array element type " + std::to_string(et));
    v.elemType = static_cast<GgufValueType>(et);
    if (v.elemType == GgufValueType::Array && depth >= kMaxArrayDepth)
      return fail(where + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    // Every element takes at least one byte (strings eight, nested arrays twelve), so a
    // count larger than the rest of the file is a lie; catch it before allocating.
    size_t minElem = scalarSize(v.elemType);
    if (v.elemType == GgufValueType::String)
      minElem = 8;
    if (v.elemType == GgufValueType::Array)
      minElem = 12;
    if (v.count > (size - pos) / minElem)
      return fail(where + ": array of " + std::to_string(v.count) + " " +
                  ggufValueTypeName(v.elemType) + " elements runs past the end of the file");
    GgufValue e;
    for (uint64_t i = 0; i < v.count; ++i) {
      if (llvm::Error x = readValue(e, v.elemType, key, depth + 1))
        return x;
      if (v.elemType == GgufValueType::String)
        v.strings.push_back(std::move(e.s));
      else if (v.elemType == GgufValueType::Array)
        v.items.push_back(std::move(e));
      else if (e.isFloat())
        v.floats.push_back(e.f);
      else
        v.ints.push_back(e.i);
      e = GgufValue();
    }
    return llvm::Error::success();
  }
  default:
    break;
  }
  size_t n = scalarSize(t);
  if (size - pos < n)
    return truncated("the value of " + where);
  const uint8_t *q = p + pos;
  pos += n;
  auto get = [&](auto x) {
    std::memcpy(&x, q, sizeof x);
    return x;
  };
  switch (t) {
  case GgufValueType::Uint8:
    v.i = get(uint8_t());
    break;
  case GgufValueType::Int8:
    v.i = get(int8_t());
    break;
  case GgufValueType::Uint16:
    v.i = get(uint16_t());
    break;
  case GgufValueType::Int16:
    v.i = get(int16_t());
    break;
  case GgufValueType::Uint32:
    v.i = get(uint32_t());
    break;
  case GgufValueType::Int32:
    v.i = get(int32_t());
    break;
  case GgufValueType::Bool:
    v.i = get(uint8_t()) != 0;
    break;
  case GgufValueType::Uint64:
    v.u = get(uint64_t());
    v.i = static_cast<int64_t>(v.u);
    break;
  case GgufValueType::Int64:
    v.i = get(int64_t());
    break;
  case GgufValueType::Float32:
    v.f = get(float());
    break;
  case GgufValueType::Float64:
    v.f = get(double());
    break;
  default:
    break;
  }
  if (t != GgufValueType::Uint64)
    v.u = static_cast<uint64_t>(v.i);
  return llvm::Error::success();
}

llvm::Error GgufParser::readKv(uint64_t index) {
  std::string key;
  if (llvm::Error e = readString(key, "name of metadata key #" + std::to_string(index), kMaxKeyLen))
    return e;
  uint32_t type = 0;
  if (!read(type))
    return truncated("the type of metadata key '" + printable(key) + "'");
  if (!knownValueType(type))
    return fail("metadata key '" + printable(key) + "' has unknown value type " +
                std::to_string(type));
  GgufValue v;
  if (llvm::Error e = readValue(v, static_cast<GgufValueType>(type), key, 0))
    return e;
  if (g.metadata_.count(key))
    return fail("metadata key '" + printable(key) + "' appears twice");
  g.keys_.push_back(key);
  g.metadata_.emplace(key, std::move(v));
  return llvm::Error::success();
}

llvm::Error GgufParser::readTensorInfo(GgufTensorInfo &t, size_t index) {
  if (llvm::Error e =
          readString(t.name, "name of tensor #" + std::to_string(index), kMaxTensorNameLen))
    return e;
  const std::string where = "tensor '" + printable(t.name) + "'";
  uint32_t nDims = 0;
  if (!read(nDims))
    return truncated("the dimension count of " + where);
  if (nDims == 0 || nDims > kMaxDims)
    return fail(where + ": " + std::to_string(nDims) + " dimensions (1 to " +
                std::to_string(kMaxDims) + " allowed)");
  uint64_t numel = 1;
  for (uint32_t d = 0; d < nDims; ++d) {
    uint64_t ne = 0;
    if (!read(ne))
      return truncated("the dimensions of " + where);
    if (ne > kMaxElements || (ne != 0 && numel > kMaxElements / ne))
      return fail(where + ": dimension " + std::to_string(d) + " = " + std::to_string(ne) +
                  " makes the tensor absurdly large (limit 2^48 elements)");
    numel *= ne;
    t.ne.push_back(static_cast<int64_t>(ne));
  }
  uint32_t type = 0;
  if (!read(type) || !read(t.offset))
    return truncated("the type and offset of " + where);
  auto info = ggmlTypeInfo(type);
  if (!info)
    return fail(where + " has unknown ggml type id " + std::to_string(type));
  t.type = static_cast<GgmlType>(type);
  if (t.ne[0] % info->blockSize != 0)
    return fail(where + ": row length " + std::to_string(t.ne[0]) + " is not a multiple of " +
                info->name + "'s block size " + std::to_string(info->blockSize));
  t.bytes = static_cast<size_t>(numel / info->blockSize * info->typeSize);
  return llvm::Error::success();
}

llvm::Error GgufParser::parse() {
  char magic[4];
  if (size < 4 || (std::memcpy(magic, p, 4), std::memcmp(magic, "GGUF", 4) != 0))
    return fail("not a GGUF file (bad magic; expected \"GGUF\")");
  pos = 4;
  uint32_t version = 0;
  uint64_t nTensors = 0, nKv = 0;
  if (!read(version))
    return truncated("the header");
  if (version == 1)
    return fail("GGUF version 1 is not supported (convert the model again; versions 2 and 3 are)");
  if (version != 2 && version != 3) {
    if ((version & 0xffff) == 0 && (version >> 24) <= 3)
      return fail("big-endian GGUF files are not supported");
    return fail("unsupported GGUF version " + std::to_string(version) + " (2 and 3 are)");
  }
  g.version_ = version;
  if (!read(nTensors) || !read(nKv))
    return truncated("the header");
  // A key-value pair takes at least 12 bytes and a tensor info at least 24.
  if (nKv > (size - pos) / 12)
    return fail("header claims " + std::to_string(nKv) + " metadata entries, more than the file (" +
                std::to_string(size) + " bytes) can hold");
  if (nTensors > (size - pos) / 24)
    return fail("header claims " + std::to_string(nTensors) + " tensors, more than the file (" +
                std::to_string(size) + " bytes) can hold");
  for (uint64_t i = 0; i < nKv; ++i)
    if (llvm::Error e = readKv(i))
      return e;
  if (const GgufValue *a = g.find("general.alignment")) {
    if (a->type != GgufValueType::Uint32 || a->i == 0 || (a->i & (a->i - 1)) != 0)
      return fail(
          "general.alignment must be a uint32 power of two, got " +
          (a->isInteger() ? std::to_string(a->i) : std::string(ggufValueTypeName(a->type))));
    g.alignment_ = static_cast<uint64_t>(a->i);
  }
  g.tensors_.resize(nTensors);
  for (uint64_t i = 0; i < nTensors; ++i) {
    if (llvm::Error e = readTensorInfo(g.tensors_[i], i))
      return e;
    if (!g.tensorIndex_.emplace(g.tensors_[i].name, i).second)
      return fail("tensor '" + printable(g.tensors_[i].name) + "' appears twice");
  }
  uint64_t dataStart = (pos + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  if (nTensors > 0 && dataStart > size)
    return truncated("the padding before the tensor data");
  const uint64_t dataLen = nTensors > 0 ? size - dataStart : 0;
  std::vector<std::pair<uint64_t, size_t>> ranges;
  for (GgufTensorInfo &t : g.tensors_) {
    if (t.offset % g.alignment_ != 0)
      return fail("tensor '" + printable(t.name) + "': data offset " + std::to_string(t.offset) +
                  " is not a multiple of the alignment " + std::to_string(g.alignment_));
    if (t.offset > dataLen || t.bytes > dataLen - t.offset)
      return fail("tensor '" + printable(t.name) + "': data [" + std::to_string(t.offset) + ", " +
                  std::to_string(t.offset + t.bytes) + ") lies beyond the data section of " +
                  std::to_string(dataLen) + " bytes (truncated file or bad offset)");
    t.data = p + dataStart + t.offset;
    ranges.emplace_back(t.offset, &t - g.tensors_.data());
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    const GgufTensorInfo &prev = g.tensors_[ranges[i - 1].second];
    if (ranges[i].first < prev.offset + prev.bytes && prev.bytes > 0)
      return fail("tensor '" + printable(g.tensors_[ranges[i].second].name) +
                  "' overlaps the data of tensor '" + printable(prev.name) + "'");
  }
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<GgufFile>> GgufFile::open(const std::string &path) {
  auto fileOr = MappedFile::open(path);
  if (!fileOr)
    return fileOr.takeError();
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->path_ = path;
  g->file_ = std::move(*fileOr);
  GgufParser parser(*g);
  if (llvm::Error e = parser.parse())
    return std::move(e);
  return std::move(g);
}

const GgufValue *GgufFile::find(const std::string &key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo *GgufFile::findTensor(const std::string &name) const {
  auto it = tensorIndex_.find(name);
  return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

} // namespace qlc
