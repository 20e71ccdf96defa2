// gemv_w4_graph.cu - the int4 g128 decode GEMVs at Llama-2-7B's shapes, timed as a CUDA
// graph of back-to-back launches on rotating weight buffers (as in a decode step, whose
// kernels are replayed from a graph), beside read-only kernels of the same bytes (the most
// a single kernel of that size streams) and a device copy, all in one run.
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I codegen/cuda/kernels \
//        -I ir -I codegen/x86/kernels bench/gemv_w4_graph.cu -o /tmp/gemv_w4_graph
//   /tmp/gemv_w4_graph
//
// Rows: "qlc dispatch" is what the artifacts run (qlinear_int's choice for M tokens),
// "v0 <8,4>" the register-burst GEMV (gemv_w4_kernel), "stream <KW,RT,D>" the streaming
// GEMV in other launch configurations (docs/cuda.md has a run's figures).
//
// `--batch` times 16, 32 and 64 token rows instead: "mma GEMM" (the tensor-core GEMM that
// took them before the token-group kernel), "qlc dispatch" and the token-group kernel
// (qlc_cuda_gemm_w4.cuh) in other configurations "tok <RT,SQ,D>".
#include "qlc_cuda_qlinear.cuh"

#include "bench_cuda_util.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {
using namespace bench;

template <int K, int N> void shape(int sms) {
  constexpr int G = 128;
  W4Bufs<K, N, 8> w;
  float *x = w.x, *y = w.y, *y2 = w.y2;
  const int L = w.launches;
  const int64_t qbytes = w.qbytes;
  unsigned *sink;
  cudaMalloc(&sink, 4);
  auto Q = [&](int r) { return w.Q(r); };
  auto S = [&](int r) { return w.S(r); };
  auto row = [&](const char *name, double us) { w.row(name, us); };
  for (int M : {1, 2, 4}) {
    // The dispatch against gemv_w4_kernel: both round x to f16 and sum in f32.
    cu::launch_gemv_w4<K, N, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y);
    cu::gemv_w4<K, N, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y2);
    std::printf(" M=%d (dispatch vs v0: max rel. difference %.2g)\n", M, w.maxRelDiff(M));
    if (M == 1) {
      row("read grid-stride", graphUs(L, [&](cudaStream_t s, int r) {
            readGridStride<<<sms * 4, 512, 0, s>>>(qbytes / 16, (const uint4 *)Q(r), sink);
          }));
      row("read one-shot", graphUs(L, [&](cudaStream_t s, int r) {
            readOneShot<<<unsigned(cu::ceil_div(qbytes / 16, 2048)), 256, 0, s>>>(
                qbytes / 16, (const uint4 *)Q(r), sink);
          }));
    }
    row("qlc dispatch", graphUs(L, [&](cudaStream_t s, int r) {
          cu::gemv_w4<K, N, G>(s, M, x, Q(r), S(r), nullptr, nullptr, y);
        }));
    row("v0 <8,4>", graphUs(L, [&](cudaStream_t s, int r) {
          cu::launch_gemv_w4<K, N, G>(s, M, x, Q(r), S(r), nullptr, nullptr, y);
        }));
    // The streaming GEMV in configuration <kw, rt, d> on layout LAY (its weights qp, sp).
#define STREAM(label, LAY, qp, sp, kw, rt, d)                                                      \
  if (cu::gemv_w4_stream_smem<K>(M) + cu::gemv_w4_stream_red_bytes<kw, rt>() <= 48 * 1024)         \
  row(label " <" #kw "," #rt "," #d ">", graphUs(L, [&](cudaStream_t s, int r) {                   \
        cu::launch_gemv_w4_stream<K, N, G, kw, rt, d, cu::W4Layout::LAY>(s, M, x, qp, sp, nullptr, \
                                                                         nullptr, y);              \
      }))
    if constexpr (qlc::w4tiles::applies(K, N, G)) {
      auto E = [&](int r) { return reinterpret_cast<const uint8_t *>(w.E(r)); };
      auto ES = [&](int r) { return reinterpret_cast<const cu::f16 *>(w.E(r)); };
      cu::gemv_w4<K, N, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y);
      cu::qlinear_int_tiles<K, N, G>(0, M, x, w.QT(0), E(0), nullptr, y2);
      std::printf("   (tiles vs rows: max rel. difference %.2g)\n", w.maxRelDiff(M));
      row("qlc dispatch, tiles", graphUs(L, [&](cudaStream_t s, int r) {
            cu::qlinear_int_tiles<K, N, G>(s, M, x, w.QT(r), E(r), nullptr, y);
          }));
      STREAM("tiles", Tiles, w.QT(r), ES(r), 2, 4, 2);
      STREAM("tiles", Tiles, w.QT(r), ES(r), 2, 4, 4);
      STREAM("tiles", Tiles, w.QT(r), ES(r), 4, 2, 2);
      STREAM("tiles", Tiles, w.QT(r), ES(r), 8, 1, 1);
      STREAM("tiles", Tiles, w.QT(r), ES(r), 8, 1, 2);
      STREAM("tiles", Tiles, w.QT(r), ES(r), 8, 1, 4);
      STREAM("tiles", Tiles, w.QT(r), ES(r), 16, 1, 1);
    }
    if (cu::gemv_w4_stream_smem<K>(M) > 48 * 1024)
      continue;
    STREAM("stream", Rows, Q(r), S(r), 1, 4, 4);
    STREAM("stream", Rows, Q(r), S(r), 2, 2, 4);
    STREAM("stream", Rows, Q(r), S(r), 2, 2, 8);
    STREAM("stream", Rows, Q(r), S(r), 2, 4, 4);
    STREAM("stream", Rows, Q(r), S(r), 4, 1, 4);
    STREAM("stream", Rows, Q(r), S(r), 4, 2, 2);
    STREAM("stream", Rows, Q(r), S(r), 4, 2, 4);
    STREAM("stream", Rows, Q(r), S(r), 8, 1, 2);
    STREAM("stream", Rows, Q(r), S(r), 8, 1, 4);
    STREAM("stream", Rows, Q(r), S(r), 16, 1, 1);
    STREAM("stream", Rows, Q(r), S(r), 16, 1, 2);
