//===- Artifact.cpp - writing and reading qlc artifact files ---------------===//
#include "compiler/Artifact.h"
#include "ir/qlc_w4_tiles.h"

#include "qlc/abi.h"
#include "qlc/artifact_format.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unistd.h>

using nlohmann::json;

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

/// Appends to a file, tracking the offset and failing loudly.
class Sink {
public:
  explicit Sink(const std::string &path) : path(path), f(std::fopen(path.c_str(), "wb")) {}
  ~Sink() {
    if (f != nullptr)
      std::fclose(f);
  }
  bool ok() const { return f != nullptr && !failed; }
  void write(const void *p, size_t n, XXH3_state_t *hash = nullptr) {
    if (!ok() || n == 0)
      return;
    if (std::fwrite(p, 1, n, f) != n)
      failed = true;
    if (hash != nullptr)
      XXH3_64bits_update(hash, p, n);
    offset += n;
  }
  void padTo(uint64_t align, XXH3_state_t *hash = nullptr) {
    static const char zeros[QLC_ARTIFACT_PAGE] = {};
    uint64_t pad = (align - offset % align) % align;
    write(zeros, pad, hash);
  }
  bool close() {
    bool good = ok() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
    good = std::fclose(f) == 0 && good;
    f = nullptr;
    return good;
  }
  std::string path;
  uint64_t offset = 0;

private:
  FILE *f;
  bool failed = false;
};

} // namespace

/// The bytes of a weight stored in a layout of ir/qlc_w4_tiles.h (PackedWeight::layout):
/// the int4 codes in tiles, or the scales (and zeros) as 8-byte entries.
static llvm::Expected<std::vector<uint8_t>> tiledBytes(const PackedWeight &w, const TensorRef &t,
                                                       const WeightStore &store) {
  const int64_t K = w.K, N = w.N, G = w.G, groups = w4tiles::groups(K, G);
  auto bad = [&](const std::string &why) {
    return err("weight '" + w.name + "' (" + w.layout + "): " + why);
  };
  if (!w4tiles::applies(K, N, G))
    return bad("the tile layout does not apply to these shapes");
  if (w.layout == "w4_tiles") {
    if (t.dtype != DType::U8 || t.numel() != N * K / 2)
      return bad("expected " + std::to_string(N * K / 2) + " u8 codes");
    std::vector<uint8_t> out(static_cast<size_t>(N * K / 2));
    w4tiles::pack_codes(K, N, t.data, out.data());
    return out;
  }
  if (w.layout != "w4_tile_entries")
    return bad("unknown layout");
  if (t.numel() != N * groups)
    return bad("expected " + std::to_string(N * groups) + " scales");
  std::vector<uint16_t> scales(static_cast<size_t>(N * groups));
  if (!convertElements(t.data, t.dtype, scales.data(), DType::F16, scales.size()))
    return bad("cannot convert the scales to f16");
  const uint8_t *zeros = nullptr;
  if (!w.zeros.empty()) {
    const TensorRef *z = store.find(w.zeros);
    if (z == nullptr || z->dtype != DType::U8 || z->numel() != N * groups)
      return bad("zeros '" + w.zeros + "' missing or not " + std::to_string(N * groups) + " u8");
    zeros = z->data;
  }
  std::vector<uint8_t> out(static_cast<size_t>(w4tiles::entry_bytes(K, N, G)));
  w4tiles::pack_scales(K, N, G, scales.data(), zeros, reinterpret_cast<uint16_t *>(out.data()));
  return out;
}

