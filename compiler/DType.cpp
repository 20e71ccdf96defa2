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
  case DType::U8: return "U8";
  case DType::I8: return "I8";
  }
  return "?";
}

std::optional<DType> dtypeFromSafetensors(const std::string &s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  if (s == "U8") return DType::U8;
  if (s == "I8") return DType::I8;
  return std::nullopt;
}

const char *shortName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::F16: return "f16";
  case DType::BF16: return "bf16";
  case DType::I32: return "i32";
  case DType::U8: return "u8";
  case DType::I8: return "i8";
  }
  return "?";
}

std::optional<DType> dtypeFromShortName(const std::string &s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "f16" || s == "float16") return DType::F16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "i32" || s == "int32") return DType::I32;
  if (s == "u8" || s == "uint8") return DType::U8;
  if (s == "i8" || s == "int8") return DType::I8;
  return std::nullopt;
}

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F16:
  case DType::BF16: return 2;
  case DType::U8:
  case DType::I8: return 1;
  default: return 4;
  }
}

bool convertElements(const void *src, DType from, void *dst, DType to, size_t n) {
  if (from == to) {
    std::memcpy(dst, src, n * dtypeSize(from));
    return true;
  }
  auto isFloat = [](DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; };
  if (!isFloat(from) || !isFloat(to))
    return false;
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
