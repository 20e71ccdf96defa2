//===- StoreProvider.h - the weight store as seen by passes ----*- C++ -*-===//
#ifndef QLC_COMPILER_STOREPROVIDER_H
#define QLC_COMPILER_STOREPROVIDER_H

#include "compiler/WeightStore.h"
#include "ir/WeightProvider.h"

namespace qlc {

/// Lets passes read a WeightStore's tensors as float and add the packed tensors they
/// make. A tensor added under an existing name replaces it.
class StoreProvider : public WeightProvider {
public:
  explicit StoreProvider(WeightStore &store) : store(store) {}
  std::optional<std::vector<float>> readFloat(const std::string &name) const override;
  std::optional<RawTensorView> readRaw(const std::string &name) const override;
  void add(const std::string &name, const std::string &dtype, std::vector<int64_t> shape,
           std::vector<uint8_t> data) override;

private:
  WeightStore &store;
};

} // namespace qlc

#endif // QLC_COMPILER_STOREPROVIDER_H
