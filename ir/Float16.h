//===- Float16.h - f16 and bf16 conversions --------------------*- C++ -*-===//
#ifndef QLC_IR_FLOAT16_H
#define QLC_IR_FLOAT16_H

#include <cstdint>

namespace qlc {

/// IEEE half and bfloat16 to and from float32, rounding to nearest even.
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bf16ToFloat(uint16_t h);
uint16_t floatToBf16(float f);

} // namespace qlc

#endif // QLC_IR_FLOAT16_H
