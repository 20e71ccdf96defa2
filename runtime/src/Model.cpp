//===- Model.cpp - loading and checking a qlc artifact ---------------------===//
#include "Buffers.h"
#include "Internal.h"
#include "qlc/artifact_format.h"

#include <nlohmann/json.hpp>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using nlohmann::json;
using qlc::rt::fail;

qlc_model::~qlc_model() {
  deviceWeights.reset(); // through the artifact's code: before it is unloaded
  if (dl != nullptr)
    dlclose(dl);
  if (map != nullptr)
    munmap(map, mapSize);
  if (fd >= 0)
    close(fd);
}

namespace {

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool cpuHas(const std::string &f) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (f == "sse4.2") return __builtin_cpu_supports("sse4.2");
  if (f == "avx") return __builtin_cpu_supports("avx");
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "f16c") return __builtin_cpu_supports("f16c");
  if (f == "bmi2") return __builtin_cpu_supports("bmi2");
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (f == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (f == "avx512dq") return __builtin_cpu_supports("avx512dq");
  if (f == "avx512cd") return __builtin_cpu_supports("avx512cd");
  if (f == "avx512vnni") return __builtin_cpu_supports("avx512vnni");
#endif
  return false;
}

/// Checks that the artifact's target can run here.
qlc_status checkTarget(const json &target, const std::string &path) {
  std::string kind = target.value("kind", "");
  std::string name = target.value("name", "?");
  if (kind == "cuda")
    return QLC_OK; // the artifact's own code checks the GPU (qlc_device_api::init)
  if (kind != "x86")
    return fail(QLC_ERR_TARGET, path + ": artifact targets " + name + " (" + kind +
                                    "), which this runtime cannot run: it runs x86 and "
                                    "CUDA artifacts");
#if !defined(__x86_64__)
  return fail(QLC_ERR_TARGET, path + ": artifact targets x86-64 but this machine is not");
#endif
  for (const auto &f : target.value("features", json::array())) {
    std::string feat = f.get<std::string>();
    if (!cpuHas(feat))
      return fail(QLC_ERR_TARGET, path + ": artifact targets " + name + ", which needs the CPU "
                                                                        "feature '" +
                                      feat + "' that this machine lacks; recompile with "
                                             "--target native");
  }
  return QLC_OK;
}

