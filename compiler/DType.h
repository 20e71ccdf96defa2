//===- DType.h - tensor element types of weight files ----------*- C++ -*-===//
#ifndef QLC_COMPILER_DTYPE_H
#define QLC_COMPILER_DTYPE_H

#include "ir/Float16.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace qlc {

enum class DType { F32, F16, BF16, I32, U8, I8 };

/// The safetensors name ("F32", "BF16", ...) of a dtype, and back.
const char *safetensorsName(DType t);
std::optional<DType> dtypeFromSafetensors(const std::string &s);
/// The short name used on the command line and in manifests ("f32", "bf16", ...).
const char *shortName(DType t);
std::optional<DType> dtypeFromShortName(const std::string &s);
size_t dtypeSize(DType t);


/// Converts n elements of `src` (of type `from`) into `dst` (of type `to`).
/// Float types only; returns false for integer types.
bool convertElements(const void *src, DType from, void *dst, DType to, size_t n);

} // namespace qlc

#endif // QLC_COMPILER_DTYPE_H
