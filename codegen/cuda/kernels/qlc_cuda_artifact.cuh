// qlc_cuda_artifact.cuh - the host side of a CUDA artifact's code: the device API the
// runtime drives (qlc/abi.h's qlc_device_api), and the staging of a step's inputs and
// logits between host and device. Generated code includes it once.
#ifndef QLC_CUDA_ARTIFACT_CUH
#define QLC_CUDA_ARTIFACT_CUH

#include "qlc/abi.h"
#include "qlc_cuda_blas.cuh"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

namespace qlc {
namespace cuda {

inline char *error_buffer() {
  static thread_local char buf[768];
  return buf;
}

inline int fail(const char *what, cudaError_t e) {
  std::snprintf(error_buffer(), 768, "%s: %s (%s)", what, cudaGetErrorString(e),
                cudaGetErrorName(e));
  return 2;
}

/// The runtime's pages are not the ones this artifact's kernels were built for.
inline int fail_page_size(int64_t got, int64_t want) {
  std::snprintf(error_buffer(), 768,
                "the session's KV pages hold %lld positions (or it has no block table), the "
                "artifact's kernels %lld",
                static_cast<long long>(got), static_cast<long long>(want));
  return 3;
}

inline int selected_device() {
  const char *env = std::getenv("QLC_CUDA_DEVICE");
  return env != nullptr && *env != '\0' ? std::atoi(env) : 0;
}

/// Checks the driver, the device and its compute capability against `required` (80 for
/// sm_80, ...): SASS for that architecture and its PTX run on it and newer ones.
inline int init_device(int required) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice || n == 0) {
    std::snprintf(error_buffer(), 768,
                  "no usable NVIDIA GPU: %s. This artifact targets sm_%d and needs a GPU of "
                  "compute capability %d.%d or newer with its driver; for the CPU, compile "
                  "with --target native",
                  e == cudaSuccess ? "no device found" : cudaGetErrorString(e), required,
                  required / 10, required % 10);
    return 2;
  }
  if (e != cudaSuccess)
    return fail("cannot query the CUDA devices", e);
  const int dev = selected_device();
  if (dev < 0 || dev >= n) {
    std::snprintf(error_buffer(), 768, "QLC_CUDA_DEVICE=%d: this machine has %d GPU(s)", dev, n);
    return 2;
  }
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, dev)) != cudaSuccess)
    return fail("cannot read the GPU's properties", e);
  const int cc = p.major * 10 + p.minor;
  // SASS of sm_XY runs on X.Y..X.9; the PTX is compiled by the driver for newer majors.
  if (cc < required) {
    std::snprintf(error_buffer(), 768,
                  "GPU %d (%s) has compute capability %d.%d, older than this artifact's "
                  "target sm_%d; recompile with --target sm_%d",
                  dev, p.name, p.major, p.minor, required, cc);
    return 2;
  }
  if ((e = cudaSetDevice(dev)) != cudaSuccess)
    return fail("cannot select the GPU", e);
  if ((e = cudaFree(nullptr)) != cudaSuccess)
    return fail("cannot create a CUDA context", e);
  return 0;
}

inline const char *device_name() {
  static thread_local cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, selected_device()) != cudaSuccess)
    return "unknown GPU";
  return p.name;
}

inline int mem_info(uint64_t *free_bytes, uint64_t *total_bytes) {
  size_t f = 0, t = 0;
  if (cudaError_t e = cudaMemGetInfo(&f, &t))
    return fail("cannot read the GPU's free memory", e);
  *free_bytes = f;
  *total_bytes = t;
  return 0;
}

inline int alloc(void **p, uint64_t bytes) {
  *p = nullptr;
  if (bytes == 0)
    return 0;
  if (cudaError_t e = cudaMalloc(p, bytes)) {
    char what[128];
    std::snprintf(what, sizeof what, "cannot allocate %llu bytes of GPU memory",
                  static_cast<unsigned long long>(bytes));
    *p = nullptr;
    return fail(what, e);
  }
  return 0;
}

