//===- Autotune.cpp - qlc compile --autotune -------------------------------===//
//
// Times every candidate config (passes/Tiling.h) of every distinct projection kernel of
// the module on this machine and stores the fastest per range in the tuning cache, which
// qlc-select-tiling then prefers over its cost model. The timing program is generated
// from the same kernel headers the artifact uses, with the same template arguments codegen
// emits, and built with the target's compiler: c++ for x86 (timed on this CPU, one
// thread), nvcc for CUDA (timed on this machine's GPU with CUDA events). Each candidate
// runs a few warm-up calls, then `reps` timed calls; the median is kept.
//
#include "compiler/Autotune.h"
#include "codegen/Codegen.h"
#include "passes/Tiling.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;

namespace qlc {

namespace {

llvm::Error badInput(const std::string &msg) { return llvm::make_error<CompileError>(msg, true); }
llvm::Error internal(const std::string &msg) { return llvm::make_error<CompileError>(msg, false); }

/// A projection kernel to time: its shape and how to call it.
struct Job {
  ProjShape shape;
  std::string dtype; // dense: f32 | f16 | bf16
  int64_t bits = 0, group = 0;
  bool dq = false;
};

std::string get(const TileConfig &c, const char *k) {
  for (const auto &[n, v] : c)
    if (n == k)
      return std::to_string(v);
  return "0";
}

/// The tiling template argument for the candidate `c` of range `range`, the other ranges
/// at their defaults (as codegen spells qlc.tiling).
std::string tilingArg(bool cuda, const std::string &range, const TileConfig &c) {
  if (!cuda) {
    const bool d = range == "decode", s = range == "small", p = range == "prefill";
    return fmt::format("qlc::x86::Tiling<{}, {}, {}, {}, {}, {}>", d ? get(c, "rows") : "0",
                       s ? get(c, "mr") : "0", s ? get(c, "nr") : "0",
                       p ? get(c, "mr") : "0", p ? get(c, "nv") : "0", p ? get(c, "kc") : "0");
  }
  const std::string gemv = range == "decode"
                               ? fmt::format("qlc::cuda::GemvCfg<{}, {}, {}>", get(c, "warps"),
                                             get(c, "rows"), get(c, "unroll"))
                               : "qlc::cuda::GemvCfg<>";
  auto mma = [&](const char *r, const char *def) {
    return range == r ? fmt::format("qlc::cuda::MmaCfg<{}, {}, {}, {}, {}>", get(c, "bm"),
                                    get(c, "bn"), get(c, "warps_m"), get(c, "warps_n"),
                                    get(c, "max_split_k"))
                      : std::string(def);
  };
  return "qlc::cuda::Tiling<" + gemv + ", " + mma("small", "qlc::cuda::MmaSmall") + ", " +
         mma("prefill", "qlc::cuda::MmaLarge") + ">";
}

/// M that represents a range in the timing.
int64_t rangeM(const TilingRange &r, bool cuda, int64_t maxTokens) {
  if (r.name == "decode")
    return 1;
  if (r.name == "small")
    return cuda ? 16 : 8;
  return std::max<int64_t>(r.minM, std::min<int64_t>(maxTokens, cuda ? 256 : 64));
}

/// The statement that runs job j's kernel with `targ` on M rows (buffers of shape j).
std::string kernelCall(const Job &j, int idx, bool cuda, const std::string &isa,
                       const std::string &targ) {
  const std::string ns = cuda ? "qlc::cuda::" : "qlc::x86::";
  const std::string ty = cuda ? "qlc::cuda::" : "qlc::"; // f16, bf16
  const std::string ex = cuda ? "s" : "&ctx";
  const std::string pre = cuda ? "" : isa + ", ";
  const int64_t k = j.shape.k, n = j.shape.n;
  if (j.shape.family == ProjShape::Dense) {
    const std::string wt = j.dtype == "f32" ? "float" : ty + j.dtype;
    return fmt::format("{}linear<{}{}, {}, {}, {}>({}, M, b{}.x, static_cast<const {} *>(b{}.w), "
                       "nullptr, b{}.y)",
                       ns, pre, k, n, wt, targ, ex, idx, wt, idx, idx);
  }
  if (j.shape.family == ProjShape::Int)
    return fmt::format("{}qlinear_int<{}{}, {}, {}, {}, {}>({}, M, b{}.x, b{}.q, "
                       "static_cast<const {}f16 *>(b{}.s), b{}.z, nullptr, b{}.y)",
                       ns, pre, k, n, j.bits, j.group, targ, ex, idx, idx, ty, idx, idx, idx);
  return fmt::format("{}qlinear_nf4<{}{}, {}, {}, {}, {}>({}, M, b{}.x, b{}.q, "
                     "static_cast<const {} *>(b{}.s), static_cast<const float *>(b{}.s2), "
                     "0.01f, nullptr, b{}.y)",
                     ns, pre, k, n, j.group, j.dq ? "true" : "false", targ, ex, idx, idx,
                     j.dq ? "uint8_t" : "float", idx, idx, idx);
}

/// Byte sizes of job j's buffers: w/q, s (scales or absmax), s2, z.
struct Sizes {
  int64_t w = 0, s = 0, s2 = 0, z = 0;
};
Sizes sizesOf(const Job &j) {
  const int64_t k = j.shape.k, n = j.shape.n;
  Sizes z;
  if (j.shape.family == ProjShape::Dense) {
    z.w = n * k * (j.dtype == "f32" ? 4 : 2);
  } else if (j.shape.family == ProjShape::Int) {
    const int64_t g = j.group > 0 ? j.group : k, groups = (k + g - 1) / g;
    z.w = n * ((k * j.bits + 7) / 8);
    z.s = n * groups * 2;
    z.z = n * groups;
  } else {
    const int64_t blocks = (n * k + j.group - 1) / j.group;
    z.w = (n * k + 1) / 2;
    z.s = blocks * (j.dq ? 1 : 4);
    z.s2 = ((blocks + 255) / 256) * 4;
  }
  return z;
}

std::string program(const std::vector<Job> &jobs, const TargetDesc &t, const std::string &isa,
                    int64_t maxTokens, std::vector<std::pair<int, TilingRange>> &order) {
  const bool cuda = t.isCuda();
  std::string bufs, runs;
  int64_t maxM = 1;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job &j = jobs[i];
    const Sizes z = sizesOf(j);
    // 16-bit data: small positive halves (bf16: tiny values), never NaN or inf.
    bufs += fmt::format("  Buf b{} = make_buf({}, {}, {}, {}, {}, {}, {});\n", i, j.shape.k,
                        j.shape.n, z.w, z.s, z.s2, z.z,
                        j.shape.family == ProjShape::Dense && j.dtype == "f32" ? "true"
                        : j.shape.family == ProjShape::Nf4 && !j.dq            ? "true"
                                                                               : "false");
    for (const TilingRange &r : tilingRanges(t, j.shape, maxTokens)) {
      const int64_t m = rangeM(r, cuda, maxTokens);
      maxM = std::max(maxM, m);
      for (const TileConfig &c : r.candidates) {
        runs += fmt::format("  {{ const int64_t M = {}; report({}, time_it([&] {{ {}; }})); }}\n",
                            m, order.size(), kernelCall(j, static_cast<int>(i), cuda, isa,
                                                        tilingArg(cuda, r.name, c)));
        TilingRange one = r;
        one.candidates = {c};
        order.emplace_back(static_cast<int>(i), one);
      }
    }
  }
  std::string head = cuda ? R"(#include "qlc_cuda_kernels.cuh"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
static cudaStream_t s;
static void *dev(const std::vector<unsigned char> &h) {
  void *p = nullptr;
  if (cudaMalloc(&p, h.size() + 16) != cudaSuccess) {
    std::fprintf(stderr, "cudaMalloc failed\n");
    std::exit(3);
  }
  cudaMemcpy(p, h.data(), h.size(), cudaMemcpyHostToDevice);
  return p;
}
template <class F> static double time_it(F &&f) {
  cudaEvent_t a, b;
  cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < 20; ++i) {
    cudaEventRecord(a, s); f(); cudaEventRecord(b, s); cudaEventSynchronize(b);
    float ms = 0; cudaEventElapsedTime(&ms, a, b); t.push_back(ms * 1000.0);
  }
  if (cudaGetLastError() != cudaSuccess) {
    std::fprintf(stderr, "a kernel failed\n");
    std::exit(3);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
)"
                         : R"(#include "qlc_x86_kernels.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
static qlc_exec_ctx ctx{};
static void *dev(const std::vector<unsigned char> &h) {
  void *p = std::aligned_alloc(64, (h.size() + 64) / 64 * 64);
  std::copy(h.begin(), h.end(), static_cast<unsigned char *>(p));
  return p;
}
template <class F> static double time_it(F &&f) {
  using C = std::chrono::steady_clock;
  f();
  std::vector<double> t;
  const auto start = C::now();
  for (int i = 0; i < 200 && (i < 5 || C::now() - start < std::chrono::milliseconds(200)); ++i) {
    const auto a = C::now(); f();
    t.push_back(std::chrono::duration<double, std::micro>(C::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
)";
  head += R"(static std::mt19937 rng(7);
static std::vector<unsigned char> bytes(int64_t n, bool f32, bool halves) {
  std::vector<unsigned char> v(static_cast<size_t>(n));
  if (f32) {
    std::uniform_real_distribution<float> d(-0.05f, 0.05f);
    for (int64_t i = 0; i + 4 <= n; i += 4) { float f = d(rng); std::memcpy(&v[i], &f, 4); }
  } else if (halves) {
    for (int64_t i = 0; i + 2 <= n; i += 2) {
      uint16_t h = 0x2000 | (rng() & 0x3ff);
      std::memcpy(&v[i], &h, 2);
    }
  } else {
    for (auto &b : v) b = static_cast<unsigned char>(rng());
  }
  return v;
}
struct Buf { float *x, *y; const uint8_t *q, *z; const void *w, *s, *s2; };
static int64_t max_m;
static Buf make_buf(int64_t k, int64_t n, int64_t w, int64_t sb, int64_t s2, int64_t z, bool f32) {
  Buf b;
  b.x = static_cast<float *>(dev(bytes(max_m * k * 4, true, false)));
  b.y = static_cast<float *>(dev(bytes(max_m * n * 4, true, false)));
  b.w = dev(bytes(w, f32 && sb == 0, !f32 && sb == 0));
  b.q = static_cast<const uint8_t *>(b.w);
  b.s = sb ? dev(bytes(sb, f32, !f32 && z > 0)) : nullptr;
  b.s2 = s2 ? dev(bytes(s2, true, false)) : nullptr;
  b.z = z ? static_cast<const uint8_t *>(dev(bytes(z, false, false))) : nullptr;
  return b;
}
static void report(int i, double us) { std::printf("%d %.3f\n", i, us); std::fflush(stdout); }
int main() {
)";
  head += fmt::format("  max_m = {};\n", maxM);
  if (cuda)
    head += "  cudaStreamCreate(&s);\n";
  return head + bufs + runs + "  return 0;\n}\n";
}

} // namespace

llvm::Error checkAutotuneMachine(const TargetInfo &target) {
  if (target.kind() != "cuda")
    return llvm::Error::success();
  auto smi = llvm::sys::findProgramByName("nvidia-smi");
  std::string gpus;
  if (smi) {
    llvm::SmallString<128> out;
    llvm::sys::fs::createTemporaryFile("qlc-smi", "txt", out);
    std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(out),
                                                  llvm::StringRef(out)};
    if (llvm::sys::ExecuteAndWait(*smi, {*smi, "-L"}, std::nullopt, redirects) == 0)
      if (auto buf = llvm::MemoryBuffer::getFile(out))
        gpus = (*buf)->getBuffer().str();
    llvm::sys::fs::remove(out);
  }
  if (gpus.find("GPU") == std::string::npos)
    return badInput("--autotune --target " + target.name() +
                    ": no NVIDIA GPU on this machine (nvidia-smi -L lists none); run it on "
                    "the machine with the GPU, or compile without --autotune");
  return llvm::Error::success();
}

llvm::Error autotuneProjections(mlir::ModuleOp module, const TargetInfo &target,
                                const CompileOptions &opts, const std::string &cachePath) {
  auto desc = lookupTargetDesc(target.name());
  if (!desc)
    return badInput("--autotune: no target description for " + target.name());
  const bool cuda = desc->isCuda();
  if (llvm::Error e = checkAutotuneMachine(target))
    return e;
  // The distinct kernels of the module.
  std::vector<Job> jobs;
  std::map<std::tuple<std::string, int64_t, int64_t>, bool> seen;
  module.walk([&](mlir::Operation *op) {
    auto shape = projShapeOf(op);
    if (!shape || !seen.emplace(std::make_tuple(shape->kernel, shape->k, shape->n), true).second)
      return;
    Job j;
    j.shape = *shape;
    if (shape->family == ProjShape::Dense) {
      j.dtype = shape->kernel.substr(7); // linear.<dtype>
    } else if (shape->family == ProjShape::Int) {
      j.bits = std::stoi(shape->kernel.substr(11, 1)); // qlinear.int<b>.g<G>
      j.group = std::stoll(shape->kernel.substr(shape->kernel.rfind(".g") + 2));
      if (j.group == 0)
        j.group = shape->k;
    } else {
      j.dq = shape->kernel.find("nf4-dq") != std::string::npos;
      j.group = std::stoll(shape->kernel.substr(shape->kernel.rfind(".b") + 2));
    }
    jobs.push_back(j);
  });
  if (jobs.empty())
    return llvm::Error::success();

  llvm::SmallString<128> dir;
  if (auto ec = llvm::sys::fs::createUniqueDirectory("qlc-autotune", dir))
    return internal("cannot create a temporary directory: " + ec.message());
  const fs::path d(dir.str().str());
  fs::create_directories(d / "include" / "qlc");
  for (const EmbeddedFile &f : embeddedKernelSources()) {
    std::ofstream o(d / "include" / f.path, std::ios::binary);
    o << f.contents;
  }
  std::vector<std::pair<int, TilingRange>> order;
  const std::string src = (d / (cuda ? "tune.cu" : "tune.cpp")).string();
  {
    std::ofstream o(src);
    o << program(jobs, *desc, target.kernelIsa(), opts.maxTokens, order);
  }
  // Build: the target's compiler and flags, as an executable.
  std::string compiler = cuda ? opts.nvcc : opts.cxx;
  if (compiler.empty()) {
    for (const char *c : cuda ? std::vector<const char *>{"nvcc", "/usr/local/cuda/bin/nvcc"}
                              : std::vector<const char *>{"c++", "g++", "clang++"}) {
      if (auto p = llvm::sys::findProgramByName(c)) {
        compiler = *p;
        break;
      }
    }
  }
  if (compiler.empty())
    return badInput(std::string("--autotune needs ") + (cuda ? "nvcc" : "a C++ compiler"));
  std::vector<std::string> args = {compiler};
  for (const std::string &f : target.codeBuild().flags)
    if (f != "-shared" && f != "-fPIC" && f != "-fvisibility=hidden")
      args.push_back(f == "-fPIC,-fvisibility=hidden" ? "-fPIC" : f);
  const std::string exe = (d / "tune").string(), log = (d / "log.txt").string();
  args.insert(args.end(), {"-I" + (d / "include").string(), src, "-o", exe});
  std::vector<llvm::StringRef> refs(args.begin(), args.end());
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(log),
                                                llvm::StringRef(log)};
  llvm::errs() << "qlc: autotune: building the timing program (" << order.size()
               << " candidates of " << jobs.size() << " kernels)\n";
  std::string execErr;
  if (llvm::sys::ExecuteAndWait(compiler, refs, std::nullopt, redirects, 0, 0, &execErr) != 0) {
    std::string out;
    if (auto buf = llvm::MemoryBuffer::getFile(log))
      out = (*buf)->getBuffer().take_back(2000).str();
    return internal("--autotune: the timing program " + src + " did not build: " + execErr +
                    "\n" + out);
  }
  const std::string times = (d / "times.txt").string();
  std::optional<llvm::StringRef> runRedirects[] = {std::nullopt, llvm::StringRef(times),
                                                   llvm::StringRef(log)};
  llvm::errs() << "qlc: autotune: timing on this " << (cuda ? "GPU" : "CPU") << "\n";
  if (llvm::sys::ExecuteAndWait(exe, {exe}, std::nullopt, runRedirects, 0, 0, &execErr) != 0) {
    std::string out;
    if (auto buf = llvm::MemoryBuffer::getFile(log))
      out = (*buf)->getBuffer().take_back(1000).str();
    return internal("--autotune: the timing program failed: " + execErr + " " + out);
  }
  // Winners per (kernel, k, n, range).
  std::map<std::tuple<std::string, int64_t, int64_t, std::string>, TuningEntry> best;
  {
    std::ifstream in(times);
    int idx;
    double us;
    while (in >> idx >> us) {
      if (idx < 0 || idx >= static_cast<int>(order.size()))
        continue;
      const Job &j = jobs[order[idx].first];
      const TilingRange &r = order[idx].second;
      auto key = std::make_tuple(j.shape.kernel, j.shape.k, j.shape.n, r.name);
      auto it = best.find(key);
      if (it == best.end() || us < it->second.micros) {
        TuningEntry e{target.name(), j.shape.kernel, r.name, j.shape.k, j.shape.n,
                      r.candidates.front(), us};
        std::sort(e.config.begin(), e.config.end());
        best[key] = e;
      }
    }
  }
  // Merge into the cache: entries of other targets and shapes stay.
  std::vector<TuningEntry> entries;
  if (llvm::sys::fs::exists(cachePath)) {
    auto old = loadTuningCache(cachePath);
    if (!old)
      return badInput(llvm::toString(old.takeError()));
    for (TuningEntry &e : *old)
      if (e.target != target.name() ||
          !best.count(std::make_tuple(e.kernel, e.k, e.n, e.range)))
        entries.push_back(std::move(e));
  }
  for (auto &[key, e] : best) {
    llvm::errs() << fmt::format("qlc: autotune: {} {}x{} {}: {} ({:.1f} us)\n", e.kernel, e.k,
                                e.n, e.range, formatTileConfig(e.config), e.micros);
    entries.push_back(e);
  }
  std::error_code ec;
  fs::create_directories(fs::absolute(cachePath).parent_path(), ec);
  std::ofstream o(cachePath);
  o << writeTuningCache(entries);
  if (!o)
    return badInput("--tuning-cache " + cachePath + ": cannot be written");
  if (!opts.keepTemps)
    fs::remove_all(d, ec);
  return llvm::Error::success();
}

} // namespace qlc
