#!/usr/bin/env python3
"""cuBLAS (through torch.nn.functional.linear, f16 in, f16 out) at the shapes and M of the
CUDA kernel test's --bench table, timed the same way: median of 20 CUDA-event timings after
3 warm-ups, rotating 4 weight buffers. Run it in the same call as
`build-cuda-test/cuda_kernel_test --bench` to put qlc's tensor-core GEMM beside cuBLAS.

    python3 bench/bench_gemm_cublas.py
"""
import torch

SHAPES = [(4096, 4096), (4096, 11008), (11008, 4096), (4096, 32000)]
MS = [16, 64, 256, 2048]


def cublas_us(k, m, ws):
    """Median microseconds of torch.nn.functional.linear(x[m, k], W) over 20 CUDA-event
    timings after 3 warm-ups, rotating the 4 weight buffers `ws`."""
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    for i in range(3):
        torch.nn.functional.linear(x, ws[i % 4])
    times = []
    for i in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.nn.functional.linear(x, ws[i % 4])
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) * 1e3)
    times.sort()
    return 0.5 * (times[9] + times[10])


def main():
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    print(f"device: {torch.cuda.get_device_name()} (torch {torch.__version__})")
    print(f"{'shape KxN':18} {'M':>5} {'cublas us':>10} {'TFLOP/s':>8}")
    for k, n in SHAPES:
        ws = [torch.randn(n, k, device="cuda", dtype=torch.float16) * 0.02 for _ in range(4)]
        for m in MS:
            us = cublas_us(k, m, ws)
            print(f"{f'{k}x{n}':18} {m:>5} {us:>10.1f} {2 * m * n * k / us / 1e6:>8.1f}")


if __name__ == "__main__":
    main()
