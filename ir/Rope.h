//===- Rope.h - rotary embedding frequencies -------------------*- C++ -*-===//
#ifndef QLC_IR_ROPE_H
#define QLC_IR_ROPE_H

#include <cstdint>
#include <string>
#include <vector>

namespace qlc {

/// Parameters of a rotary position embedding, as config.json gives them.
struct RopeParams {
  int64_t headDim = 0;
  double theta = 10000.0;
  std::string scaling = "none"; // none | linear | llama3
  double factor = 1.0;
  double lowFreqFactor = 1.0;
  double highFreqFactor = 4.0;
  int64_t originalMaxPosition = 8192;
};

/// Returns true when `scaling` names a supported rope scaling type.
bool isKnownRopeScaling(const std::string &scaling);

/// Computes the headDim/2 inverse frequencies in float32, the way Hugging Face's
/// rope initialization functions do (so angles match transformers bit for bit).
std::vector<float> ropeInvFreq(const RopeParams &p);

} // namespace qlc

#endif // QLC_IR_ROPE_H
