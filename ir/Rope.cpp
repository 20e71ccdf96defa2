//===- Rope.cpp - rotary embedding frequencies -----------------------------===//
#include "ir/Rope.h"

#include <cmath>

namespace qlc {

bool isKnownRopeScaling(const std::string &scaling) {
  return scaling == "none" || scaling == "linear" || scaling == "llama3";
}

std::vector<float> ropeInvFreq(const RopeParams &p) {
  const int64_t half = p.headDim / 2;
  std::vector<float> inv(half);
  // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in float32.
  for (int64_t i = 0; i < half; ++i) {
    float expo = static_cast<float>(2 * i) / static_cast<float>(p.headDim);
    float powed = std::pow(static_cast<float>(p.theta), expo);
    inv[i] = 1.0f / powed;
  }
  if (p.scaling == "linear") {
    for (float &f : inv)
      f = f / static_cast<float>(p.factor);
  } else if (p.scaling == "llama3") {
    const double pi = 3.14159265358979323846;
    const double lowFreqWavelen = p.originalMaxPosition / p.lowFreqFactor;
    const double highFreqWavelen = p.originalMaxPosition / p.highFreqFactor;
    for (float &f : inv) {
      float wavelen = static_cast<float>(2 * pi) / f;
      if (wavelen > lowFreqWavelen) {
        f = f / static_cast<float>(p.factor);
      } else if (wavelen >= highFreqWavelen) {
        float smooth = (static_cast<float>(p.originalMaxPosition) / wavelen -
                        static_cast<float>(p.lowFreqFactor)) /
                       static_cast<float>(p.highFreqFactor - p.lowFreqFactor);
        f = (1.0f - smooth) * f / static_cast<float>(p.factor) + smooth * f;
      }
    }
  }
  return inv;
}

} // namespace qlc
