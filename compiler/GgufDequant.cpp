//===- GgufDequant.cpp - ggml block formats to float32 ---------------------===//
//
// Each function mirrors gguf-py's `dequantize_blocks` for its type (gguf/quants.py),
// operation for operation in float32, so results agree bit for bit: scales are fp16
// converted exactly, products are formed in the same order, and this file is built with
// -ffp-contract=off so no multiply-add is fused.
//
//===----------------------------------------------------------------------===//
#include "compiler/DType.h"
#include "compiler/Gguf.h"

#include <cstring>

namespace qlc {

namespace {

constexpr size_t QK = 32, QK_K = 256;

float half(const uint8_t *p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return halfToFloat(h);
}

/// Block of 32: fp16 d, 16 bytes of nibbles (element j in the low nibble of byte j,
/// element j + 16 in its high nibble).
void q4_0(const uint8_t *b, float *y) {
  const float d = half(b);
  const uint8_t *qs = b + 2;
  for (size_t j = 0; j < QK / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + QK / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

/// fp16 d, fp16 m, 16 bytes of nibbles: d * q + m.
void q4_1(const uint8_t *b, float *y) {
  const float d = half(b), m = half(b + 2);
  const uint8_t *qs = b + 4;
  for (size_t j = 0; j < QK / 2; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + QK / 2] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

/// fp16 d, 32 high bits (little-endian uint32, bit j for element j), 16 bytes of nibbles.
void q5_0(const uint8_t *b, float *y) {
  const float d = half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t *qs = b + 6;
  for (size_t j = 0; j < QK; ++j) {
    int lo = j < QK / 2 ? qs[j] & 0x0F : qs[j - QK / 2] >> 4;
    int q = (lo | static_cast<int>((qh >> j) & 1u) << 4) - 16;
    y[j] = d * static_cast<float>(q);
  }
}

/// fp16 d, fp16 m, 32 high bits, 16 bytes of nibbles: d * q + m.
void q5_1(const uint8_t *b, float *y) {
  const float d = half(b), m = half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t *qs = b + 8;
  for (size_t j = 0; j < QK; ++j) {
    int lo = j < QK / 2 ? qs[j] & 0x0F : qs[j - QK / 2] >> 4;
    int q = lo | static_cast<int>((qh >> j) & 1u) << 4;
    y[j] = d * static_cast<float>(q) + m;
  }
}

/// fp16 d, 32 int8 quants.
void q8_0(const uint8_t *b, float *y) {
  const float d = half(b);
  for (size_t j = 0; j < QK; ++j)
    y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

/// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes:
/// bytes 0-3 hold scales 0-3 and the top bits of scales 4-7, bytes 4-7 the mins likewise,
/// bytes 8-11 the low nibbles of scales 4-7 and mins 4-7).
void scaleMinK4(int j, const uint8_t *s, uint8_t &sc, uint8_t &m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

/// Super-block of 256: fp16 d, fp16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles.
/// Sub-block s (32 elements) scales by d * sc[s] and subtracts dmin * m[s]; its quants are
/// the low (even s) or high (odd s) nibbles of bytes 32 * (s / 2) ... + 31.
void q4_K(const uint8_t *b, float *y) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t *scales = b + 4, *qs = b + 16;
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    scaleMinK4(s, scales, sc, m);
    const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);
    const uint8_t *q = qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l)
      y[32 * s + l] = ds * static_cast<float>((q[l] >> shift) & 0x0F) - dm;
  }
}

/// Super-block of 256: 128 bytes of low nibbles (ql), 64 bytes of 2-bit highs (qh),
/// 16 int8 scales (one per 16 elements), fp16 d. Element p = 128 h + 32 r + l (h < 2,
/// r < 4, l < 32) takes the nibble (r / 2 ? high : low) of ql[64 h + 32 (r % 2) + l] and
/// bits 2r..2r+1 of qh[32 h + l]; value (d * scale[p / 16]) * (q - 32).
void q6_K(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + QK_K / 2;
  const int8_t *scales = reinterpret_cast<const int8_t *>(b + QK_K / 2 + QK_K / 4);
  const float d = half(b + QK_K / 2 + QK_K / 4 + QK_K / 16);
  for (int p = 0; p < 256; ++p) {
    const int h = p / 128, r = (p % 128) / 32, l = p % 32;
    const int lo = (ql[64 * h + 32 * (r % 2) + l] >> (4 * (r / 2))) & 0x0F;
    const int hi = (qh[32 * h + l] >> (2 * r)) & 0x03;
    const int q = static_cast<int8_t>(static_cast<uint8_t>(lo | hi << 4)) - 32;
    const float ds = d * static_cast<float>(scales[p / 16]);
    y[p] = ds * static_cast<float>(q);
  }
}

template <void (*Fn)(const uint8_t *, float *)>
void blocks(const uint8_t *src, float *dst, size_t n, size_t blockSize, size_t typeSize) {
  for (size_t i = 0; i < n / blockSize; ++i)
    Fn(src + i * typeSize, dst + i * blockSize);
}

} // namespace

bool dequantizeGgml(GgmlType type, const uint8_t *src, float *dst, size_t n) {
  auto info = ggmlTypeInfo(static_cast<uint32_t>(type));
  if (!info || !info->dequantizable || n % info->blockSize != 0)
    return false;
  const size_t bs = info->blockSize, ts = info->typeSize;
  switch (type) {
  case GgmlType::F32:
    std::memcpy(dst, src, n * 4);
    return true;
  case GgmlType::F16:
    return convertElements(src, DType::F16, dst, DType::F32, n);
  case GgmlType::BF16:
    return convertElements(src, DType::BF16, dst, DType::F32, n);
  case GgmlType::Q4_0:
    blocks<q4_0>(src, dst, n, bs, ts);
    return true;
  case GgmlType::Q4_1:
    blocks<q4_1>(src, dst, n, bs, ts);
    return true;
  case GgmlType::Q5_0:
    blocks<q5_0>(src, dst, n, bs, ts);
    return true;
  case GgmlType::Q5_1:
    blocks<q5_1>(src, dst, n, bs, ts);
    return true;
  case GgmlType::Q8_0:
    blocks<q8_0>(src, dst, n, bs, ts);
    return true;
  case GgmlType::Q4_K:
    blocks<q4_K>(src, dst, n, bs, ts);
    return true;
  case GgmlType::Q6_K:
    blocks<q6_K>(src, dst, n, bs, ts);
    return true;
  default:
    return false;
  }
}

} // namespace qlc
