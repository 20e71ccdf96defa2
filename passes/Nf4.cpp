//===- Nf4.cpp - bitsandbytes' NF4 and its double quantization -------------===//
//
// Every float operation below is the one bitsandbytes 0.50 (or PyTorch under it) does,
// in the same order, so results match bit for bit; this file is built without FMA
// contraction (passes/CMakeLists.txt). The comments name the code being replicated.
//
#include "passes/Nf4.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace qlc {

bool isBnbBlockSize(int64_t blockSize) {
  return blockSize >= 32 && blockSize <= 4096 && (blockSize & (blockSize - 1)) == 0;
}

namespace {

// --- torch.Tensor.sum on the CPU (aten/src/ATen/native/cpu/SumKernel.cpp) -------------

constexpr int kTorchLanes = 8; // Vectorized<float>::size() in PyTorch's AVX2 kernels

int64_t ceilLog2(int64_t x) { // c10::utils::CeilLog2
  if (x <= 2)
    return 1;
  int64_t r = 0;
  for (uint64_t v = static_cast<uint64_t>(x - 1); v != 0; v >>= 1)
    ++r;
  return r;
}

/// row_sum over `size` items of `lanes` floats each (item j: a[j*lanes, (j+1)*lanes)),
/// lane by lane: multi_row_sum over rows of 4 items with 4 cascade levels, then the
/// leftover items, then the 4 partial sums. `out` gets `lanes` sums.
void torchRowSum(const float *a, int64_t size, int lanes, float *out) {
  constexpr int kLevels = 4, kIlp = 4;
  const int64_t rows = size / kIlp;
  float acc[kLevels][kIlp][kTorchLanes] = {};
  auto addItem = [&](float *dst, int64_t item) {
    for (int l = 0; l < lanes; ++l)
      dst[l] += a[item * lanes + l];
  };
  auto addTo = [&](float *dst, const float *src) {
    for (int l = 0; l < lanes; ++l)
      dst[l] += src[l];
  };
  const int64_t levelPower = std::max<int64_t>(4, ceilLog2(rows) / kLevels);
  const int64_t levelStep = int64_t{1} << levelPower, levelMask = levelStep - 1;
  int64_t i = 0;
  while (i + levelStep <= rows) {
    for (int64_t j = 0; j < levelStep; ++j, ++i)
      for (int k = 0; k < kIlp; ++k)
        addItem(acc[0][k], i * kIlp + k);
    for (int j = 1; j < kLevels; ++j) {
      for (int k = 0; k < kIlp; ++k) {
        addTo(acc[j][k], acc[j - 1][k]);
        std::fill_n(acc[j - 1][k], kTorchLanes, 0.0f);
      }
      if ((i & (levelMask << (j * levelPower))) != 0)
        break;
    }
  }
  for (; i < rows; ++i)
    for (int k = 0; k < kIlp; ++k)
      addItem(acc[0][k], i * kIlp + k);
  for (int j = 1; j < kLevels; ++j)
    for (int k = 0; k < kIlp; ++k)
      addTo(acc[0][k], acc[j][k]);
  for (int64_t item = rows * kIlp; item < size; ++item)
    addItem(acc[0][0], item);
  for (int k = 1; k < kIlp; ++k)
    addTo(acc[0][0], acc[0][k]);
  std::copy_n(acc[0][0], lanes, out);
}

// --- bitsandbytes' CPU quantize_blockwise (csrc/cpu_ops.cpp) ----------------------------

constexpr int kLutSize = 65536;

/// build_quantize_lut: for each of 65536 points of [-1, 1], the first code whose
/// midpoint with the next code is not below it.
const std::array<uint8_t, kLutSize> &dynamicMapLut() {
  static const std::array<uint8_t, kLutSize> lut = [] {
    std::array<uint8_t, kLutSize> t{};
    float mid[255];
    for (int i = 0; i < 255; ++i)
      mid[i] = 0.5f * (kDynamicMap8[i] + kDynamicMap8[i + 1]);
    int code = 0;
    for (int i = 0; i < kLutSize; ++i) {
      const float val = -1.0f + (2.0f * static_cast<float>(i)) / static_cast<float>(kLutSize - 1);
      while (code < 255 && mid[code] < val)
        ++code;
      t[i] = static_cast<uint8_t>(code);
    }
    return t;
  }();
  return lut;
}

} // namespace

float torchCpuMeanF32(const float *a, int64_t n) {
  float sum = 0.0f;
  if (n >= kTorchLanes) { // vectorized_inner_sum
    const int64_t vecs = n / kTorchLanes;
    float partial[kTorchLanes];
    torchRowSum(a, vecs, kTorchLanes, partial);
    for (int64_t k = vecs * kTorchLanes; k < n; ++k)
      sum += a[k];
    for (float p : partial)
      sum += p;
  } else { // scalar row_sum
    torchRowSum(a, n, 1, &sum);
  }
  return sum / static_cast<float>(n); // mean = sum(...).div_(numel)
}