#undef STREAM
  }
  cudaFree(sink);
}

/// 16-64 token rows: the tensor-core GEMM against the token-group kernel's configurations.
template <int K, int N> void batchShape() {
  constexpr int G = 128;
  W4Bufs<K, N, 64> w;
  float *x = w.x, *y = w.y, *y2 = w.y2;
  const int L = w.launches;
  auto Q = [&](int r) { return w.Q(r); };
  auto S = [&](int r) { return w.S(r); };
  auto row = [&](const char *name, double us) { w.row(name, us); };
  using Mma = cu::IntSrc<K, 4, G, 8>;
  for (int M : {16, 32, 64}) {
    cu::launch_mma<K, N, false, cu::DefaultTiling>(0, M, x, Mma{Q(0), S(0), nullptr}, nullptr, y);
    cu::qlinear_int<K, N, 4, G>(0, M, x, Q(0), S(0), nullptr, nullptr, y2);
    std::printf(" M=%d (dispatch vs mma GEMM: max rel. difference %.2g)\n", M, w.maxRelDiff(M));
    row("mma GEMM", graphUs(L, [&](cudaStream_t s, int r) {
          cu::launch_mma<K, N, false, cu::DefaultTiling>(s, M, x, Mma{Q(r), S(r), nullptr}, nullptr,
                                                         y);
        }));
    row("qlc dispatch", graphUs(L, [&](cudaStream_t s, int r) {
          cu::qlinear_int<K, N, 4, G>(s, M, x, Q(r), S(r), nullptr, nullptr, y);
        }));
#define TOK(tg, rt, sq, d)                                                                         \
  if ((M + 7) / 8 <= tg && cu::gemm_w4_tok_smem<tg, sq>() <= 48 * 1024)                            \
  row("tok TG" #tg " <" #rt "," #sq "," #d ">", graphUs(L, [&](cudaStream_t s, int r) {            \
        cu::launch_gemm_w4_tok<K, N, G, tg, cu::GemmW4TokCfg<rt, sq, d>>(s, M, x, Q(r), S(r),      \
                                                                         nullptr, nullptr, y);     \
      }))
    if (M <= 16) {
      TOK(2, 8, 4, 4);
      TOK(2, 16, 4, 4);
      TOK(2, 8, 8, 4);
      TOK(2, 16, 2, 2);
    } else if (M <= 32) {
      TOK(4, 8, 4, 4);
      TOK(4, 16, 4, 4);
      TOK(4, 8, 2, 2);
      TOK(4, 16, 2, 2);
    } else {
      TOK(8, 8, 2, 2);
      TOK(8, 16, 2, 2);
      TOK(8, 8, 1, 1);
      TOK(8, 16, 1, 1);
    }
#undef TOK
  }
}

} // namespace

int main(int argc, char **argv) {
  const bool batch = argc > 1 && std::string(argv[1]) == "--batch";
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  std::printf("%s, %d SMs\n", p.name, p.multiProcessorCount);
  std::printf("copy of 1 GiB: %.0f GB/s (read + write)\n", bench::copyGBs());
  if (batch) {
    batchShape<4096, 4096>();
    batchShape<4096, 12288>();
    batchShape<4096, 22016>();
    batchShape<11008, 4096>();
    return 0;
  }
  shape<4096, 4096>(p.multiProcessorCount);
  shape<4096, 12288>(p.multiProcessorCount);
  shape<4096, 22016>(p.multiProcessorCount);
  shape<11008, 4096>(p.multiProcessorCount);
  shape<4096, 32000>(p.multiProcessorCount);
  return 0;
}
