// qlc_w4_tiles.h - the tile layout of int4 weights in CUDA artifacts.
//
// qlc's int format keeps W [N, K] as rows of K/2 bytes (two codes a byte, low nibble
// first), an f16 scale and a uint8 zero per row and group of G columns. The CUDA decode
// kernels read a 16-row tile's rows g and g + 8 in one warp, a 16-byte chunk (32 codes) of
// each per lane, four chunks a row per step (a quad: 128 codes). In that row layout a
// warp's load touches eight 64-byte pieces 2 KiB apart, and the scales and zeros cost four
// more loads a quad. The tile layout, written by the compiler for CUDA artifacts
// (compiler/Artifact.cpp) and read by the kernels (qlc_cuda_gemv_w4.cuh), stores:
//   * codes: tile by tile, quad by quad, 1 KiB each: the chunk of row g of the tile
//     (g < 8) and lane t at 16 (4 g + t), of row g + 8 at 512 + 16 (4 g + t), so a warp's
//     load is 512 contiguous bytes;
//   * scales and zeros: one 8-byte entry per tile, group and row pair (g, g + 8), in that
//     order: the f16 scales of g and g + 8, then their zeros as 16-bit integers (8 for a
//     symmetric format), so a lane reads both rows' scale and zero with one load.
// It applies when K % 128 == 0, N % 16 == 0 and a quad lies in one group (G % 128 == 0 or
// G >= K). Free of includes beyond <cstdint>: the qlc binary embeds it with the kernels.
#ifndef QLC_W4_TILES_H
#define QLC_W4_TILES_H

#include <cstdint>

#if defined(__CUDACC__)
#define QLC_W4T_HD __host__ __device__
#else
#define QLC_W4T_HD
#endif

namespace qlc {
namespace w4tiles {

/// Whether a K x N int4 weight with groups of G columns takes the tile layout.
QLC_W4T_HD constexpr bool applies(int64_t K, int64_t N, int64_t G) {
  return K > 0 && N > 0 && K % 128 == 0 && N % 16 == 0 && (G % 128 == 0 || G >= K);
}

/// Groups of a row.
QLC_W4T_HD constexpr int64_t groups(int64_t K, int64_t G) { return (K + G - 1) / G; }

/// Byte offset of chunk c (codes 32 c ... 32 c + 31) of row r.
QLC_W4T_HD constexpr int64_t chunk_offset(int64_t K, int64_t r, int64_t c) {
  const int64_t tile = r / 16, gr = r % 16, quad = c / 4, t = c % 4;
  return (tile * (K / 128) + quad) * 1024 + (gr >= 8 ? 512 : 0) + ((gr % 8) * 4 + t) * 16;
}

/// Index of the 8-byte scale/zero entry of row r and group gi.
QLC_W4T_HD constexpr int64_t entry(int64_t K, int64_t G, int64_t r, int64_t gi) {
  return ((r / 16) * groups(K, G) + gi) * 8 + r % 8;
}

/// Bytes of the scale/zero entries of an N-row weight.
constexpr int64_t entry_bytes(int64_t K, int64_t N, int64_t G) { return N / 2 * groups(K, G) * 8; }

/// Host: the codes of rows [N][K/2] into the tile layout (tiles: N * K / 2 bytes).
inline void pack_codes(int64_t K, int64_t N, const uint8_t *rows, uint8_t *tiles) {
  for (int64_t r = 0; r < N; ++r)
    for (int64_t c = 0; c < K / 32; ++c) {
      const uint8_t *src = rows + r * (K / 2) + c * 16;
      uint8_t *dst = tiles + chunk_offset(K, r, c);
      for (int b = 0; b < 16; ++b)
        dst[b] = src[b];
    }
}

/// Host: scales [N][groups] (f16 bits) and zeros [N][groups] (null: symmetric, 8) into
/// the entries (out: entry_bytes(K, N, G) bytes, as 16-bit words, little-endian).
inline void pack_scales(int64_t K, int64_t N, int64_t G, const uint16_t *scales,
                        const uint8_t *zeros, uint16_t *out) {
  const int64_t gr = groups(K, G);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t gi = 0; gi < gr; ++gi) {
      uint16_t *e = out + entry(K, G, r, gi) * 4;
      const int hi = r % 16 >= 8 ? 1 : 0;
      e[hi] = scales[r * gr + gi];
      e[2 + hi] = zeros != nullptr ? zeros[r * gr + gi] : 8;
    }
}

} // namespace w4tiles
} // namespace qlc

#endif // QLC_W4_TILES_H
