//===- Internal.h - runtime internals shared between its files -*- C++ -*-===//
#ifndef QLC_RUNTIME_INTERNAL_H
#define QLC_RUNTIME_INTERNAL_H

#include "qlc/abi.h"
#include "qlc/runtime.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qlc::rt {

/// Records `msg` as this thread's last error and returns `s`.
qlc_status fail(qlc_status s, const std::string &msg);

/// A heap buffer aligned to 64 bytes.
struct AlignedBuffer {
  uint8_t *data = nullptr;
  size_t size = 0;
  ~AlignedBuffer();
  bool allocate(size_t bytes);
};

/// Memory on the artifact's GPU, through the device API its code exports.
struct DeviceBuffer {
  const qlc_device_api *api = nullptr;
  void *data = nullptr;
  size_t size = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  ~DeviceBuffer() { reset(); }
  void reset();
  /// QLC_ERR_OUT_OF_MEMORY with the device's message, naming `what`.
  qlc_status allocate(const qlc_device_api *a, size_t bytes, const std::string &what);
};

/// Records `context: <the device API's last error>` and returns `s`.
qlc_status deviceFail(const qlc_device_api *api, qlc_status s, const std::string &context);

} // namespace qlc::rt

struct qlc_model {
  std::string path;
  std::string manifestText;
  int fd = -1;
  void *map = nullptr; // the whole file, read-only
  size_t mapSize = 0;
  void *dl = nullptr;
  qlc_artifact_forward_fn forward = nullptr;
  // CUDA artifacts: the device API of their code, and the weights section on the GPU.
  bool isCuda = false;
  const qlc_device_api *device = nullptr;
  qlc::rt::DeviceBuffer deviceWeights;
  std::vector<const void *> weights; // host (x86) or device (CUDA) pointers
  int64_t weightBytes = 0;
  // From the manifest.
  int32_t vocab = 0, numLayers = 0, kvDim = 0;
  int64_t maxSeqLen = 0, maxTokens = 0, scratchBytes = 0;
  int64_t kvPositionBytes = 0; // KV cache bytes per position of a slot (all layers, k and v)
  int64_t kvPageSize = 0;      // positions per KV page (the kernels' constant)
  int64_t kvPageBytes = 0;     // kvPageSize * kvPositionBytes
  int64_t kvPlanPages = 0;     // the plan's pool: max_batch sequences, capped by its budget
  int64_t kvBudgetBytes = 0;   // the plan's memory budget; 0: none
  // Text: the tokenizer.json inside the weights section (parsed at first use).
  std::string_view tokenizerJson;
  std::string chatTemplate, bosToken, eosToken;
  std::shared_ptr<void> tokenizer; // qlc::tok::Tokenizer, type-erased
  ~qlc_model();
};

#endif // QLC_RUNTIME_INTERNAL_H
