//===- QuantUtil.cpp - integer quantization of weight rows -----------------===//
#include "passes/QuantUtil.h"

#include "ir/Float16.h"
#include "ir/WeightProvider.h"
#include "passes/CalibExecutor.h"

#include "mlir/IR/Builders.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;

namespace qlc {

int64_t effectiveGroupSize(const IntQuantParams &p, int64_t k) {
  return p.groupSize <= 0 || p.groupSize > k ? k : p.groupSize;
}

void groupScaleZero(const float *w, int64_t len, const IntQuantParams &p, float &scale,
                    int zero[1]) {
  const int maxq = (1 << p.bits) - 1;
  float lo = 0.0f, hi = 0.0f; // AutoGPTQ clamps the range to include 0
  for (int64_t i = 0; i < len; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  if (p.symmetric) {
    float m = std::max(std::fabs(lo), hi);
    lo = -m;
    hi = m;
  }
  if (lo == 0.0f && hi == 0.0f) {
    lo = -1.0f;
    hi = 1.0f;
  }
  scale = halfToFloat(floatToHalf((hi - lo) / static_cast<float>(maxq)));
  if (scale == 0.0f) // the range underflowed f16
    scale = halfToFloat(1); // smallest positive half
  if (p.symmetric)
    zero[0] = (maxq + 1) / 2;
  else
    zero[0] = static_cast<int>(std::clamp(std::nearbyint(-lo / scale), 0.0f,
                                          static_cast<float>(maxq)));
}

IntQuantized makeIntQuantized(int64_t n, int64_t k, const IntQuantParams &p) {
  IntQuantized q;
  q.n = n;
  q.k = k;
  q.groupSize = effectiveGroupSize(p, k);
  q.groups = (k + q.groupSize - 1) / q.groupSize;
  q.rowBytes = (k * p.bits + 7) / 8;
  q.qweight.assign(static_cast<size_t>(n * q.rowBytes), 0);
  q.scales.resize(static_cast<size_t>(n * q.groups));
  if (!p.symmetric)
    q.zeros.resize(static_cast<size_t>(n * q.groups));
  return q;
}

void storeIntCode(IntQuantized &q, int64_t bits, int64_t r, int64_t c, int code) {
  uint8_t *out = q.qweight.data() + r * q.rowBytes;
  if (bits == 8)
    out[c] = static_cast<uint8_t>(code);
  else
    out[c / 2] |= static_cast<uint8_t>(code << (4 * (c % 2)));
}

std::vector<float> dequantizeInt(const IntQuantized &q, const IntQuantParams &p) {
  std::vector<float> w(static_cast<size_t>(q.n * q.k));
  const int symZero = 1 << (p.bits - 1);
  parallelFor(q.n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t *row = q.qweight.data() + r * q.rowBytes;
      for (int64_t c = 0; c < q.k; ++c) {
        const int64_t g = r * q.groups + c / q.groupSize;
        int code = p.bits == 8 ? row[c] : (row[c / 2] >> (4 * (c % 2))) & 15;
        int zero = p.symmetric ? symZero : q.zeros[g];
        w[r * q.k + c] = static_cast<float>(code - zero) * halfToFloat(q.scales[g]);
      }
    }
  });
  return w;
}

IntQuantized quantizeRtn(const std::vector<float> &w, int64_t n, int64_t k,
                         const IntQuantParams &p) {
  IntQuantized q = makeIntQuantized(n, k, p);
  const int maxq = (1 << p.bits) - 1;
  parallelFor(n, [&](int64_t r0, int64_t r1) { // rows are independent: any split, same bytes
    for (int64_t r = r0; r < r1; ++r) {
      const float *row = w.data() + r * k;
      for (int64_t g = 0; g < q.groups; ++g) {
        const int64_t b = g * q.groupSize, len = std::min(q.groupSize, k - b);
        float scale;
        int zero[1];
        groupScaleZero(row + b, len, p, scale, zero);
        q.scales[r * q.groups + g] = floatToHalf(scale);
        if (!p.symmetric)
          q.zeros[r * q.groups + g] = static_cast<uint8_t>(zero[0]);
        for (int64_t i = b; i < b + len; ++i) {
          float v = std::nearbyint(row[i] / scale) + static_cast<float>(zero[0]);
          storeIntCode(q, p.bits, r, i,
                       static_cast<int>(std::clamp(v, 0.0f, static_cast<float>(maxq))));
        }
      }
    }
  });
  return q;
}

void replaceWithQuantizedLinear(LinearOp op, const IntQuantParams &p, const std::string &prefix,
                                const IntQuantized *data) {
  OpBuilder b(op);
  auto wType = cast<RankedTensorType>(op.getWeight().getType());
  const int64_t n = wType.getDimSize(0), k = wType.getDimSize(1);
  const int64_t gs = effectiveGroupSize(p, k), groups = (k + gs - 1) / gs,
                rowBytes = (k * p.bits + 7) / 8;
  auto u8 = b.getIntegerType(8, /*isSigned=*/false);
  Location loc = op.getLoc();
  auto mk = [&](const std::string &suffix, ArrayRef<int64_t> shape, Type elt) -> Value {
    return b.create<WeightOp>(loc, RankedTensorType::get(shape, elt),
                              b.getStringAttr(prefix + suffix));
  };
  Value qw = mk(".qweight", {n, rowBytes}, u8);
  Value sc = mk(".scales", {n, groups}, b.getF16Type());
  Value zp = p.symmetric ? Value() : mk(".zeros", {n, groups}, u8);
  std::string source = op.getWeight().getDefiningOp<WeightOp>().getTensorName().str();
  auto q = b.create<QuantizedLinearOp>(
      loc, op.getType(), op.getX(), qw, sc, zp, /*scales2=*/Value(), op.getBias(),
      /*perm=*/Value(),
      b.getStringAttr("int"), b.getI64IntegerAttr(p.bits), b.getI64IntegerAttr(gs),
      b.getI64IntegerAttr(k), b.getI64IntegerAttr(n), b.getBoolAttr(p.symmetric),
      b.getF64FloatAttr(0.0), b.getStringAttr(source));
  if (data != nullptr) {
    if (WeightProvider *wp = getWeightProvider(op.getContext())) {
      wp->add(prefix + ".qweight", "u8", {n, rowBytes}, data->qweight);
      std::vector<uint8_t> s(data->scales.size() * 2);
      std::memcpy(s.data(), data->scales.data(), s.size());
      wp->add(prefix + ".scales", "f16", {n, groups}, std::move(s));
      if (!p.symmetric)
        wp->add(prefix + ".zeros", "u8", {n, groups}, data->zeros);
    }
  }
  Operation *oldWeight = op.getWeight().getDefiningOp();
  op.replaceAllUsesWith(q.getResult());
  op.erase();
  if (oldWeight->use_empty())
    oldWeight->erase();
}

} // namespace qlc