inline void release(void *p) {
  if (p != nullptr)
    cudaFree(p);
}

inline int upload(void *dst, const void *src, uint64_t bytes) {
  if (cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice))
    return fail("cannot copy to the GPU", e);
  return 0;
}

inline int zero(void *dst, uint64_t bytes) {
  if (cudaError_t e = cudaMemset(dst, 0, bytes))
    return fail("cannot clear GPU memory", e);
  return 0;
}

inline int stream_create(void **s) {
  cudaStream_t st = nullptr;
  if (cudaError_t e = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking))
    return fail("cannot create a CUDA stream", e);
  *s = st;
  return 0;
}

inline void stream_destroy(void *s) {
  if (s != nullptr)
    cudaStreamDestroy(static_cast<cudaStream_t>(s));
}

/// The device address of a __device__ table.
template <class T> const float *symbol_address(const T &symbol) {
  void *p = nullptr;
  return cudaGetSymbolAddress(&p, symbol) == cudaSuccess ? static_cast<const float *>(p)
                                                        : nullptr;
}

/// The staging area at `offset` of the scratch arena: tokens, positions, slots, logit
/// rows and the rows' argmax (MAXT int32 each, 256-byte aligned), then MAXT x V float
/// logits.
template <int MAXT> constexpr int64_t staging_ints() { return (MAXT * 4 + 255) / 256 * 64; }
template <int MAXT, int V> constexpr int64_t staging_bytes() {
  return 5 * staging_ints<MAXT>() * 4 + int64_t{MAXT} * V * 4;
}

/// Copies the step's host arrays into the staging area; `dev` gets device pointers.
template <int MAXT>
int stage_step(const qlc_exec_ctx *ctx, const qlc_step *h, int64_t offset, cudaStream_t s,
               qlc_step *dev) {
  if (const char *why = blas_required_but_missing()) {
    std::snprintf(error_buffer(), 768, "%s", why);
    return 2;
  }
  int32_t *base = reinterpret_cast<int32_t *>(ctx->scratch + offset);
  constexpr int64_t n = staging_ints<MAXT>();
  int32_t *tok = base, *pos = base + n, *slot = base + 2 * n, *rows = base + 3 * n;
  const size_t b = static_cast<size_t>(h->n_tokens) * 4;
  cudaError_t e = cudaMemcpyAsync(tok, h->tokens, b, cudaMemcpyHostToDevice, s);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(pos, h->positions, b, cudaMemcpyHostToDevice, s);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(slot, h->slots, b, cudaMemcpyHostToDevice, s);
  if (e == cudaSuccess && h->n_logits > 0)
    e = cudaMemcpyAsync(rows, h->logit_rows, static_cast<size_t>(h->n_logits) * 4,
                        cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess)
    return fail("cannot copy the step's tokens to the GPU", e);
  *dev = *h;
  dev->tokens = tok;
  dev->positions = pos;
  dev->slots = slot;
  dev->logit_rows = rows;
  dev->argmax = base + 4 * n;
  dev->logits = reinterpret_cast<float *>(base + 5 * n);
  return 0;
}