qlc_status parseManifest(qlc_model &m, const qlc_artifact_footer &f, bool verifyWeights) {
  const uint8_t *base = static_cast<const uint8_t *>(m.map);
  json man;
  try {
    man = json::parse(m.manifestText);
  } catch (const std::exception &e) {
    return fail(QLC_ERR_FORMAT, m.path + ": manifest is not valid JSON: " + e.what());
  }
  try {
    if (man.at("format").get<std::string>() != "qlc-artifact")
      return fail(QLC_ERR_FORMAT, m.path + ": manifest format is not qlc-artifact");
    if (man.at("abi_version").get<uint32_t>() != QLC_ABI_VERSION)
      return fail(QLC_ERR_FORMAT,
                  m.path + ": artifact ABI version " +
                      std::to_string(man.at("abi_version").get<uint32_t>()) +
                      " differs from this runtime's " + std::to_string(QLC_ABI_VERSION) +
                      "; recompile it with this qlc");
    if (qlc_status s = checkTarget(man.at("target"), m.path))
      return s;
    const json &sums = man.at("checksums");
    std::string code = hex64(XXH3_64bits(base, f.code_size));
    if (code != sums.at("code").get<std::string>())
      return fail(QLC_ERR_FORMAT, m.path + ": code checksum mismatch (file corrupted)");
    if (verifyWeights) {
      std::string w = hex64(XXH3_64bits(base + f.weights_offset, f.weights_size));
      if (w != sums.at("weights").get<std::string>())
        return fail(QLC_ERR_FORMAT, m.path + ": weights checksum mismatch (file corrupted)");
    }
    m.isCuda = man.at("target").value("kind", "") == "cuda";
    const json &model = man.at("model");
    m.vocab = model.at("vocab_size").get<int32_t>();
    m.numLayers = model.at("num_layers").get<int32_t>();
    m.kvDim = model.at("num_kv_heads").get<int32_t>() * model.at("head_dim").get<int32_t>();
    m.maxSeqLen = model.at("max_seq_len").get<int64_t>();
    const json &exec = man.at("exec");
    m.maxTokens = exec.at("max_tokens").get<int64_t>();
    m.scratchBytes = exec.at("scratch_bytes").get<int64_t>();
    // The activation plan compiled into the code (artifacts before qlc-plan-buffers
    // have none): a corrupt one is refused before any session uses the arena.
    if (exec.contains("activations"))
      if (std::string why = qlc::rt::checkActivationPlan(exec.at("activations"), m.maxTokens,
                                                         m.scratchBytes);
          !why.empty())
        return fail(QLC_ERR_FORMAT, m.path + ": manifest's activation plan (exec.activations) "
                                             "is inconsistent: " + why);
    // The row of a KV head per storage type (codegen/x86/kernels/qlc_x86_kv.h): the
    // kernels index the cache by it, so a manifest that says otherwise is refused.
    const json &kv = exec.at("kv_cache");
    const std::string kvDtype = kv.at("dtype").get<std::string>();
    const int64_t hd = model.at("head_dim").get<int32_t>();
    const int64_t kvHeads = model.at("num_kv_heads").get<int32_t>();
    if (hd <= 0 || kvHeads <= 0 || m.numLayers <= 0)
      return fail(QLC_ERR_FORMAT, m.path + ": manifest has non-positive sizes");
    const int64_t headBytes = kvDtype == "f32" ? 4 * hd : kvDtype == "f16" ? 2 * hd
                              : kvDtype == "int8" ? 4 + (hd + 3) / 4 * 4 : -1;
    if (headBytes < 0)
      return fail(QLC_ERR_FORMAT, m.path + ": unknown KV cache dtype '" + kvDtype + "'");
    int64_t rowBytes = 0;
    if (__builtin_mul_overflow(kvHeads, headBytes, &rowBytes) ||
        __builtin_mul_overflow(int64_t{2} * m.numLayers, rowBytes, &m.kvPositionBytes))
      return fail(QLC_ERR_FORMAT, m.path + ": KV cache rows too large");
    if (kv.contains("bytes_per_position") &&
        kv.at("bytes_per_position").get<int64_t>() != m.kvPositionBytes)
      return fail(QLC_ERR_FORMAT, m.path + ": KV cache bytes_per_position " +
                                      kv.at("bytes_per_position").dump() + " differs from the " +
                                      std::to_string(m.kvPositionBytes) + " of a " + kvDtype +
                                      " cache of this model");
    // The paged cache (qlc-plan-kv-cache): page size is a constant of the kernels.
    m.kvPageSize = kv.at("page_size").get<int64_t>();
    m.kvPlanPages = kv.at("pages").get<int64_t>();
    m.kvBudgetBytes = kv.value("budget_bytes", int64_t{0});
    if (m.kvPageSize <= 0 || m.kvPageSize > 65536 || m.kvPlanPages <= 0 ||
        m.kvPlanPages > INT32_MAX || m.kvBudgetBytes < 0)
      return fail(QLC_ERR_FORMAT, m.path + ": KV cache plan has a page_size " +
                                      std::to_string(m.kvPageSize) + " or pages " +
                                      std::to_string(m.kvPlanPages) + " out of range");
    if (__builtin_mul_overflow(m.kvPageSize, m.kvPositionBytes, &m.kvPageBytes) ||
        kv.value("page_bytes", m.kvPageBytes) != m.kvPageBytes)
      return fail(QLC_ERR_FORMAT, m.path + ": KV cache page_bytes " +
                                      kv.value("page_bytes", json()).dump() + " differs from " +
                                      "page_size x bytes_per_position");
    std::string tokenizerWeight;
    if (man.contains("tokenizer")) {
      const json &t = man.at("tokenizer");
      tokenizerWeight = t.at("weight").get<std::string>();
      m.chatTemplate = t.value("chat_template", "");
      m.bosToken = t.value("bos_token", "");
      m.eosToken = t.value("eos_token", "");
    }
    for (const json &w : man.at("weights")) {
      uint64_t off = w.at("offset").get<uint64_t>(), bytes = w.at("bytes").get<uint64_t>();
      if (off > f.weights_size || bytes > f.weights_size - off)
        return fail(QLC_ERR_FORMAT, m.path + ": weight '" + w.at("name").get<std::string>() +
                                        "' lies outside the weights section");
      const uint8_t *p = base + f.weights_offset + off;
      if (w.at("name").get<std::string>() == tokenizerWeight) {
        m.tokenizerJson = std::string_view(reinterpret_cast<const char *>(p), bytes);
        continue; // not a kernel's weight
      }
      m.weights.push_back(p);
      m.weightBytes += static_cast<int64_t>(bytes);
    }
    if (!tokenizerWeight.empty() && m.tokenizerJson.empty())
      return fail(QLC_ERR_FORMAT, m.path + ": manifest names tokenizer weight '" +
                                      tokenizerWeight + "' but the weight table lacks it");
    if (m.vocab <= 0 || m.numLayers <= 0 || m.kvDim <= 0 || m.maxSeqLen <= 0 ||
        m.maxTokens <= 0 || m.scratchBytes < 0 || m.kvPositionBytes <= 0)
      return fail(QLC_ERR_FORMAT, m.path + ": manifest has non-positive sizes");
  } catch (const std::exception &e) {
    return fail(QLC_ERR_FORMAT, m.path + ": manifest is missing or has a bad field: " + e.what());
  }
  return QLC_OK;
}

