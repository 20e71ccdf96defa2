//===- CalibCudaImpl.cuh - what the GPU calibration sources share -*- CUDA -*-===//
//
// The device state behind calibcuda::Device (buffers, cuBLAS/cuSOLVER entry points),
// error macros, and QuantUtil's group scale and zero as a device function; included by
// CalibCuda.cu (executor ops, GPTQ) and CalibCudaAwq.cu (AWQ's searches) only.
//
#ifndef QLC_PASSES_CALIBCUDAIMPL_CUH
#define QLC_PASSES_CALIBCUDAIMPL_CUH

#include "passes/CalibCuda.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>

namespace qlc {
namespace calibcuda {
namespace detail {

constexpr int kThreads = 128;

inline int blocksFor(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

/// QuantUtil's groupScaleZero from a group's range [lo, hi] (lo <= 0 <= hi: AutoGPTQ's).
__device__ inline void groupScaleZero(float lo, float hi, int maxq, bool symmetric, float &s,
                                      int &z) {
  if (symmetric) {
    const float m = fmaxf(fabsf(lo), hi);
    lo = -m;
    hi = m;
  }
  if (lo == 0.0f && hi == 0.0f) {
    lo = -1.0f;
    hi = 1.0f;
  }
  s = __half2float(__float2half_rn(__fdiv_rn(__fsub_rn(hi, lo), static_cast<float>(maxq))));
  if (s == 0.0f)
    s = __half2float(__ushort_as_half(1)); // the smallest positive half
  z = symmetric ? (maxq + 1) / 2
                : static_cast<int>(
                      fminf(fmaxf(rintf(__fdiv_rn(-lo, s)), 0.0f), static_cast<float>(maxq)));
}

/// A device allocation that only grows.
struct DevBuf {
  void *p = nullptr;
  size_t bytes = 0;
  DevBuf() = default;
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
  ~DevBuf() { release(); }
  void release() {
    if (p != nullptr)
      cudaFree(p);
    p = nullptr;
    bytes = 0;
  }
  bool ensure(size_t b, std::string &error) {
    if (b <= bytes)
      return true;
    release();
    if (cudaMalloc(&p, b) != cudaSuccess) {
      cudaGetLastError();
      error = "cudaMalloc of " + std::to_string(b) + " bytes failed (out of GPU memory?)";
      return false;
    }
    bytes = b;
    return true;
  }
  template <class T> T *as() const { return static_cast<T *>(p); }
};

/// The cuBLAS and cuSOLVER entry points used, from the toolkit's major versions' libraries.
struct Libs {
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasDestroy_v2) destroy = nullptr;
  decltype(&::cublasSgemm_v2) sgemm = nullptr;
  decltype(&::cublasSgemmStridedBatched) sgemmBatched = nullptr;
  decltype(&::cublasDgemm_v2) dgemm = nullptr;
  decltype(&::cublasDsyrk_v2) dsyrk = nullptr;
  decltype(&::cublasDtrsm_v2) dtrsm = nullptr;
  decltype(&::cusolverDnCreate) solverCreate = nullptr;
  decltype(&::cusolverDnDestroy) solverDestroy = nullptr;
  decltype(&::cusolverDnDpotrf_bufferSize) potrfSize = nullptr;
  decltype(&::cusolverDnDpotrf) potrf = nullptr;

  bool load(std::string &why) {
    auto open = [&](const std::string &so) -> void * {
      void *h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr)
        h = dlopen(("/usr/local/cuda/lib64/" + so).c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr)
        why = "cannot load " + so;
      return h;
    };
    void *blas = open("libcublas.so." + std::to_string(CUBLAS_VER_MAJOR));
    void *solver = blas ? open("libcusolver.so." + std::to_string(CUSOLVER_VER_MAJOR)) : nullptr;
    if (solver == nullptr)
      return false;
    bool ok = true;
    auto sym = [&](void *h, auto &fn, const char *name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      if (fn == nullptr && ok) {
        why = std::string("no ") + name + " in cuBLAS/cuSOLVER";
        ok = false;
      }
    };
    sym(blas, create, "cublasCreate_v2");
    sym(blas, destroy, "cublasDestroy_v2");
    sym(blas, sgemm, "cublasSgemm_v2");
    sym(blas, sgemmBatched, "cublasSgemmStridedBatched");
    sym(blas, dgemm, "cublasDgemm_v2");
    sym(blas, dsyrk, "cublasDsyrk_v2");
    sym(blas, dtrsm, "cublasDtrsm_v2");
    sym(solver, solverCreate, "cusolverDnCreate");
    sym(solver, solverDestroy, "cusolverDnDestroy");
    sym(solver, potrfSize, "cusolverDnDpotrf_bufferSize");
    sym(solver, potrf, "cusolverDnDpotrf");
    return ok;
  }
};

#define QLC_CUDA_OK(call)                                                                          \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      error = std::string(#call) + ": " + cudaGetErrorString(e_);                                  \
      return {};                                                                                   \
    }                                                                                              \
  } while (0)
#define QLC_BLAS_OK(call)                                                                          \
  do {                                                                                             \
    int s_ = static_cast<int>(call);                                                               \
    if (s_ != 0) {                                                                                 \
      error = std::string(#call) + " failed with status " + std::to_string(s_);                    \
      return {};                                                                                   \
    }                                                                                              \
  } while (0)
#define QLC_LAUNCHED() QLC_CUDA_OK(cudaGetLastError())

inline BufferPtr newBuffer(int64_t rows, int64_t cols, std::string &error) {
  auto b = std::make_shared<Buffer>();
  if (rows * cols > 0 && cudaMalloc(&b->data, rows * cols * 4) != cudaSuccess) {
    cudaGetLastError();
    b->data = nullptr;
    error =
        "cudaMalloc of " + std::to_string(rows * cols * 4) + " bytes failed (out of GPU memory?)";
    return nullptr;
  }
  b->rows = rows;
  b->cols = cols;
  return b;
}

} // namespace detail

struct Device::Impl {
  detail::Libs libs;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  std::string name;
  // weights, biases and rope frequencies on their way in; attention scores
  detail::DevBuf w, bias, s;
  // hessian / gptq
  detail::DevBuf xd, H, R, X, diag, Wd, wf, err, codes, perm, pinv, dead, gscale, gzero, packed,
      deq, work, info;
  // AWQ: weight, Hessian, scales, differences, their products with H, errors, sums
  detail::DevBuf aw, ah, as, ad, ac, aerr, asum;
  int64_t hk = 0; // the Hessian's size, 0: none

  void release() {
    for (detail::DevBuf *b :
         {&w,    &bias,  &s,    &xd,   &H,    &R,      &X,     &diag,   &Wd,  &wf,
          &err,  &codes, &perm, &pinv, &dead, &gscale, &gzero, &packed, &deq, &work,
          &info, &aw,    &ah,   &as,   &ad,   &ac,     &aerr,  &asum})
      b->release();
    hk = 0;
  }

  ~Impl() {
    if (blas != nullptr)
      libs.destroy(blas);
    if (solver != nullptr)
      libs.solverDestroy(solver);
  }
};

} // namespace calibcuda
} // namespace qlc

#endif // QLC_PASSES_CALIBCUDAIMPL_CUH
