//===- Tiling.h - kernel configs of the projections per M-range -*- C++ -*-===//
//
// The configurations the projection kernels take as template arguments, per range of
// token rows M, the candidates that are legal for a target, and the cost model that
// picks one (qlc-select-tiling). Autotuning (qlc compile --autotune) times the same
// candidates and stores the winners in a cache file keyed by target, kernel, shape and
// range; this header names that key.
//
// CUDA (codegen/cuda/kernels): decode M <= 8 runs the GEMV (warps per block, weight
// rows per warp, units loaded ahead per lane); small 9 <= M <= 32 and prefill M > 32
// run the tensor-core GEMM (block tile bm x bn, warps_m x warps_n warps, max_split_k:
// the most K splits the launcher may choose from the running GPU's SM count).
// x86 (codegen/x86/kernels): decode is the GEMV (dense M == 1, int M <= 3: weight rows
// per step), small 2 <= M <= 15 the dense register tiles (mr token rows x nr weight
// rows), prefill the packed GEMM (mr rows x nv vectors, kc-long K slices).
//
#ifndef QLC_PASSES_TILING_H
#define QLC_PASSES_TILING_H

#include "passes/TargetDesc.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlir {
class Operation;
} // namespace mlir

namespace qlc {

/// A configuration of one range: named integer parameters, in the kernels' order.
using TileConfig = std::vector<std::pair<std::string, int64_t>>;

/// What a projection's kernel is, for choosing and for the cache key.
struct ProjShape {
  enum Family { Dense, Int, Nf4 } family = Dense;
  /// The cache key of the kernel: "linear.f16", "qlinear.int4.g128", "qlinear.nf4.b64",
  /// "qlinear.nf4-dq.b64".
  std::string kernel;
  int64_t k = 0, n = 0;
};

/// One M-range of a kernel: [minM, maxM] (maxM 0: unbounded), the legal candidates and
/// the cost model's choice (one of them).
struct TilingRange {
  std::string name; // decode | small | prefill
  int64_t minM = 1, maxM = 0;
  std::vector<TileConfig> candidates;
  TileConfig model;
};

/// The ranges of `shape`'s kernel on `target`, with candidates and the model's pick.
/// `maxTokens` bounds the prefill range (the M the model assumes there).
std::vector<TilingRange> tilingRanges(const TargetDesc &target, const ProjShape &shape,
                                      int64_t maxTokens = 512);

/// One winner of qlc compile --autotune: the fastest config of `kernel` [k, n] on
/// `target` over `range`, and its time per call in microseconds.
struct TuningEntry {
  std::string target, kernel, range;
  int64_t k = 0, n = 0;
  TileConfig config; // sorted by name
  double micros = 0;
};

/// Reads a tuning cache file: {"qlc_tuning_cache": 1, "entries": [{"target", "kernel",
/// "k", "n", "range", "config": {name: int}, "us"}...]}. An error names the file.
llvm::Expected<std::vector<TuningEntry>> loadTuningCache(const std::string &path);
/// The JSON text of a tuning cache holding `entries`.
std::string writeTuningCache(const std::vector<TuningEntry> &entries);
/// Whether two configs hold the same parameters (in any order).
bool sameConfig(const TileConfig &a, const TileConfig &b);

/// The kernel shape of a qlc.linear, qlc.quantized_linear or qlc.logits; nullopt for
/// other ops and for formats without a tunable kernel.
std::optional<ProjShape> projShapeOf(mlir::Operation *op);

/// "k=v k=v ..." for messages.
std::string formatTileConfig(const TileConfig &c);

} // namespace qlc

#endif // QLC_PASSES_TILING_H
