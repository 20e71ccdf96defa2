//===- Nf4.h - bitsandbytes' NF4 and its double quantization ---*- C++ -*-===//
//
// Bit-exact replicas of bitsandbytes' CPU quantize_4bit(quant_type="nf4") and of the
// double quantization of its absmax (compress_statistics=True: the absmax minus their
// mean, quantized blockwise with the signed dynamic 8-bit map in blocks of 256), as
// bitsandbytes 0.50 computes them on the CPU with PyTorch's float32 kernels. Plain
// C++ (no MLIR), so kernel tests can compile it in.
//
#ifndef QLC_PASSES_NF4_H
#define QLC_PASSES_NF4_H

#include "ir/qlc_nf4_tables.h"

#include <cstdint>
#include <vector>

namespace qlc {

/// The 16 NF4 values (bitsandbytes' get_4bit_type("nf4")), by 4-bit code, and
/// bitsandbytes' create_dynamic_map(signed=True): 256 sorted values in [-1, 1]; the same
/// tables the kernels read (ir/qlc_nf4_tables.h).
inline constexpr const float (&kNf4Code)[16] = nf4_values;
inline constexpr const float (&kDynamicMap8)[256] = nf4_dynamic_map;
/// Blocks of absmax that share one scale under double quantization.
constexpr int64_t kNf4DoubleQuantBlock = 256;

/// Block sizes bitsandbytes' quantize_4bit accepts (32 .. 4096, powers of two).
bool isBnbBlockSize(int64_t blockSize);

/// A flattened weight of `numel` elements quantized to NF4.
struct Nf4Quantized {
  int64_t numel = 0, blockSize = 0, blocks = 0;
  /// ceil(numel/2) bytes, two codes each, high nibble first; an odd numel pads the
  /// last low nibble with the code of 0.0 (7), as bitsandbytes does.
  std::vector<uint8_t> packed;
  /// Without double quantization: the f32 absmax of each block.
  std::vector<float> absmax;
  /// With double quantization: one dynamic-map code per block, one f32 scale per 256
  /// blocks, and the mean that was subtracted (added back when dequantizing).
  bool doubleQuant = false;
  std::vector<uint8_t> absmaxCodes;
  std::vector<float> absmax2;
  float offset = 0.0f;
};

/// bitsandbytes.functional.quantize_4bit(w, blocksize, compress_statistics=doubleQuant,
/// quant_type="nf4") on the CPU, for float32 input (bf16/f16 weights widen exactly).
Nf4Quantized quantizeNf4(const float *w, int64_t numel, int64_t blockSize, bool doubleQuant);

/// bitsandbytes' CPU quantize_blockwise with the dynamic map: per block of `blockSize`
/// the absmax, and each element's code from its 65536-entry lookup table.
void quantizeBlockwiseDynamic(const float *a, int64_t n, int64_t blockSize, uint8_t *codes,
                              float *absmax);

/// torch.Tensor.mean() of a contiguous float32 vector as PyTorch's CPU kernel computes
/// it in one thread with 8-wide (AVX2) vectors: a cascade sum, then one division.
float torchCpuMeanF32(const float *a, int64_t n);

/// Each block's absmax, undoing the double quantization exactly as bitsandbytes does
/// (dynamic value * scale, then + offset, each rounded to float32).
std::vector<float> nf4BlockAbsmax(const Nf4Quantized &q);

/// bitsandbytes.functional.dequantize_4bit: code value * block absmax, in float32.
std::vector<float> dequantizeNf4(const Nf4Quantized &q);

} // namespace qlc

#endif // QLC_PASSES_NF4_H
