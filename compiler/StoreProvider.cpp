//===- StoreProvider.cpp - the weight store as seen by passes --------------===//
#include "compiler/StoreProvider.h"

namespace qlc {

std::optional<std::vector<float>> StoreProvider::readFloat(const std::string &name) const {
  const TensorRef *t = store.find(name);
  if (t == nullptr)
    return std::nullopt;
  std::vector<float> out(static_cast<size_t>(t->numel()));
  if (!convertElements(t->data, t->dtype, out.data(), DType::F32, out.size()))
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
