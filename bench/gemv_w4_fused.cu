// gemv_w4_fused.cu - an experiment: a fused int4 decode GEMV (gemv_w4_fused.cuh) at
// Llama-2-7B's shapes, one token row, against what it replaces, all as CUDA graphs of
// back-to-back launches on rotating weight buffers (bench_cuda_util.cuh), in one run:
//   * the weights' Rows layout (qlc's packed rows, the streaming GEMV of the artifacts)
//     against the Tiles layout, same launch configuration; outputs compared bit for bit;
//   * add + RMSNorm kernel then the GEMV, against the GEMV with the norm as its prologue
//     (q/k/v, gate/up);
//   * the gate/up GEMV then the SwiGLU kernel, against the GEMV with the SwiGLU epilogue,
//     and with both prologue and epilogue (what a layer's MLP then runs).
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I codegen/cuda/kernels \
//        -I ir -I codegen/x86/kernels bench/gemv_w4_fused.cu -o /tmp/gemv_w4_fused
//   /tmp/gemv_w4_fused
#include "gemv_w4_fused.cuh"

#include "bench_cuda_util.cuh"

#include <cstring>

namespace {
using namespace bench;
using cu::GemvEpi;
using cu::GemvPro;
using cu::W4Layout;

template <int K, int N> struct Tiled {
  W4Bufs<K, N, 8> w;
  uint8_t *QT(int r) const { return w.QT(r); }
  uint2 *SZ(int r) const { return w.E(r); }
  cu::GemvW4Ops ops(int r, W4Layout l) const {
    cu::GemvW4Ops o;
    o.x = w.x;
    o.y = w.y2;
    if (l == W4Layout::Tiles) {
      o.q = QT(r);
      o.sz = SZ(r);
    } else {
      o.q = w.Q(r);
      o.scales = w.S(r);
    }
    return o;
  }
};

/// Largest |a - b| / (1e-3 + |a|) over n floats of two device buffers.
double relDiff(const float *a, const float *b, int64_t n) {
  std::vector<float> x(n), y(n);
  cudaMemcpy(x.data(), a, 4 * n, cudaMemcpyDeviceToHost);
  cudaMemcpy(y.data(), b, 4 * n, cudaMemcpyDeviceToHost);
  double r = 0;
  for (int64_t i = 0; i < n; ++i)
    r = std::max(r, std::fabs(double(x[i]) - y[i]) / (1e-3 + std::fabs(double(x[i]))));
  return r;
}

/// Layouts at one token: the artifacts' streaming GEMV, the fused kernel without prologue
/// and epilogue on Rows and on Tiles in the same configuration, and other Tiles configs.
bool gProfile = false; // --profile: the comparison launches only, for Nsight Compute

template <int K, int N> void layouts() {
  constexpr int G = 128;
  using C = cu::GemvW4StreamCfg<K, N>;
  Tiled<K, N> t;
  auto &w = t.w;
  const int L = w.launches;
  unsigned *sink;
  cudaMalloc(&sink, 4);
  cu::launch_gemv_w4_stream<K, N, G>(0, 1, w.x, w.Q(0), w.S(0), nullptr, nullptr, w.y);
  cu::launch_gemv_w4_fused<K, N, G, C::KW, C::RT, C::D, W4Layout::Tiles, GemvPro::None,
                           GemvEpi::None>(0, 1, t.ops(0, W4Layout::Tiles));
  cudaDeviceSynchronize();
  std::printf(" M=1, <%d,%d,%d>: Tiles vs Rows max rel. difference %.3g\n", C::KW, C::RT, C::D,
              relDiff(w.y, w.y2, N));
  if (gProfile)
    return;
  w.row("read one-shot", graphUs(L, [&](cudaStream_t s, int r) {
          readOneShot<<<unsigned(cu::ceil_div(w.qbytes / 16, 2048)), 256, 0, s>>>(
              w.qbytes / 16, (const uint4 *)w.Q(r), sink);
        }));
  w.row("stream (artifacts)", graphUs(L, [&](cudaStream_t s, int r) {
          cu::launch_gemv_w4_stream<K, N, G>(s, 1, w.x, w.Q(r), w.S(r), nullptr, nullptr, w.y);
        }));
#define FUSED(name, lay, kw, rt, d)                                                                \
  w.row(name " <" #kw "," #rt "," #d ">", graphUs(L, [&](cudaStream_t s, int r) {                  \
          cu::launch_gemv_w4_fused<K, N, G, kw, rt, d, W4Layout::lay, GemvPro::None,               \
                                   GemvEpi::None>(s, 1, t.ops(r, W4Layout::lay));                  \
        }))
  FUSED("fused Rows", Rows, C::KW, C::RT, C::D);
  FUSED("fused Tiles", Tiles, C::KW, C::RT, C::D);
  FUSED("fused Rows", Rows, 8, 1, 2);
  FUSED("fused Tiles", Tiles, 8, 1, 2);
  FUSED("fused Rows", Rows, 8, 1, 1);
  FUSED("fused Tiles", Tiles, 8, 1, 1);
  FUSED("fused Rows", Rows, 16, 1, 2);
  FUSED("fused Tiles", Tiles, 16, 1, 2);
  FUSED("fused Rows", Rows, 16, 1, 1);
  FUSED("fused Tiles", Tiles, 16, 1, 1);
  FUSED("fused Rows", Rows, 4, 1, 2);
  FUSED("fused Tiles", Tiles, 4, 1, 2);
  FUSED("fused Rows", Rows, 4, 2, 2);
  FUSED("fused Tiles", Tiles, 4, 2, 2);
  FUSED("fused Rows", Rows, 8, 2, 2);
  FUSED("fused Tiles", Tiles, 8, 2, 2);
  FUSED("fused Rows", Rows, 2, 4, 2);
  FUSED("fused Tiles", Tiles, 2, 4, 2);
