//===- DType.cpp - tensor element types of weight files --------------------===//
#include "compiler/DType.h"

#include <cmath>
#include <cstring>

namespace qlc {

const char *safetensorsName(DType t) {
  switch (t) {
  case DType::F32: return "F32";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  case DType::I32: return "I32";
  }
  return "?";
}

std::optional<DType> dtypeFromSafetensors(const std::string &s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  return std::nullopt;
}

const char *shortName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::F16: return "f16";
  case DType::BF16: return "bf16";
  case DType::I32: return "i32";
  }
  return "?";
}

std::optional<DType> dtypeFromShortName(const std::string &s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "f16" || s == "float16") return DType::F16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "i32" || s == "int32") return DType::I32;
  return std::nullopt;
}

size_t dtypeSize(DType t) { return t == DType::F16 || t == DType::BF16 ? 2 : 4; }

float halfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {
      int e = -1;
      do { ++e; man <<= 1; } while (!(man & 0x400u));
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) // rounds to >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (absx < 0x38800000u) { // subnormal half (or zero)
    float a;
    std::memcpy(&a, &absx, 4);
    // Scale so the subnormal's units land in the integer part, round to even.
    float scaled = a * 16777216.0f; // 2^24
    uint32_t v = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | v);
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = exp << 10 | mant >> 13;
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    ++h;
  return static_cast<uint16_t>(sign | h);
}

float bf16ToFloat(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t floatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((x >> 16) | 0x40u); // quiet nan
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

bool convertElements(const void *src, DType from, void *dst, DType to, size_t n) {
  if (from == DType::I32 || to == DType::I32)
    return false;
  if (from == to) {
    std::memcpy(dst, src, n * dtypeSize(from));
    return true;
  }
  auto load = [&](size_t i) -> float {
    if (from == DType::F32) {
      float v;
      std::memcpy(&v, static_cast<const uint8_t *>(src) + 4 * i, 4);
      return v;
    }
    uint16_t h;
    std::memcpy(&h, static_cast<const uint8_t *>(src) + 2 * i, 2);
    return from == DType::F16 ? halfToFloat(h) : bf16ToFloat(h);
  };
  for (size_t i = 0; i < n; ++i) {
    float v = load(i);
    if (to == DType::F32) {
      std::memcpy(static_cast<uint8_t *>(dst) + 4 * i, &v, 4);
    } else {
      uint16_t h = to == DType::F16 ? floatToHalf(v) : floatToBf16(v);
      std::memcpy(static_cast<uint8_t *>(dst) + 2 * i, &h, 2);
    }
  }
  return true;
}

} // namespace qlc