/// out[r] = the first index of the largest value of logits row r (NaNs never win; 0 when
/// the row starts with a NaN or holds nothing else): qlc_argmax's rule. One block a row.
template <int V>
__global__ void __launch_bounds__(256)
    argmax_rows_kernel(const float *__restrict__ logits, int32_t *__restrict__ out) {
  const float *l = logits + static_cast<int64_t>(blockIdx.x) * V;
  float bv = 0.0f;
  int bi = -1;                                 // none yet
  for (int i = threadIdx.x; i < V; i += 256) { // ascending: the first of equals stays
    const float v = l[i];
    if (v == v && (bi < 0 || v > bv))
      bv = v, bi = i;
  }
  __shared__ float sv[256];
  __shared__ int si[256];
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int w = 128; w > 0; w /= 2) {
    if (threadIdx.x < w) {
      const float ov = sv[threadIdx.x + w];
      const int oi = si[threadIdx.x + w], mi = si[threadIdx.x];
      if (oi >= 0 && (mi < 0 || ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < mi))) {
        sv[threadIdx.x] = ov;
        si[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    out[blockIdx.x] = l[0] != l[0] || si[0] < 0 ? 0 : si[0];
}

/// Decode steps replay CUDA graphs: one per (session context, tokens, logit rows), made
/// the first time that shape comes, so a step is one launch instead of hundreds. The
/// kernels read tokens, positions and slots from the staging area, so a graph stays
/// valid for every step of its shape; likewise the block table, whose device copy stays
/// at one address while the runtime rewrites it. QLC_CUDA_GRAPHS=0 turns them off.
constexpr int64_t kGraphMaxTokens = 64;

struct GraphCache {
  std::mutex mu;
  std::map<std::tuple<const void *, int64_t, int64_t>, cudaGraphExec_t> execs;
  static GraphCache &get() {
    static GraphCache *c = new GraphCache(); // outlives the artifact's static destructors
    return *c;
  }
};

inline bool graphs_enabled() {
  static const bool on = [] {
    const char *e = std::getenv("QLC_CUDA_GRAPHS");
    return e == nullptr || std::atoi(e) != 0;
  }();
  return on;
}

/// Page-locked host memory per session context for the logits' copy back, grown to the
/// largest step: a copy from the GPU into pageable memory (the caller's buffer) runs at a
/// fraction of the link's speed (with the host's argmax, most of the ~3 ms a 4-layer batch-64
/// step spent outside its kernels; docs/cuda.md). Steps of more than kPinnedLogitsMax bytes
/// copy directly.
constexpr size_t kPinnedLogitsMin = size_t{64} << 10, kPinnedLogitsMax = size_t{64} << 20;

struct PinnedBuffer {
  void *p = nullptr;
  size_t bytes = 0;
  bool failed = false; // cudaMallocHost failed once: copy directly from then on
};
struct PinnedLogits {
  std::mutex mu;
  std::map<const void *, PinnedBuffer> bufs;
  static PinnedLogits &get() {
    static PinnedLogits *c = new PinnedLogits(); // outlives the artifact's static destructors
    return *c;
  }
};

/// A page-locked buffer of at least `bytes` for `ctx`, or nullptr (then copy directly;
/// after a failed allocation always, so a session does not retry it every step).
inline void *pinned_logits(const qlc_exec_ctx *ctx, size_t bytes) {
  PinnedLogits &c = PinnedLogits::get();
  std::lock_guard<std::mutex> lock(c.mu);
  PinnedBuffer &b = c.bufs[ctx];
  if (b.failed)
    return nullptr;
  if (b.bytes < bytes) {
    if (b.p != nullptr)
      cudaFreeHost(b.p);
    b.p = nullptr;
    b.bytes = 0;
    if (cudaMallocHost(&b.p, bytes) != cudaSuccess) {
      cudaGetLastError(); // not sticky: fall back to the direct copy
      b.p = nullptr;
      b.failed = true;
      return nullptr;
    }
    b.bytes = bytes;
  }
  return b.p;
}

/// Drops the graphs, the page-locked logits buffer and the cuBLAS handle made for a
/// session context (the runtime calls it as the session ends).
inline void forget_context(const qlc_exec_ctx *ctx) {
  blas_forget(ctx);
  {
    GraphCache &c = GraphCache::get();
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto it = c.execs.begin(); it != c.execs.end();) {
      if (std::get<0>(it->first) == static_cast<const void *>(ctx)) {
        cudaGraphExecDestroy(it->second);
        it = c.execs.erase(it);
      } else {
        ++it;
      }
    }
  }
  PinnedLogits &p = PinnedLogits::get();
  std::lock_guard<std::mutex> lock(p.mu);
  auto it = p.bufs.find(ctx);
  if (it != p.bufs.end()) {
    if (it->second.p != nullptr)
      cudaFreeHost(it->second.p);
    p.bufs.erase(it);
  }
}

/// Runs `launch(s)` (every kernel of the step), through a cached graph when the step is
/// small enough for one.
template <class F>
int run_kernels(const qlc_exec_ctx *ctx, int64_t M, int64_t n_logits, cudaStream_t s,
                F &&launch) {
  if (!graphs_enabled() || M > kGraphMaxTokens) {
    launch(s);
    return 0;
  }
  GraphCache &c = GraphCache::get();
  const auto key = std::make_tuple(static_cast<const void *>(ctx), M, n_logits);
  cudaGraphExec_t exec = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.execs.find(key);
    if (it != c.execs.end())
      exec = it->second;
  }
  if (exec == nullptr) {
    cudaGraph_t graph = nullptr;
    cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess)
      return fail("cannot capture the decode step's graph", e);
    launch(s);
    e = cudaStreamEndCapture(s, &graph);
    if (e == cudaSuccess)
      e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph != nullptr)
      cudaGraphDestroy(graph);
    if (e != cudaSuccess)
      return fail("cannot build the decode step's graph", e);
    std::lock_guard<std::mutex> lock(c.mu);
    c.execs[key] = exec;
  }
  if (cudaError_t e = cudaGraphLaunch(exec, s))
    return fail("cannot launch the decode step's graph", e);
  return 0;
}