/// CUDA artifacts: checks the GPU through the artifact's device API and copies the
/// weights section to it; the weight table then holds device pointers.
qlc_status uploadToDevice(qlc_model &m, const qlc_artifact_footer &f) {
  auto get = reinterpret_cast<qlc_artifact_device_fn>(dlsym(m.dl, QLC_ARTIFACT_DEVICE_SYMBOL));
  const qlc_device_api *api = get != nullptr ? get() : nullptr;
  if (api == nullptr || api->struct_size < sizeof(qlc_device_api))
    return fail(QLC_ERR_FORMAT, m.path + ": a CUDA artifact whose code lacks the device API");
  if (api->init() != 0)
    return qlc::rt::deviceFail(api, QLC_ERR_TARGET, m.path);
  m.device = api;
  if (qlc_status s = m.deviceWeights.allocate(api, f.weights_size,
                                              std::to_string(f.weights_size) +
                                                  " bytes of GPU memory for the weights of " +
                                                  m.path))
    return s;
  const uint8_t *host = static_cast<const uint8_t *>(m.map) + f.weights_offset;
  constexpr uint64_t kChunk = uint64_t{64} << 20;
  for (uint64_t off = 0; off < f.weights_size; off += kChunk)
    if (api->upload(static_cast<uint8_t *>(m.deviceWeights.data) + off, host + off,
                    std::min(kChunk, f.weights_size - off)) != 0)
      return qlc::rt::deviceFail(api, QLC_ERR_IO, m.path + ": uploading the weights");
  for (const void *&w : m.weights)
    w = static_cast<uint8_t *>(m.deviceWeights.data) + (static_cast<const uint8_t *>(w) - host);
  return QLC_OK;
}

} // namespace

