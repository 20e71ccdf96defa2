// attention_graph.cu - the decode attention (qlc_cuda_attention.cuh's attention(), which also
// stores the step's k and v rows) at Llama-2-7B's shapes (32 heads of 128, pages of 16
// positions, rope fused), timed as a CUDA graph of one launch per layer for 32 layers, as a
// decode step replays it, for one token at a few positions and f16 / int8 caches; and a
// prefill step's attention (512 tokens of one sequence after 512 or 1,536 cached
// positions), the same way.
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I codegen/cuda/kernels \
//        -I ir bench/attention_graph.cu -o /tmp/attention_graph
//   /tmp/attention_graph [label]
//
// Compiling it once more against another revision's kernel headers (-I that copy first)
// compares two versions of the kernels in the same conditions.
#include "qlc_cuda_attention.cuh"

#include <cmath>
#include <cstdio>
#include <vector>

namespace cu = qlc::cuda;

namespace {

constexpr int L = 32, H = 32, KVH = 32, HD = 128, P = 16, MAX_SEQ = 2048;
constexpr int PAGES = MAX_SEQ / P;

__global__ void fillHalf(int64_t n, uint32_t seed, cu::f16 *out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    out[i] = __float2half_rn(((h & 0xFFFFu) / 65536.0f - 0.5f) * 0.5f);
  }
}

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    cudaError_t e_ = (x);                                                                          \
    if (e_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));                                \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)

/// One step of M tokens of slot 0 at positions pos .. pos + M - 1.
template <class KV> double timeSteps(const char *label, const char *kvName, int pos, int M = 1) {
  const int64_t rowBytes = cu::kv_row_bytes<KV, KVH, HD>();
  const int64_t poolBytes = int64_t{PAGES} * L * 2 * P * rowBytes;
  void *kv;
  CHECK(cudaMalloc(&kv, poolBytes));
  fillHalf<<<1024, 256>>>(poolBytes / 2, 7, static_cast<cu::f16 *>(kv));
  std::vector<int32_t> table(PAGES);
  for (int i = 0; i < PAGES; ++i)
    table[i] = (i * 37) % PAGES; // scattered pages
  std::vector<float> invFreq(HD / 2);
  for (int i = 0; i < HD / 2; ++i)
    invFreq[i] = std::pow(10000.0f, -2.0f * i / HD);
  int32_t *dtable, *dpos, *dslot;
  float *dq, *dout, *dinv;
  const int32_t slot = 0;
  CHECK(cudaMalloc(&dtable, PAGES * 4));
  CHECK(cudaMalloc(&dpos, M * 4));
  CHECK(cudaMalloc(&dslot, M * 4));
  CHECK(cudaMalloc(&dq, int64_t{M} * (H + 2 * KVH) * HD * 4));
  CHECK(cudaMalloc(&dout, int64_t{M} * H * HD * 4));
  CHECK(cudaMalloc(&dinv, HD / 2 * 4));
  CHECK(cudaMemcpy(dtable, table.data(), PAGES * 4, cudaMemcpyHostToDevice));
  std::vector<int32_t> positions(M), slots(M, slot);
  for (int i = 0; i < M; ++i)
    positions[i] = pos + i;
  CHECK(cudaMemcpy(dpos, positions.data(), M * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dslot, slots.data(), M * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dinv, invFreq.data(), HD / 2 * 4, cudaMemcpyHostToDevice));
  fillHalf<<<64, 256>>>(int64_t{M} * (H + 2 * KVH) * HD * 2, 9, reinterpret_cast<cu::f16 *>(dq));
  CHECK(cudaDeviceSynchronize());
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int layer = 0; layer < L; ++layer) // q/k/v packed, as qlc-fold-qkv-split leaves them
    cu::attention<L, H, KVH, HD, 0, KV, P>(
        s, kv, dtable, PAGES, M, dpos, dslot, layer, 1.0f / std::sqrt(float{HD}), dq, dq + H * HD,
        dq + (H + KVH) * HD, dout, dinv, (H + 2 * KVH) * HD, (H + 2 * KVH) * HD);
  CHECK(cudaStreamEndCapture(s, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 20; ++i)
    CHECK(cudaGraphLaunch(exec, s));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  const int reps = M > 1 ? 5 : 200;
  CHECK(cudaEventRecord(a, s));
  for (int i = 0; i < reps; ++i)
    CHECK(cudaGraphLaunch(exec, s));
  CHECK(cudaEventRecord(b, s));
  CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  const double us = 1000.0 * ms / reps / L;
  std::printf("%-12s kv %-5s %3d token(s) from position %5d: %8.2f us per layer\n", label,
              kvName, M, pos, us);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  cudaFree(kv), cudaFree(dtable), cudaFree(dpos), cudaFree(dslot), cudaFree(dq), cudaFree(dout);
  cudaFree(dinv);
  return us;
}

} // namespace

int main(int argc, char **argv) {
  const char *label = argc > 1 ? argv[1] : "attention";
  for (int pos : {160, 1100}) {
    timeSteps<cu::KvF16>(label, "f16", pos);
    timeSteps<cu::KvI8>(label, "int8", pos);
  }
  for (int pos : {512, 1536}) {
    timeSteps<cu::KvF16>(label, "f16", pos, 512);
    timeSteps<cu::KvI8>(label, "int8", pos, 512);
  }
  return 0;
}