/// Copies the logits back (through the context's page-locked buffer where their size is
/// in [kPinnedLogitsMin, kPinnedLogitsMax]) and waits for the step; reports any error of
/// its kernels.
template <int V>
int finish_step(const qlc_exec_ctx *ctx, const qlc_step *h, const qlc_step *dev, cudaStream_t s) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return fail("a kernel of the forward step failed to launch", e);
  if (h->n_logits > 0 && h->argmax != nullptr) {
    argmax_rows_kernel<V>
        <<<static_cast<unsigned>(h->n_logits), 256, 0, s>>>(dev->logits, dev->argmax);
    e = cudaGetLastError();
    if (e == cudaSuccess)
      e = cudaMemcpyAsync(h->argmax, dev->argmax, static_cast<size_t>(h->n_logits) * 4,
                          cudaMemcpyDeviceToHost, s);
    if (e != cudaSuccess)
      return fail("cannot take the logits' argmax on the GPU", e);
  }
  const bool copy = h->n_logits > 0 && h->logits != nullptr;
  const size_t bytes = copy ? static_cast<size_t>(h->n_logits) * V * 4 : 0;
  void *pin =
      bytes >= kPinnedLogitsMin && bytes <= kPinnedLogitsMax ? pinned_logits(ctx, bytes) : nullptr;
  if (copy)
    e = cudaMemcpyAsync(pin != nullptr ? pin : h->logits, dev->logits, bytes,
                        cudaMemcpyDeviceToHost, s);
  if (e != cudaSuccess)
    return fail("cannot copy the logits from the GPU", e);
  if ((e = cudaStreamSynchronize(s)) != cudaSuccess)
    return fail("the forward step failed on the GPU", e);
  if (copy && pin != nullptr)
    std::memcpy(h->logits, pin, bytes);
  return 0;
}

} // namespace cuda
} // namespace qlc

/// The artifact's exported device API, for an artifact compiled for sm_<REQUIRED>.
#define QLC_CUDA_DEVICE_API(REQUIRED)                                                      \
  extern "C" __attribute__((visibility("default"))) const qlc_device_api *                \
  qlc_artifact_device(void) {                                                            \
    static const qlc_device_api api = {                                                  \
        sizeof(qlc_device_api),       [] { return qlc::cuda::init_device(REQUIRED); },   \
        [] { return static_cast<const char *>(qlc::cuda::error_buffer()); },             \
        &qlc::cuda::device_name,      &qlc::cuda::mem_info,                              \
        &qlc::cuda::alloc,            &qlc::cuda::release,                               \
        &qlc::cuda::upload,           &qlc::cuda::zero,                                  \
        &qlc::cuda::stream_create,    &qlc::cuda::stream_destroy,                        \
        &qlc::cuda::forget_context};                                                     \
    return &api;                                                                         \
  }

#endif // QLC_CUDA_ARTIFACT_CUH