extern "C" qlc_status qlc_model_load(const char *path, const qlc_load_options *opts,
                                     qlc_model **out) {
  if (path == nullptr || out == nullptr)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_model_load: path and out must not be null");
  *out = nullptr;
  auto m = std::make_unique<qlc_model>();
  m->path = path;
  m->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (m->fd < 0)
    return fail(QLC_ERR_IO, std::string(path) + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(m->fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fail(QLC_ERR_IO, std::string(path) + ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(qlc_artifact_footer))
    return fail(QLC_ERR_FORMAT, std::string(path) + ": too small to be a qlc artifact (" +
                                    std::to_string(size) + " bytes)");
  m->map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, m->fd, 0);
  if (m->map == MAP_FAILED) {
    m->map = nullptr;
    return fail(QLC_ERR_IO, std::string(path) + ": cannot map: " + std::strerror(errno));
  }
  m->mapSize = size;
  qlc_artifact_footer f;
  std::memcpy(&f, static_cast<const uint8_t *>(m->map) + size - sizeof f, sizeof f);
  if (std::memcmp(f.magic, QLC_ARTIFACT_MAGIC, 8) != 0)
    return fail(QLC_ERR_FORMAT, std::string(path) +
                                    ": not a qlc artifact, or truncated (no footer at its end)");
  if (XXH3_64bits(&f, offsetof(qlc_artifact_footer, footer_hash)) != f.footer_hash)
    return fail(QLC_ERR_FORMAT, std::string(path) + ": artifact footer is corrupted");
  if (f.format_version != QLC_ARTIFACT_FORMAT_VERSION)
    return fail(QLC_ERR_FORMAT, std::string(path) + ": artifact format version " +
                                    std::to_string(f.format_version) + " is not supported (" +
                                    std::to_string(QLC_ARTIFACT_FORMAT_VERSION) + " is)");
  const uint64_t body = size - sizeof f;
  if (f.code_size > body || f.manifest_offset > body || f.manifest_size > body - f.manifest_offset ||
      f.weights_offset > body || f.weights_size > body - f.weights_offset ||
      f.weights_offset % QLC_ARTIFACT_PAGE != 0)
    return fail(QLC_ERR_FORMAT, std::string(path) + ": artifact sections lie outside the file");
  if (static_cast<uint32_t>(XXH3_64bits(static_cast<const uint8_t *>(m->map) + f.manifest_offset,
                                        f.manifest_size)) != f.manifest_hash)
    return fail(QLC_ERR_FORMAT, std::string(path) + ": manifest checksum mismatch (file corrupted)");
  m->manifestText.assign(static_cast<const char *>(m->map) + f.manifest_offset, f.manifest_size);
  bool verify = opts == nullptr || opts->verify_weights != 0;
  if (qlc_status s = parseManifest(*m, f, verify))
    return s;
  // dlopen searches the library path for a name without a slash; this one is a file.
  const std::string dlPath = std::strchr(path, '/') ? std::string(path) : "./" + std::string(path);
  m->dl = dlopen(dlPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (m->dl == nullptr)
    return fail(QLC_ERR_FORMAT, std::string(path) + ": cannot load its code: " + dlerror());
  auto abi = reinterpret_cast<qlc_artifact_abi_version_fn>(dlsym(m->dl, QLC_ARTIFACT_ABI_SYMBOL));
  m->forward = reinterpret_cast<qlc_artifact_forward_fn>(dlsym(m->dl, QLC_ARTIFACT_FORWARD_SYMBOL));
  if (abi == nullptr || m->forward == nullptr || abi() != QLC_ABI_VERSION)
    return fail(QLC_ERR_FORMAT, std::string(path) + ": its code lacks the qlc entry points or "
                                                    "has another ABI version");
  if (m->isCuda)
    if (qlc_status s = uploadToDevice(*m, f))
      return s;
  *out = m.release();
  return QLC_OK;
}

extern "C" void qlc_model_free(qlc_model *m) { delete m; }
extern "C" const char *qlc_model_manifest(const qlc_model *m) {
  return m ? m->manifestText.c_str() : "";
}
extern "C" int32_t qlc_model_vocab_size(const qlc_model *m) { return m ? m->vocab : 0; }
extern "C" int64_t qlc_model_weight_bytes(const qlc_model *m) { return m ? m->weightBytes : 0; }
extern "C" const char *qlc_model_device_name(const qlc_model *m) {
  return m == nullptr ? "" : m->device != nullptr ? m->device->device_name() : "cpu";
}
