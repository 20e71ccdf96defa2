// qlc_cuda_blas.cuh - projections of many token rows (prefill) through cuBLAS.
//
// From kBlasMinM rows on, a projection y[M, N] = x[M, K] * W^T (+ bias) whose weights are
// quantized (or bf16) is computed as: the weights dequantized, a band of rows of at most
// kBlasChunkElems at a time, into an f16 tile by this file's kernel - the same
// f16 values the tensor-core GEMM of qlc_cuda_mma.cuh stages, from the weight source's
// fetch()/expand() - x rounded to f16 once, and cuBLAS's f16 GEMM with f32 accumulation
// and f32 output for each band. f16 weights go to cuBLAS as they are. (vLLM's AWQ path
// does the same from 256 tokens on.) Only the products change hands: the dequantization,
// like every quantized format's layout, stays ours.
//
// cuBLAS is opened with dlopen when first needed, so an artifact does not depend on it:
// without it (or with QLC_CUBLAS=0) the tensor-core GEMM runs instead; QLC_CUBLAS=1
// makes its absence an error. The scratch for
// the f16 tiles comes from the caller: the artifact reserves it in its scratch arena
// (codegen/cuda/EmitCuda.cpp) and puts a BlasScope around the step; launchers called
// outside a scope (the kernel tests' own GEMM) never take this path.
#ifndef QLC_CUDA_BLAS_CUH
#define QLC_CUDA_BLAS_CUH

#include "qlc_cuda_common.cuh"
#include "qlc_cuda_mma.cuh"

#if __has_include(<cublas_api.h>)
#include <cublas_api.h>
#define QLC_CUDA_HAVE_CUBLAS 1
#else
#define QLC_CUDA_HAVE_CUBLAS 0
#endif
#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace qlc {
namespace cuda {

/// Token rows from which projections go through cuBLAS (above the token-group kernels'
/// 64, and above the decode graphs' 64 tokens: no cuBLAS call is ever captured).
constexpr int64_t kBlasMinM = 65;
/// f16 elements of a dequantized weight band at most (64 MiB). Bands of 16 MiB, which the
/// L2 holds between the dequantization and the GEMM, were slower: at 128-512 rows and
/// K = 11008 the GEMMs of 640-row bands leave most SMs idle (docs/cuda.md).
constexpr int64_t kBlasChunkElems = int64_t{32} << 20;

/// Columns of a row in the f16 tiles (x and the weight band): K rounded up to 8, so every
/// row starts on 16 bytes.
template <int K> constexpr int blas_ld() { return static_cast<int>(round_up(K, 8)); }

/// Rows of a dequantized weight band: N split into the fewest bands of at most
/// kBlasChunkElems, of equal rows rounded up to 128 (the last band takes the rest).
template <int K, int N> constexpr int64_t blas_band_rows() {
  constexpr int64_t bands = ceil_div(int64_t{N} * blas_ld<K>(), kBlasChunkElems);
  constexpr int64_t rows = round_up(ceil_div(N, bands), 128);
  return rows < N ? rows : N;
}

/// Scratch bytes the cuBLAS path needs for projections of at most `max_ld` (blas_ld)
/// columns and `max_band` (blas_band_rows x blas_ld) weight elements, with up to `max_m`
/// token rows: x in f16, then the weight band, each 256-byte aligned.
constexpr int64_t blas_scratch_bytes(int64_t max_m, int64_t max_ld, int64_t max_band) {
  return round_up(max_m * max_ld * 2, 256) + round_up(max_band * 2, 256);
}

#if QLC_CUDA_HAVE_CUBLAS
/// The cuBLAS entry points qlc uses, from the shared library of the toolkit's major
/// version (libcublas.so.13 for CUDA 13).
struct BlasLib {
  using Create = cublasStatus_t (*)(cublasHandle_t *);
  using Destroy = cublasStatus_t (*)(cublasHandle_t);
  using SetStream = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
  using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const void *, const void *, cudaDataType, int,
                                    const void *, cudaDataType, int, const void *, void *,
                                    cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  Create create = nullptr;
  Destroy destroy = nullptr;
  SetStream set_stream = nullptr;
  GemmEx gemm = nullptr;

