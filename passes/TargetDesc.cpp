//===- TargetDesc.cpp - the machine facts of each --target -----------------===//
#include "passes/TargetDesc.h"

namespace qlc {

std::string hostX86Level() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return "x86-64-v4";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return "x86-64-v3";
#endif
  return "x86-64";
}

std::optional<TargetDesc> lookupTargetDesc(const std::string &name) {
  TargetDesc d;
  const std::string n = name == "native" ? hostX86Level() : name;
  d.name = n;
  if (n == "x86-64" || n == "x86-64-v3" || n == "x86-64-v4") {
    d.kind = "x86";
    // Caches: a typical core of the level (32-48 KiB L1d; 1-2 MiB L2 on v4 parts).
    d.vectorFloats = n == "x86-64-v4" ? 16 : n == "x86-64-v3" ? 8 : 1;
    d.vectorRegs = n == "x86-64-v4" ? 32 : 16;
    d.l1Bytes = 32 * 1024;
    d.l2Bytes = n == "x86-64-v4" ? 2 * 1024 * 1024 : 1024 * 1024;
    return d;
  }
  d.kind = "cuda";
  d.tensorCore = "mma.sync";
  d.regsPerSm = 65536;
  if (n == "sm_80") { // A100 SXM
    d.smCount = 108, d.smemPerSm = 164 * 1024, d.smemPerBlock = 163 * 1024;
    d.bandwidthGBs = 2039;
  } else if (n == "sm_86") { // A10 (72 SMs) .. RTX 3090 (82): the 3090
    d.smCount = 82, d.smemPerSm = 100 * 1024, d.smemPerBlock = 99 * 1024;
    d.bandwidthGBs = 936;
  } else if (n == "sm_89") { // L4 (58 SMs) .. RTX 4090 (128): the L4, the data-center part
    d.smCount = 58, d.smemPerSm = 100 * 1024, d.smemPerBlock = 99 * 1024;
    d.bandwidthGBs = 300;
  } else if (n == "sm_90") { // H100 SXM (H200: the same 132 SMs)
    d.smCount = 132, d.smemPerSm = 228 * 1024, d.smemPerBlock = 227 * 1024;
    d.bandwidthGBs = 3350;
  } else {
    return std::nullopt;
  }
  return d;
}

} // namespace qlc