#undef FUSED
  cudaFree(sink);
}

/// add + RMSNorm then the GEMV, against the prologue; with GLU the SwiGLU epilogue too.
template <int K, int N, bool GLU> void fusions() {
  constexpr int G = 128, NO = GLU ? N / 2 : N;
  using C = cu::GemvW4StreamCfg<K, N>;
  Tiled<K, N> t;
  auto &w = t.w;
  const int L = w.launches;
  float *a, *b, *nw, *sum, *h, *xn, *yg;
  cudaMalloc(&a, K * 4);
  cudaMalloc(&b, K * 4);
  cudaMalloc(&nw, K * 4);
  cudaMalloc(&sum, K * 4);
  cudaMalloc(&h, K * 4);
  cudaMalloc(&xn, K * 4);
  cudaMalloc(&yg, int64_t{N} * 4);
  fillFloat<<<64, 256>>>(K, 3, a);
  fillFloat<<<64, 256>>>(K, 5, b);
  fillFloat<<<64, 256>>>(K, 7, nw);
  const float eps = 1e-5f;
  // Separate kernels: add_rms_norm, the artifacts' GEMV (+ swiglu).
  auto separate = [&](cudaStream_t s, int r) {
    cu::add_rms_norm<K>(s, 1, a, b, nw, eps, h, xn);
    cu::launch_gemv_w4_stream<K, N, G>(s, 1, xn, w.Q(r), w.S(r), nullptr, nullptr,
                                       GLU ? yg : w.y);
    if (GLU)
      cu::swiglu<NO>(s, 1, yg, w.y);
  };
  auto fusedOps = [&](int r, W4Layout l) {
    cu::GemvW4Ops o = t.ops(r, l);
    o.x = a, o.x2 = b, o.norm_w = nw, o.eps = eps, o.sum = sum;
    return o;
  };
  separate(0, 0);
  constexpr int RT = GLU ? 2 : C::RT, KW = GLU ? 4 : C::KW, D = C::D;
  cu::launch_gemv_w4_fused<K, N, G, KW, RT, D, W4Layout::Tiles, GemvPro::AddRmsNorm,
                           GLU ? GemvEpi::SwiGlu : GemvEpi::None>(0, 1, fusedOps(0, W4Layout::Tiles));
  cudaDeviceSynchronize();
  std::printf(" %s: fused vs separate max rel. difference %.3g (sum %.3g)\n",
              GLU ? "add+RMSNorm, SwiGLU" : "add+RMSNorm", relDiff(w.y, w.y2, NO),
              relDiff(h, sum, K));
  if (!gProfile)
    w.row("separate kernels", graphUs(L, separate));
#define PRO(name, lay, kw, rt, d, epi)                                                             \
  w.row(name " <" #kw "," #rt "," #d ">", graphUs(L, [&](cudaStream_t s, int r) {                  \
          cu::launch_gemv_w4_fused<K, N, G, kw, rt, d, W4Layout::lay, GemvPro::AddRmsNorm,         \
                                   GemvEpi::epi>(s, 1, fusedOps(r, W4Layout::lay));                \
        }))
  if (gProfile) {
  } else if constexpr (GLU) {
    w.row("gemv + swiglu", graphUs(L, [&](cudaStream_t s, int r) {
            cu::launch_gemv_w4_stream<K, N, G>(s, 1, xn, w.Q(r), w.S(r), nullptr, nullptr, yg);
            cu::swiglu<NO>(s, 1, yg, w.y);
          }));
    w.row("gemv alone", graphUs(L, [&](cudaStream_t s, int r) {
            cu::launch_gemv_w4_stream<K, N, G>(s, 1, xn, w.Q(r), w.S(r), nullptr, nullptr, yg);
          }));
    PRO("pro+glu Rows", Rows, 4, 2, 4, SwiGlu);
    PRO("pro+glu Tiles", Tiles, 4, 2, 4, SwiGlu);
    PRO("pro+glu Tiles", Tiles, 2, 2, 8, SwiGlu);
    PRO("pro+glu Tiles", Tiles, 2, 4, 4, SwiGlu);
    PRO("pro+glu Tiles", Tiles, 1, 4, 4, SwiGlu);
    PRO("pro+glu Tiles", Tiles, 8, 2, 2, SwiGlu);
    w.row("glu only Tiles <4,2,4>", graphUs(L, [&](cudaStream_t s, int r) {
            cu::GemvW4Ops o = t.ops(r, W4Layout::Tiles);
            o.x = xn;
            cu::launch_gemv_w4_fused<K, N, G, 4, 2, 4, W4Layout::Tiles, GemvPro::None,
                                     GemvEpi::SwiGlu>(s, 1, o);
          }));
  } else {
    PRO("prologue Rows", Rows, C::KW, C::RT, C::D, None);
    PRO("prologue Tiles", Tiles, C::KW, C::RT, C::D, None);
    PRO("prologue Tiles", Tiles, 2, 2, 4, None);
    PRO("prologue Tiles", Tiles, 4, 2, 4, None);
    PRO("prologue Tiles", Tiles, 1, 4, 4, None);
  }
#undef PRO
  for (float *p : {a, b, nw, sum, h, xn, yg})
    cudaFree(p);
}

} // namespace

int main(int argc, char **argv) {
  gProfile = argc > 1 && std::strcmp(argv[1], "--profile") == 0;
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  std::printf("%s, %d SMs\n", p.name, p.multiProcessorCount);
  std::printf("copy of 1 GiB: %.0f GB/s (read + write)\n", copyGBs());
  layouts<4096, 4096>();
  layouts<4096, 12288>();
  layouts<4096, 22016>();
  layouts<11008, 4096>();
  if (argc > 1 && std::strcmp(argv[1], "--fusions") == 0) {
    fusions<4096, 12288, false>();
    fusions<4096, 22016, true>();
  }
  return 0;
}
