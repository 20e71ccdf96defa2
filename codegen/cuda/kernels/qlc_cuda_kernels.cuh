// qlc_cuda_kernels.cuh - every CUDA kernel template; generated .cu files include this one.
#ifndef QLC_CUDA_KERNELS_CUH
#define QLC_CUDA_KERNELS_CUH

#include "qlc_cuda_attention.cuh"
#include "qlc_cuda_common.cuh"
#include "qlc_cuda_elementwise.cuh"
#include "qlc_cuda_linear.cuh"
#include "qlc_cuda_mma.cuh"
#include "qlc_cuda_qlinear.cuh"

namespace qlc {
namespace cuda {

template <int D>
__global__ void gather_rows_kernel(int64_t n, const int32_t *__restrict__ rows,
                                   const float *__restrict__ x, float *__restrict__ tmp) {
  pdl_enter();
  const int64_t r = blockIdx.x;
  const float *src = x + static_cast<int64_t>(rows[r]) * D;
  for (int i = threadIdx.x; i < D; i += blockDim.x)
    tmp[r * D + i] = src[i];
}

/// Logits of the requested rows only: tmp[r, :] = x[rows[r], :] for r < n_logits, then
/// out[n_logits, V] = tmp * W^T (W [V, D]).
template <int D, int V, class WT, class T = DefaultTiling>
void logits(cudaStream_t s, int64_t n_logits, const int32_t *rows, const float *x, const WT *w,
            float *tmp, float *out) {
  if (n_logits <= 0)
    return;
  launch_kernel(gather_rows_kernel<D>, static_cast<unsigned>(n_logits), row_threads<D>(), 0, s,
                n_logits, rows, x, tmp);
  linear<D, V, WT, T>(s, n_logits, tmp, w, nullptr, out);
}

} // namespace cuda
} // namespace qlc

#endif // QLC_CUDA_KERNELS_CUH