llvm::Error writeArtifact(const std::string &out, const std::string &codePath,
                          const std::vector<PackedWeight> &weights, const WeightStore &store,
                          json manifest, const std::function<void(double)> &progress) {
  auto codeOr = MappedFile::open(codePath);
  if (!codeOr)
    return codeOr.takeError();
  const MappedFile &code = **codeOr;
  const std::string tmp = out + ".tmp." + std::to_string(getpid());
  struct Cleanup {
    const std::string &p;
    bool keep = false;
    ~Cleanup() {
      if (!keep)
        std::remove(p.c_str());
    }
  } cleanup{tmp};
  Sink sink(tmp);
  if (!sink.ok())
    return err(out + ": cannot write: " + std::strerror(errno));

  sink.write(code.data(), code.size());
  const uint64_t codeSize = code.size();
  const std::string codeHash = hex64(XXH3_64bits(code.data(), code.size()));
  sink.padTo(QLC_ARTIFACT_PAGE);

  const uint64_t weightsOffset = sink.offset;
  XXH3_state_t *hash = XXH3_createState();
  XXH3_64bits_reset(hash);
  json table = json::array();
  uint64_t total = 0, done = 0;
  for (const PackedWeight &w : weights)
    if (const TensorRef *t = store.find(w.name))
      total += t->numel();
  std::vector<uint8_t> buf;
  for (const PackedWeight &w : weights) {
    const TensorRef *t = store.find(w.name);
    if (t == nullptr) {
      XXH3_freeState(hash);
      return err("internal error: weight '" + w.name + "' is not in the weight store");
    }
    sink.padTo(64, hash);
    const uint64_t off = sink.offset - weightsOffset;
    if (!w.layout.empty()) { // ir/qlc_w4_tiles.h
      auto bytes = tiledBytes(w, *t, store);
      if (!bytes) {
        XXH3_freeState(hash);
        return bytes.takeError();
      }
      sink.write(bytes->data(), bytes->size(), hash);
      done += t->numel();
      if (progress && total > 0)
        progress(static_cast<double>(done) / static_cast<double>(total));
      table.push_back({{"name", w.name},
                       {"dtype", w.dtype},
                       {"shape", w.shape},
                       {"source_dtype", shortName(t->dtype)},
                       {"offset", off},
                       {"bytes", bytes->size()},
                       {"layout", w.layout}});
      continue;
    }
    auto to = dtypeFromShortName(w.dtype);
    const size_t n = static_cast<size_t>(t->numel()), esz = dtypeSize(*to);
    constexpr size_t kChunk = 1 << 20;
    for (size_t i = 0; i < n; i += kChunk) {
      size_t c = std::min(kChunk, n - i);
      buf.resize(c * esz);
      if (!convertElements(t->data + i * dtypeSize(t->dtype), t->dtype, buf.data(), *to, c)) {
        XXH3_freeState(hash);
        return err("weight '" + w.name + "': cannot convert " + shortName(t->dtype) + " to " +
                   w.dtype);
      }
      sink.write(buf.data(), buf.size(), hash);
      done += c;
      if (progress && total > 0)
        progress(static_cast<double>(done) / static_cast<double>(total));
    }
    table.push_back({{"name", w.name}, {"dtype", w.dtype}, {"shape", w.shape},
                     {"source_dtype", shortName(t->dtype)}, {"offset", off},
                     {"bytes", n * esz}});
  }
  sink.padTo(64, hash);
  const uint64_t weightsSize = sink.offset - weightsOffset;
  manifest["weights"] = table;
  manifest["checksums"] = {{"algorithm", "xxh3-64"},
                           {"code", codeHash},
                           {"weights", hex64(XXH3_64bits_digest(hash))}};
  XXH3_freeState(hash);

  const std::string text = manifest.dump(1);
  const uint64_t manifestOffset = sink.offset;
  sink.write(text.data(), text.size());
  qlc_artifact_footer f{};
  std::memcpy(f.magic, QLC_ARTIFACT_MAGIC, 8);
  f.format_version = QLC_ARTIFACT_FORMAT_VERSION;
  f.code_size = codeSize;
  f.manifest_offset = manifestOffset;
  f.manifest_size = text.size();
  f.manifest_hash = static_cast<uint32_t>(XXH3_64bits(text.data(), text.size()));
  f.weights_offset = weightsOffset;
  f.weights_size = weightsSize;
  f.footer_hash = XXH3_64bits(&f, offsetof(qlc_artifact_footer, footer_hash));
  sink.write(&f, sizeof f);
  if (!sink.close())
    return err(out + ": write failed: " + std::strerror(errno));
  if (std::rename(tmp.c_str(), out.c_str()) != 0)
    return err(out + ": cannot rename the finished artifact into place: " + std::strerror(errno));
  cleanup.keep = true;
  return llvm::Error::success();
}

llvm::Expected<json> readArtifactManifest(const std::string &path) {
  auto fileOr = MappedFile::open(path);
  if (!fileOr)
    return fileOr.takeError();
  const MappedFile &file = **fileOr;
  qlc_artifact_footer f;
  if (file.size() < sizeof f)
    return err(path + ": too small to be a qlc artifact");
  std::memcpy(&f, file.data() + file.size() - sizeof f, sizeof f);
  if (std::memcmp(f.magic, QLC_ARTIFACT_MAGIC, 8) != 0)
    return err(path + ": not a qlc artifact, or truncated (no footer at its end)");
  if (XXH3_64bits(&f, offsetof(qlc_artifact_footer, footer_hash)) != f.footer_hash)
    return err(path + ": artifact footer is corrupted");
  const uint64_t body = file.size() - sizeof f;
  if (f.manifest_offset > body || f.manifest_size > body - f.manifest_offset)
    return err(path + ": manifest lies outside the file");
  if (static_cast<uint32_t>(XXH3_64bits(file.data() + f.manifest_offset, f.manifest_size)) !=
      f.manifest_hash)
    return err(path + ": manifest checksum mismatch (file corrupted)");
  try {
    return json::parse(file.data() + f.manifest_offset,
                       file.data() + f.manifest_offset + f.manifest_size);
  } catch (const std::exception &e) {
    return err(path + ": manifest is not valid JSON: " + e.what());
  }
}

} // namespace qlc