  /// The library, or nullptr when it cannot be opened or QLC_CUBLAS=0.
  static const BlasLib *get() {
    static const BlasLib *lib = []() -> const BlasLib * {
      const char *env = std::getenv("QLC_CUBLAS");
      if (env != nullptr && *env != '\0' && std::atoi(env) == 0)
        return nullptr;
      const std::string so = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
      void *h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr)
        h = dlopen(("/usr/local/cuda/lib64/" + so).c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr)
        return nullptr;
      static BlasLib l;
      l.create = reinterpret_cast<Create>(dlsym(h, "cublasCreate_v2"));
      l.destroy = reinterpret_cast<Destroy>(dlsym(h, "cublasDestroy_v2"));
      l.set_stream = reinterpret_cast<SetStream>(dlsym(h, "cublasSetStream_v2"));
      l.gemm = reinterpret_cast<GemmEx>(dlsym(h, "cublasGemmEx"));
      if (!l.create || !l.destroy || !l.set_stream || !l.gemm)
        return nullptr;
      return &l;
    }();
    return lib;
  }
};

/// cuBLAS handles, one per key (a session context), made when first used.
struct BlasHandles {
  std::mutex mu;
  std::map<const void *, cublasHandle_t> handles;
  static BlasHandles &get() {
    static BlasHandles *h = new BlasHandles(); // outlives the artifact's static destructors
    return *h;
  }
  /// The key's handle, or nullptr when cuBLAS is missing or cannot make one.
  cublasHandle_t of(const void *key) {
    const BlasLib *lib = BlasLib::get();
    if (lib == nullptr)
      return nullptr;
    std::lock_guard<std::mutex> lock(mu);
    auto it = handles.find(key);
    if (it != handles.end())
      return it->second;
    cublasHandle_t h = nullptr;
    if (lib->create(&h) != CUBLAS_STATUS_SUCCESS)
      h = nullptr;
    handles[key] = h; // a failure is remembered: the tensor-core GEMM from then on
    return h;
  }
  void forget(const void *key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = handles.find(key);
    if (it == handles.end())
      return;
    if (it->second != nullptr)
      BlasLib::get()->destroy(it->second);
    handles.erase(it);
  }
};

#endif // QLC_CUDA_HAVE_CUBLAS

/// QLC_CUBLAS=1 asks for the cuBLAS path: a step fails (status 2, this message) when the
/// library cannot be opened, instead of falling back (tests use it to know which path ran).
inline const char *blas_required_but_missing() {
  const char *env = std::getenv("QLC_CUBLAS");
  if (env == nullptr || std::atoi(env) != 1)
    return nullptr;
#if QLC_CUDA_HAVE_CUBLAS
  if (BlasLib::get() != nullptr)
    return nullptr;
  static const std::string msg = "QLC_CUBLAS=1, but libcublas.so." +
                                 std::to_string(CUBLAS_VER_MAJOR) +
                                 " cannot be opened (or lacks cublasGemmEx)";
  return msg.c_str();
#else
  return "QLC_CUBLAS=1, but this artifact was compiled without the cuBLAS headers";
#endif
}

/// Destroys the cuBLAS handle made for `key` (the artifact calls it as a session ends).
inline void blas_forget(const void *key) {
#if QLC_CUDA_HAVE_CUBLAS
  BlasHandles::get().forget(key);
#else
  (void)key;
#endif
}

/// The scratch and handle key of the projections launched on this thread while a
/// BlasScope lives.
struct BlasScratch {
  const void *key;
  uint8_t *base;
  int64_t bytes;
};
inline const BlasScratch *&current_blas() {
  static thread_local const BlasScratch *p = nullptr;
  return p;
}
class BlasScope {
public:
  BlasScope(const void *key, uint8_t *base, int64_t bytes)
      : s_{key, base, bytes}, prev_(current_blas()) {
    current_blas() = bytes > 0 ? &s_ : nullptr;
  }
  ~BlasScope() { current_blas() = prev_; }
  BlasScope(const BlasScope &) = delete;
  BlasScope &operator=(const BlasScope &) = delete;

private:
  BlasScratch s_;
  const BlasScratch *prev_;
};

/// out[m, k] = f16(x[m, k]) for k < K, rows of LD halves.
template <int K, int LD>
__global__ void to_f16_rows_kernel(int64_t M, const float *__restrict__ x, f16 *__restrict__ out) {
  pdl_enter();
  const int64_t total = M * K;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = i / K;
    const int k = static_cast<int>(i - m * K);
    out[m * LD + k] = __float2half_rn(x[i]);
  }
}

