//===- KernelEmitter.h - @forward -> one kernel call per op ----*- C++ -*-===//
//
// The walk over @forward that every backend shares: scratch buffers planned by
// liveness, the weight table, rope frequency tables, and one templated kernel call per
// op with every shape a template argument. A backend supplies the spelling (namespace,
// the execution argument, element types, the arguments that differ) and wraps the
// calls into its source file.
//
#ifndef QLC_CODEGEN_KERNELEMITTER_H
#define QLC_CODEGEN_KERNELEMITTER_H

#include "codegen/Codegen.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace qlc {

/// A float table the generated code needs (rope inverse frequencies).
struct ConstTable {
  std::string name;
  std::vector<float> values;
};

/// What a backend's per-step area (after the planned activations) is sized from.
struct StagingNeeds {
  int64_t vocab = 0;
  /// (K, N) of every projection whose weights are not f32 (quantized, f16, bf16; the
  /// logits' too): the CUDA backend reserves the f16 tiles of its cuBLAS path for them.
  std::set<std::pair<int64_t, int64_t>> projections;
};

/// What a backend decides about the generated source.
class KernelSyntax {
public:
  virtual ~KernelSyntax() = default;
  /// The call target of kernel `name` with the given template arguments, as written in
  /// the source ("qlc::x86::linear<qlc::x86::Avx2, 64, 32>"), and as recorded for
  /// `qlc inspect` (without the namespace).
  virtual std::string kernel(const std::string &name, const std::vector<std::string> &targs,
                             bool qualified) const = 0;
  /// The target's resolved name (qlc.tiling_target must match it).
  virtual std::string targetName() const = 0;
  /// The tiling template argument of a projection kernel for its qlc.tiling attribute
  /// (qlc-select-tiling); an error message in `error` when a parameter is missing.
  virtual std::string tiling(mlir::DictionaryAttr t, std::string &error) const = 0;
  /// The first argument of every kernel call.
  virtual std::string execArg() const = 0;
  /// The C++ type of a weight element type (f32, f16, bf16, u8, i8, i32).
  virtual std::string elementType(const std::string &dtype) const = 0;
  /// Whether the kernels take an input permutation (qlinear_int_perm).
  virtual bool supportsPerm() const = 0;
  /// Whether int4 projections whose shapes allow it store their weights in the tile
  /// layout of ir/qlc_w4_tiles.h (qlinear_int_tiles).
  virtual bool w4Tiles() const = 0;
  /// The KV storage format type for a kv_dtype.
  virtual std::string kvFormat(const std::string &dtype) const = 0;
  /// Arguments of attention after the execution argument (the KV page size is a
  /// template argument); `invFreq`: the table of a fused rotary embedding
  /// (qlc-fuse-rope) or "nullptr". The kernels take the row strides of q and of k/v
  /// (qlc-fold-qkv-split) after these, defaulted to the heads' widths.
  virtual std::string attentionArgs(int64_t layer, const std::string &scale,
                                    const std::string &q, const std::string &k,
                                    const std::string &v, const std::string &out,
                                    const std::string &invFreq) const = 0;
  /// Arguments of logits after the execution argument.
  virtual std::string logitsArgs(const std::string &x, const std::string &w,
                                 const std::string &tmp) const = 0;
  /// The expression that names table `t` inside the forward function.
  virtual std::string tableRef(const ConstTable &t) const = 0;
  /// Scratch bytes the backend reserves after the activations (step staging).
  virtual int64_t stagingBytes(const CodegenOptions &opts, const StagingNeeds &needs) const = 0;
  /// The whole source: tables, static checks (`decls`), the forward body with its calls.
  virtual std::string finish(const std::vector<ConstTable> &tables, const std::string &decls,
                             const std::string &body, const CodegenOptions &opts,
                             int64_t stagingOffset, const StagingNeeds &needs) const = 0;
};

/// Parameter `key` of range `range` of a qlc.tiling attribute; -1 when absent.
int64_t tilingParam(mlir::DictionaryAttr t, const std::string &range, const std::string &key);

/// Walks @forward and emits it through `syntax`.
llvm::Expected<CodegenResult> emitKernelCalls(mlir::ModuleOp module, const KernelSyntax &syntax,
                                              const CodegenOptions &opts);

} // namespace qlc

#endif // QLC_CODEGEN_KERNELEMITTER_H
