//===- Error.cpp - status strings and the per-thread last error ------------===//
#include "Internal.h"

#include <cstdlib>

namespace {
thread_local std::string lastError;
}

namespace qlc::rt {

qlc_status fail(qlc_status s, const std::string &msg) {
  lastError = msg;
  return s;
}

AlignedBuffer::~AlignedBuffer() { std::free(data); }

bool AlignedBuffer::allocate(size_t bytes) {
  std::free(data);
  size = 0;
  size_t rounded = (bytes + 63) / 64 * 64;
  data = static_cast<uint8_t *>(std::aligned_alloc(64, rounded ? rounded : 64));
  if (data != nullptr)
    size = bytes;
  return data != nullptr;
}

qlc_status deviceFail(const qlc_device_api *api, qlc_status s, const std::string &context) {
  const char *msg = api != nullptr ? api->last_error() : nullptr;
  return fail(s, context + ": " + (msg != nullptr && *msg ? msg : "unknown device error"));
}

void DeviceBuffer::reset() {
  if (api != nullptr && data != nullptr)
    api->release(data);
  data = nullptr;
  size = 0;
}

qlc_status DeviceBuffer::allocate(const qlc_device_api *a, size_t bytes, const std::string &what) {
  reset();
  api = a;
  void *p = nullptr;
  // One byte at least: a zero-byte region still needs an address the kernels can take.
  if (api->alloc(&p, bytes ? bytes : 1) != 0)
    return deviceFail(api, QLC_ERR_OUT_OF_MEMORY, "cannot allocate " + what);
  data = p;
  size = bytes;
  return QLC_OK;
}

} // namespace qlc::rt

extern "C" const char *qlc_last_error(void) { return lastError.c_str(); }

extern "C" const char *qlc_status_string(qlc_status s) {
  switch (s) {
  case QLC_OK: return "ok";
  case QLC_ERR_INVALID_ARGUMENT: return "invalid argument";
  case QLC_ERR_IO: return "i/o error";
  case QLC_ERR_FORMAT: return "bad artifact format";
  case QLC_ERR_TARGET: return "artifact built for another target";
  case QLC_ERR_OUT_OF_MEMORY: return "out of memory";
  case QLC_ERR_CAPACITY: return "capacity exceeded";
  case QLC_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}