void quantizeBlockwiseDynamic(const float *a, int64_t n, int64_t blockSize, uint8_t *codes,
                              float *absmax) {
  const auto &lut = dynamicMapLut();
  for (int64_t b0 = 0; b0 < n; b0 += blockSize) {
    const int64_t b1 = std::min(b0 + blockSize, n);
    float amax = 0.0f;
    for (int64_t i = b0; i < b1; ++i)
      amax = std::max(amax, std::fabs(a[i]));
    absmax[b0 / blockSize] = amax;
    if (amax == 0.0f) {
      std::fill(codes + b0, codes + b1, uint8_t{0});
      continue;
    }
    const float inv = 1.0f / amax;
    for (int64_t i = b0; i < b1; ++i) {
      const float v = std::clamp(a[i] * inv, -1.0f, 1.0f);
      // norm_to_lut_index, as compiled for bitsandbytes' wheel: the last multiply-add
      // is one fused operation, the conversion truncates.
      const float t = std::fmaf((v + 1.0f) * 0.5f, static_cast<float>(kLutSize - 1), 0.5f);
      codes[i] = lut[static_cast<uint16_t>(static_cast<int32_t>(t))];
    }
  }
}

Nf4Quantized quantizeNf4(const float *w, int64_t numel, int64_t blockSize, bool doubleQuant) {
  // backends/default/ops.py, quantize_4bit.
  Nf4Quantized q;
  q.numel = numel;
  q.blockSize = blockSize;
  q.blocks = (numel + blockSize - 1) / blockSize;
  q.doubleQuant = doubleQuant;
  float bounds[15]; // midpoints of the sorted code book; torch.bucketize(right=False)
  for (int i = 0; i < 15; ++i)
    bounds[i] = (kNf4Code[i] + kNf4Code[i + 1]) / 2.0f;
  auto bucketize = [&](float s) {
    int c = 0;
    while (c < 15 && bounds[c] < s)
      ++c;
    return static_cast<uint8_t>(c);
  };
  std::vector<uint8_t> codes(static_cast<size_t>(numel + 1), bucketize(0.0f)); // pad: code of 0
  std::vector<float> absmax(static_cast<size_t>(q.blocks));
  const int64_t full = numel / blockSize * blockSize;
  constexpr float kTiny = 1e-38f; // absmax.clamp(min=1e-38)
  for (int64_t b = 0; b * blockSize < numel; ++b) {
    const int64_t b0 = b * blockSize, b1 = std::min(b0 + blockSize, numel);
    float amax = 0.0f;
    for (int64_t i = b0; i < b1; ++i)
      amax = std::max(amax, std::fabs(w[i]));
    if (b0 < full) {
      // Full blocks: A * (1.0 / absmax.clamp(min=1e-38)); the absmax is kept unclamped.
      absmax[b] = amax;
      const float inv = 1.0f / std::max(amax, kTiny);
      for (int64_t i = b0; i < b1; ++i)
        codes[i] = bucketize(std::clamp(w[i] * inv, -1.0f, 1.0f));
    } else {
      // The partial last block: A / am with am = absmax.clamp(min=1e-38), kept clamped.
      const float am = std::max(amax, kTiny);
      absmax[b] = am;
      for (int64_t i = b0; i < b1; ++i)
        codes[i] = bucketize(std::clamp(w[i] / am, -1.0f, 1.0f));
    }
  }
  q.packed.resize(static_cast<size_t>((numel + 1) / 2));
  for (size_t i = 0; i < q.packed.size(); ++i)
    q.packed[i] = static_cast<uint8_t>(codes[2 * i] << 4 | codes[2 * i + 1]);
  if (!doubleQuant) {
    q.absmax = std::move(absmax);
    return q;
  }
  // functional.quantize_4bit, compress_statistics=True: quantize_blockwise(absmax -
  // absmax.mean(), blocksize=256) with the dynamic map.
  q.offset = torchCpuMeanF32(absmax.data(), q.blocks);
  for (float &a : absmax)
    a = a - q.offset;
  q.absmaxCodes.resize(absmax.size());
  q.absmax2.resize(static_cast<size_t>((q.blocks + kNf4DoubleQuantBlock - 1) / kNf4DoubleQuantBlock));
  quantizeBlockwiseDynamic(absmax.data(), q.blocks, kNf4DoubleQuantBlock, q.absmaxCodes.data(),
                           q.absmax2.data());
  return q;
}

std::vector<float> nf4BlockAbsmax(const Nf4Quantized &q) {
  if (!q.doubleQuant)
    return q.absmax;
  // dequantize_blockwise (code[q] * absmax, float), then absmax += offset.
  std::vector<float> a(static_cast<size_t>(q.blocks));
  for (int64_t b = 0; b < q.blocks; ++b) {
    const float v = kDynamicMap8[q.absmaxCodes[b]] * q.absmax2[b / kNf4DoubleQuantBlock];
    a[b] = v + q.offset;
  }
  return a;
}

std::vector<float> dequantizeNf4(const Nf4Quantized &q) {
  const std::vector<float> absmax = nf4BlockAbsmax(q);
  std::vector<float> w(static_cast<size_t>(q.numel));
  for (int64_t e = 0; e < q.numel; ++e) {
    const uint8_t byte = q.packed[e / 2];
    const int code = e % 2 == 0 ? byte >> 4 : byte & 0xF;
    w[e] = kNf4Code[code] * absmax[e / q.blockSize];
  }
  return w;
}

} // namespace qlc
