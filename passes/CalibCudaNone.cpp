//===- CalibCudaNone.cpp - calibration on the CPU only ---------------------===//
//
// CalibCuda.h for a qlc built without a CUDA compiler: there is never a GPU to open.
//
#include "passes/CalibCuda.h"

namespace qlc {
namespace calibcuda {

struct Device::Impl {};

Buffer::~Buffer() = default;

std::unique_ptr<Device> Device::open(std::string &why) {
  why = "this qlc was built without CUDA";
  return nullptr;
}

Device::Device(std::unique_ptr<Impl> i) : impl(std::move(i)) {}
Device::~Device() = default;

const std::string &Device::name() const {
  static const std::string none;
  return none;
}

BufferPtr Device::upload(const float *, int64_t, int64_t, std::string &error) {
  error = "no GPU";
  return nullptr;
}
bool Device::download(const Buffer &, float *, std::string &error) {
  error = "no GPU";
  return false;
}
BufferPtr Device::rmsNorm(const Buffer &, const float *, float, std::string &error) {
  error = "no GPU";
  return nullptr;
}
BufferPtr Device::rope(const Buffer &, const std::vector<float> &, int64_t, int64_t,
                       std::string &error) {
  error = "no GPU";
  return nullptr;
}
BufferPtr Device::siluMul(const Buffer &, const Buffer &, std::string &error) {
  error = "no GPU";
  return nullptr;
}
BufferPtr Device::add(const Buffer &, const Buffer &, std::string &error) {
  error = "no GPU";
  return nullptr;
}
BufferPtr Device::linear(const Buffer &, const float *, int64_t, const float *,
                         std::string &error) {
  error = "no GPU";
  return nullptr;
}
BufferPtr Device::attention(const Buffer &, const Buffer &, const Buffer &, int64_t, int64_t,
                            int64_t, int64_t, int64_t, int64_t, float, std::string &error) {
  error = "no GPU";
  return nullptr;
}
bool Device::hessian(const Buffer &, std::vector<double> &, std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::matmulT(const float *, int64_t, int64_t, const float *, int64_t, const float *,
                     float *, std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::attention(const float *, const float *, const float *, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, float, float *, std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::hessian(const float *, int64_t, int64_t, std::vector<double> &, std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::gptq(const float *, const GptqJob &, GptqResult &, std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::awqStats(const Buffer &, std::vector<double> &, std::vector<double> &,
                      std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::awqScaleErrors(const std::vector<const std::vector<float> *> &,
                            const std::vector<int64_t> &, int64_t, const std::vector<float> &,
                            const std::vector<std::vector<float>> &, int, int64_t, bool,
                            std::vector<double> &, std::string &error) {
  error = "no GPU";
  return false;
}

bool Device::awqClip(std::vector<float> &, int64_t, int64_t, const std::vector<float> &, int,
                     int64_t, bool, int64_t, int64_t, std::string &error) {
  error = "no GPU";
  return false;
}

void Device::release() {}

} // namespace calibcuda
} // namespace qlc
