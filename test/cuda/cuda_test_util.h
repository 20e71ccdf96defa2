// cuda_test_util.h - device buffers, random data and the result table of the CUDA kernel
// test (cuda_kernel_test.cu, cuda_attention_test.cu).
#ifndef QLC_CUDA_TEST_UTIL_H
#define QLC_CUDA_TEST_UTIL_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace qlc {
namespace cudatest {

template <class T> inline T fromFloat(float v);
template <> inline float fromFloat<float>(float v) { return v; }
template <> inline __half fromFloat<__half>(float v) { return __float2half_rn(v); }
template <> inline __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
inline double toFloat(float v) { return v; }
inline double toFloat(__half v) { return __half2float(v); }
inline double toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

/// Random values: `value` is never zero (magnitude in [0.05, 1] times amp, random sign).
struct Rng {
  explicit Rng(uint64_t seed) : g(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * std::uniform_real_distribution<float>(0.0f, 1.0f)(g);
  }
  float value(float amp) { return (g() & 1 ? 1.0f : -1.0f) * amp * uniform(0.05f, 1.0f); }
  size_t index(size_t n) { return static_cast<size_t>(g() % n); }
  std::vector<float> floats(int64_t n, float amp) {
    std::vector<float> v(n);
    for (auto &x : v)
      x = value(amp);
    return v;
  }
  template <class T> std::vector<T> weights(int64_t n, float amp) {
    std::vector<T> v(n);
    for (auto &x : v)
      x = fromFloat<T>(value(amp));
    return v;
  }
  std::mt19937_64 g;
};

/// Random int weights in qlc's packed layout (rows of K codes, low nibble first), with
/// their scales, zeros and the dequantized values (zero 2^(BITS-1) when not asym).
template <int K, int N, int BITS, int G> struct IntWeights {
  static constexpr int64_t GROUPS = (K + G - 1) / G, ROW_BYTES = (int64_t{K} * BITS + 7) / 8;
  std::vector<uint8_t> q, zeros;
  std::vector<__half> scales;
  std::vector<double> wdec;
  IntWeights(Rng &rng, bool asym) : q(N * ROW_BYTES), zeros(N * GROUPS), scales(N * GROUPS) {
    for (auto &b : q)
      b = static_cast<uint8_t>(rng.index(256));
    for (auto &z : zeros)
      z = static_cast<uint8_t>(rng.index(1 << BITS));
    for (auto &s : scales)
      s = __float2half_rn(rng.uniform(0.002f, 0.05f));
    wdec.resize(int64_t{N} * K);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) {
        const uint8_t *row = q.data() + n * ROW_BYTES;
        const int c = BITS == 8 ? row[k] : (row[k / 2] >> (4 * (k % 2))) & 0xF;
        const int64_t gi = n * GROUPS + k / G;
        const double z = asym ? zeros[gi] : (1 << (BITS - 1));
        wdec[int64_t{n} * K + k] = (c - z) * static_cast<double>(__half2float(scales[gi]));
      }
  }
};

/// A device array of n T; poison() fills it with NaN bytes (0xFF).
template <class T> struct DevBuf {
  explicit DevBuf(int64_t count) : n(count) {
    if (cudaMalloc(&p, sizeof(T) * (n > 0 ? n : 1)) != cudaSuccess) {
      std::fprintf(stderr, "cudaMalloc of %lld bytes failed\n",
                   static_cast<long long>(sizeof(T) * n));
      std::exit(1);
    }
  }
  explicit DevBuf(const std::vector<T> &h) : DevBuf(static_cast<int64_t>(h.size())) { put(h); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
  void put(const std::vector<T> &h) { cudaMemcpy(p, h.data(), sizeof(T) * n, cudaMemcpyHostToDevice); }
  void poison() { cudaMemset(p, 0xFF, sizeof(T) * n); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost);
    return h;
  }
  T *p = nullptr;
  int64_t n;
};

inline std::string caseName(const char *kernel, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return std::string(kernel) + " " + buf;
}

struct Result {
  std::string name;
  int M;
  double err, tol;
  bool ok;
  std::string why;
};
inline std::vector<Result> &results() {
  static std::vector<Result> r;
  return r;
}

/// The launch's error, then the device's after a synchronize; "" when none.
inline std::string launchError() {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess)
    e = cudaDeviceSynchronize();
  return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

inline void recordLaunch(const std::string &name, cudaError_t e) {
  const std::string err = e == cudaSuccess ? launchError() : cudaGetErrorString(e);
  results().push_back({name, 0, 0.0, 0.0, err.empty(), err});
}

/// Compares the device output y with ref: every element finite, ||y - ref|| / ||ref||
/// at most tol (0: exact).
inline void check(const std::string &name, int M, const DevBuf<float> &y,
                  const std::vector<double> &ref, double tol) {
  const std::string err = launchError();
  if (!err.empty()) {
    results().push_back({name, M, NAN, tol, false, "CUDA error: " + err});
    return;
  }
  const std::vector<float> h = y.get();
  int64_t nonFinite = 0;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(h[i])) {
      ++nonFinite;
      continue;
    }
    num += (h[i] - ref[i]) * (h[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  std::string why;
  if (nonFinite > 0)
    why = std::to_string(nonFinite) + " of " + std::to_string(ref.size()) +
          " elements unwritten or not finite";
  else if (!(rel <= tol))
    why = "error above tolerance";
  results().push_back({name, M, rel, tol, why.empty(), why});
}

/// Records an exact comparison counted elsewhere (e.g. mismatched bytes).
inline void checkCount(const std::string &name, int M, int64_t bad, int64_t total) {
  const std::string err = launchError();
  const bool ok = err.empty() && bad == 0;
  results().push_back({name, M, total > 0 ? static_cast<double>(bad) / total : 0.0, 0.0, ok,
                       !err.empty() ? "CUDA error: " + err
                       : bad > 0    ? std::to_string(bad) + " of " + std::to_string(total) +
                                       " bytes differ"
                                    : ""});
}

/// Prints the table and the verdict; the exit status.
inline int report() {
  int failed = 0;
  std::printf("%-60s %4s %11s %9s  %s\n", "case", "M", "rel.err", "tol", "status");
  for (const Result &r : results()) {
    std::printf("%-60s %4d %11.3e %9.1e  %s%s%s\n", r.name.c_str(), r.M, r.err, r.tol,
                r.ok ? "ok" : "FAIL", r.why.empty() ? "" : ": ", r.why.c_str());
    failed += !r.ok;
  }
  if (failed == 0)
    std::printf("ALL PASSED (%zu cases)\n", results().size());
  else
    std::printf("%d of %zu cases FAILED\n", failed, results().size());
  return failed == 0 ? 0 : 1;
}

} // namespace cudatest
} // namespace qlc

#endif // QLC_CUDA_TEST_UTIL_H
