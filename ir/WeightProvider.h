//===- WeightProvider.h - weight data reachable from passes ----*- C++ -*-===//
//
// Quantization passes read a weight's float data and add the packed tensors they make;
// fusion passes read stored bytes and add concatenations.
// The compiler's weight store implements this interface and attaches itself to the
// MLIRContext; with none attached (qlc-opt, lit tests) passes rewrite the IR only.
//
#ifndef QLC_IR_WEIGHTPROVIDER_H
#define QLC_IR_WEIGHTPROVIDER_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir {
class MLIRContext;
}

namespace qlc {

/// A tensor's stored bytes, as the provider holds them (valid until the next add).
struct RawTensorView {
  std::string dtype; // f32, f16, bf16, i32, i8 or u8
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

class WeightProvider {
public:
  virtual ~WeightProvider() = default;
  /// The tensor `name` widened to float32 (row-major), or nullopt if absent.
  virtual std::optional<std::vector<float>> readFloat(const std::string &name) const = 0;
  /// The tensor `name` in its stored dtype, or nullopt if absent.
  virtual std::optional<RawTensorView> readRaw(const std::string &name) const = 0;
  /// Adds (or replaces) a tensor. dtype: f32, f16, bf16, i32, i8 or u8.
  virtual void add(const std::string &name, const std::string &dtype,
                   std::vector<int64_t> shape, std::vector<uint8_t> data) = 0;
};

/// Attaches `provider` (not owned; may be null) to `ctx`'s qlc dialect.
void setWeightProvider(mlir::MLIRContext *ctx, WeightProvider *provider);
/// The provider attached to `ctx`, or null.
WeightProvider *getWeightProvider(mlir::MLIRContext *ctx);

} // namespace qlc

#endif // QLC_IR_WEIGHTPROVIDER_H
