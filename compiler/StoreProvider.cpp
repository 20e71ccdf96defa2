//===- StoreProvider.cpp - the weight store as seen by passes --------------===//
#include "compiler/StoreProvider.h"

#include "passes/CalibExecutor.h"

#include <algorithm>
#include <atomic>

namespace qlc {

std::optional<std::vector<float>> StoreProvider::readFloat(const std::string &name) const {
  const TensorRef *t = store.find(name);
  if (t == nullptr)
    return std::nullopt;
  std::vector<float> out(static_cast<size_t>(t->numel()));
  // Calibration reads every weight this way: a 7B layer's 200M elements are widened over
  // the machine's cores, in chunks of 1 Mi elements.
  constexpr int64_t kChunk = int64_t{1} << 20;
  const int64_t n = static_cast<int64_t>(out.size()), chunks = (n + kChunk - 1) / kChunk;
  const size_t esize = dtypeSize(t->dtype);
  std::atomic<bool> ok{true};
  parallelFor(chunks, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t b = c * kChunk, len = std::min(kChunk, n - b);
      if (!convertElements(static_cast<const uint8_t *>(t->data) + b * esize, t->dtype,
                           out.data() + b, DType::F32, static_cast<size_t>(len)))
        ok = false;
    }
  });
  if (!ok)
    return std::nullopt;
  return out;
}

std::optional<RawTensorView> StoreProvider::readRaw(const std::string &name) const {
  const TensorRef *t = store.find(name);
  if (t == nullptr)
    return std::nullopt;
  return RawTensorView{shortName(t->dtype), t->shape, t->data, t->bytes};
}

void StoreProvider::add(const std::string &name, const std::string &dtype,
                        std::vector<int64_t> shape, std::vector<uint8_t> data) {
  auto dt = dtypeFromShortName(dtype);
  if (!dt)
    llvm::report_fatal_error("StoreProvider::add: unknown dtype " + llvm::Twine(dtype));
  store.replaceOwned(name, *dt, std::move(shape), std::move(data));
}

} // namespace qlc