/// w[r, 8c .. 8c + 8) = the source's f16 expansion of row n0 + r, columns 8c.. (past K:
/// what fetch() gives there; cuBLAS reads only K of each LD-half row).
template <int K, int LD, class Src>
__global__ void dequant_band_kernel(int64_t n0, int64_t rows, Src src, f16 *__restrict__ w) {
  src.prepare();
  __syncthreads();
  pdl_enter();
  constexpr int C = LD / 8;
  const int64_t total = rows * C;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / C;
    const int c = static_cast<int>(i - r * C);
    typename Src::Chunk ch;
    src.fetch(n0 + r, 8 * c, ch);
    reinterpret_cast<uint4 *>(w + r * LD)[c] = src.expand(ch);
  }
}

/// y[M, N] = x[M, K] * W^T + bias through cuBLAS, when a BlasScope is active, M is at
/// least kBlasMinM and cuBLAS is there; false otherwise (then the caller's GEMM computes
/// all of y: what was enqueued before a failure only wrote scratch and parts of y).
/// `direct`: W itself when it is f16 [N, K] with rows on 16 bytes (no dequantization).
template <int K, int N, class Src>
bool blas_projection(cudaStream_t s, int64_t M, const float *x, const Src &src, const f16 *direct,
                     const float *bias, float *y) {
#if !QLC_CUDA_HAVE_CUBLAS
  return false;
#else
  const BlasScratch *sc = current_blas();
  if (M < kBlasMinM || sc == nullptr)
    return false;
  constexpr int LD = blas_ld<K>();
  constexpr int64_t BAND = blas_band_rows<K, N>();
  const int64_t xbytes = round_up(M * LD * 2, 256);
  if (blas_scratch_bytes(M, LD, direct != nullptr ? 0 : BAND * LD) > sc->bytes)
    return false;
  cublasHandle_t h = BlasHandles::get().of(sc->key);
  if (h == nullptr)
    return false;
  const BlasLib *lib = BlasLib::get();
  if (lib->set_stream(h, s) != CUBLAS_STATUS_SUCCESS)
    return false;
  f16 *xh = reinterpret_cast<f16 *>(sc->base);
  f16 *wh = reinterpret_cast<f16 *>(sc->base + xbytes);
  launch_kernel(to_f16_rows_kernel<K, LD>, grid_for(M * K, 256, 4096), 256, 0, s, M, x, xh);
  if (bias != nullptr)
    launch_kernel(mma_init_kernel<N>, grid_for(M * N, 256, 1024), 256, 0, s, M, bias, y);
  const float alpha = 1.0f, beta = bias != nullptr ? 1.0f : 0.0f;
  for (int64_t n0 = 0; n0 < N; n0 += direct != nullptr ? N : BAND) {
    const int64_t rows = direct != nullptr ? N : (N - n0 < BAND ? N - n0 : BAND);
    const f16 *w = direct;
    int lda = K;
    if (direct == nullptr) {
      launch_kernel(dequant_band_kernel<K, LD, Src>, grid_for(rows * (LD / 8), 256, 8192), 256, 0,
                    s, n0, rows, src, wh);
      w = wh;
      lda = LD;
    }
    // Column-major: y^T [N, M] (ld N) = W (op T of [K, rows], ld lda) x^T ([K, M], ld LD).
    const cublasStatus_t st =
        lib->gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(M), K,
                  &alpha, w, CUDA_R_16F, lda, xh, CUDA_R_16F, LD, &beta, y + n0, CUDA_R_32F, N,
                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
      return false;
  }
  return true;
#endif
}

/// A projection of more than kGemvMaxM rows: cuBLAS from kBlasMinM rows where
/// blas_projection takes it, else the tensor-core GEMM.
template <int K, int N, bool ASYNC, class T, class Src>
void launch_large(cudaStream_t s, int64_t M, const float *x, const Src &src, const f16 *direct,
                  const float *bias, float *y) {
  if (!blas_projection<K, N>(s, M, x, src, direct, bias, y))
    launch_mma<K, N, ASYNC, T>(s, M, x, src, bias, y);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_BLAS_CUH
