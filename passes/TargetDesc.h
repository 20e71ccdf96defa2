//===- TargetDesc.h - what scheduling passes know of a target --*- C++ -*-===//
//
// The machine facts that the scheduling passes (qlc-select-tiling) weigh: for a CUDA
// architecture the reference part's SM count, shared memory and registers, the tensor-core
// instruction the kernels use and the memory-bandwidth class; for an x86-64 level the
// vector width, the vector registers and the caches. Passes depend on this header, not on
// codegen/TargetInfo.h (layering: ir -> passes -> codegen).
//
// A compile-time target names an architecture, not a card: sm_80 is an A100 (108 SMs) or
// an A30 (56); sm_90 an H100 SXM (132) or PCIe (114). The SM count here is the reference
// part's, used only to rank candidate tiles; the CUDA launchers ask the running device for
// its SM count and size split-K by it (capped by the selected max_split_k).
//
#ifndef QLC_PASSES_TARGETDESC_H
#define QLC_PASSES_TARGETDESC_H

#include <cstdint>
#include <optional>
#include <string>

namespace qlc {

struct TargetDesc {
  std::string name;          // resolved: x86-64, x86-64-v3, x86-64-v4, sm_80, ...
  std::string kind;          // "x86" or "cuda"
  // CUDA
  int smCount = 0;           // SMs of the reference part
  int64_t smemPerSm = 0;     // bytes of shared memory per SM
  int64_t smemPerBlock = 0;  // bytes one block may use (opt-in maximum)
  int64_t regsPerSm = 0;     // 32-bit registers per SM
  std::string tensorCore;    // "mma.sync" (sm_80+; sm_90's wgmma is not used)
  int bandwidthGBs = 0;      // the reference part's DRAM bandwidth class, GB/s
  // x86
  int vectorFloats = 0;      // floats per vector register (1: scalar code)
  int vectorRegs = 0;        // architectural vector registers
  int64_t l1Bytes = 0;       // data cache per core
  int64_t l2Bytes = 0;       // per core
  bool isCuda() const { return kind == "cuda"; }
};

/// The description of a --target name ("native": this machine's x86-64 level); nullopt
/// for an unknown name.
std::optional<TargetDesc> lookupTargetDesc(const std::string &name);

/// The x86-64 level this machine runs (x86-64, x86-64-v3 or x86-64-v4).
std::string hostX86Level();

} // namespace qlc

#endif // QLC_PASSES_TARGETDESC_H
