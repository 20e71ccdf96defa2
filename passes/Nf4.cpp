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

const float kNf4Code[16] = {
    -0x1.0p+0f,      -0x1.647362p-1f, -0x1.0cd66p-1f,  -0x1.94654p-2f,
    -0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f,
    0x1.45f5fep-4f,  0x1.4995c6p-3f,  0x1.f809bap-3f,  0x1.5a0674p-2f,
    0x1.c3497p-2f,   0x1.200f56p-1f,  0x1.722766p-1f,  0x1.0p+0f};

const float kDynamicMap8[256] = {
    -0x1.fc6666p-1f, -0x1.f53334p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f, -0x1.df999ap-1f, -0x1.d86666p-1f,
    -0x1.d13334p-1f, -0x1.cap-1f, -0x1.c2ccccp-1f, -0x1.bb999ap-1f, -0x1.b46666p-1f, -0x1.ad3334p-1f,
    -0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.97999ap-1f, -0x1.906666p-1f, -0x1.893334p-1f, -0x1.82p-1f,
    -0x1.7accccp-1f, -0x1.73999ap-1f, -0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56ccccp-1f,
    -0x1.4f999ap-1f, -0x1.486668p-1f, -0x1.413334p-1f, -0x1.3ap-1f, -0x1.32ccccp-1f, -0x1.2b999ap-1f,
    -0x1.246668p-1f, -0x1.1d3334p-1f, -0x1.16p-1f, -0x1.0eccccp-1f, -0x1.079998p-1f, -0x1.006666p-1f,
    -0x1.f26664p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f, -0x1.b8ccccp-2f, -0x1.aa6666p-2f,
    -0x1.9cp-2f, -0x1.8d9998p-2f, -0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626666p-2f, -0x1.54p-2f,
    -0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f, -0x1.0cp-2f, -0x1.fb3332p-3f,
    -0x1.de6666p-3f, -0x1.c1999ap-3f, -0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3334p-3f, -0x1.4e6666p-3f,
    -0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f, -0x1.93d70ap-4f, -0x1.8851eep-4f,
    -0x1.7ccccep-4f, -0x1.7147aep-4f, -0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb854p-4f, -0x1.433334p-4f,
    -0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f, -0x1.09999ap-4f, -0x1.fc28f6p-5f,
    -0x1.e51ebap-5f, -0x1.ce147ap-5f, -0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f,
    -0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c29p-5f, -0x1.fd70a4p-6f, -0x1.cf5c2ap-6f,
    -0x1.a147aep-6f, -0x1.733334p-6f, -0x1.451ebap-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
    -0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f, -0x1.e978d4p-8f, -0x1.c49ba6p-8f,
    -0x1.9fbe76p-8f, -0x1.7ae148p-8f, -0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f,
    -0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f, -0x1.eecbfep-11f, -0x1.b3d07cp-11f,
    -0x1.78d5p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f,
    -0x1.27476ep-21f, 0.0f, 0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f,
    0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f,
    0x1.02de02p-11f, 0x1.3dd982p-11f, 0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
    0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f,
    0x1.56041ap-8f, 0x1.7ae148p-8f, 0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f,
    0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f,
    0x1.451ebap-6f, 0x1.733334p-6f, 0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c29p-5f,
    0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f,
    0x1.b70a3ep-5f, 0x1.ce147ap-5f, 0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f,
    0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb854p-4f, 0x1.5a3d7p-4f,
    0x1.65c29p-4f, 0x1.7147aep-4f, 0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
    0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3334p-3f, 0x1.88p-3f,
    0x1.a4ccccp-3f, 0x1.c1999ap-3f, 0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f,
    0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f, 0x1.626666p-2f, 0x1.70ccccp-2f,
    0x1.7f3334p-2f, 0x1.8d9998p-2f, 0x1.9cp-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
    0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26664p-2f, 0x1.006666p-1f, 0x1.079998p-1f, 0x1.0eccccp-1f,
    0x1.16p-1f, 0x1.1d3334p-1f, 0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f,
    0x1.413334p-1f, 0x1.486668p-1f, 0x1.4f999ap-1f, 0x1.56ccccp-1f, 0x1.5ep-1f, 0x1.653334p-1f,
    0x1.6c6668p-1f, 0x1.73999ap-1f, 0x1.7accccp-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
    0x1.97999ap-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3334p-1f, 0x1.b46666p-1f, 0x1.bb999ap-1f,
    0x1.c2ccccp-1f, 0x1.cap-1f, 0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f,
    0x1.eep-1f, 0x1.f53334p-1f, 0x1.fc6666p-1f, 0x1.0p+0f,
};

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
