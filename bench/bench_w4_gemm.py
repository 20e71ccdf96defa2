#!/usr/bin/env python3
"""qlc's W4A16 projection kernels against cuBLAS f16, in one run on one GPU.

Runs the CUDA kernel test's --bench (built by scripts/cuda_kernel_test.sh), which times
qlc's int4 g128 kernels at Llama-2-7B projection shapes as an artifact's step dispatches
them - the streaming GEMV for M = 1, the token-group kernel for 16 and 64, from 65 rows
cuBLAS on bands of weights dequantized by qlc's kernel - then times
cuBLAS f16 (torch.nn.functional.linear, f16 in and out) at the same shapes and M the same
way (median of 20 CUDA-event timings after 3 warm-ups, 4 rotating weight buffers), and
prints both with the speedup (cuBLAS time / qlc time) and the fraction of the device copy
bandwidth that the int4 kernel's weight bytes reach; from 65 rows also qlc's own
tensor-core GEMM (the path without cuBLAS).

    python3 bench/bench_w4_gemm.py --kernel-test build-cuda-test/cuda_kernel_test
"""
import argparse
import re
import subprocess

import torch

from bench_gemm_cublas import cublas_us

MS = [1, 16, 64, 128, 256, 512, 2048]


def parse_kernel_bench(text):
    """{(K, N, M): microseconds} of qlc's int4 g128 kernels, and the copy GB/s."""
    qlc, own, copy = {}, {}, None
    for line in text.splitlines():
        m = re.match(r"(\d+)x(\d+)\s+int4g128\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)", line)
        if m:  # GEMM table: shape, format, M, dispatch us, TFLOP/s, tensor-core GEMM us, ...
            qlc[(int(m[1]), int(m[2]), int(m[3]))] = float(m[4])
            own[(int(m[1]), int(m[2]), int(m[3]))] = float(m[5])
            continue
        m = re.match(r"(\d+)x(\d+)\s+(\d+)\s+[\d.]+\s+\d+\s+\|\s+([\d.]+)", line)
        if m:  # GEMV table: shape, M, generic us, GB/s | default config us, ...
            qlc[(int(m[1]), int(m[2]), int(m[3]))] = float(m[4])
            continue
        m = re.match(r"copy \(device to device, read \+ write\): ([\d.]+) GB/s", line)
        if m:
            copy = float(m[1])
    return qlc, own, copy


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel-test", required=True, help="cuda_kernel_test binary")
    a = ap.parse_args()
    out = subprocess.run([a.kernel_test, "--bench"], check=True, capture_output=True,
                         text=True).stdout
    qlc, own, copy = parse_kernel_bench(out)
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    print(f"device: {torch.cuda.get_device_name()} (torch {torch.__version__}); "
          f"copy {copy:.0f} GB/s (read + write)")
    print(f"{'K x N':12} {'M':>5} {'qlc W4 us':>10} {'cuBLAS f16 us':>14} {'speedup':>8} "
          f"{'W4 GB/s':>8} {'of copy':>8} {'own TC GEMM us':>15}")
    shapes = sorted({(k, n) for (k, n, _m) in qlc})
    for k, n in shapes:
        ws = [torch.randn(n, k, device="cuda", dtype=torch.float16) * 0.02 for _ in range(4)]
        for m in MS:
            if (k, n, m) not in qlc:
                continue
            ours, theirs = qlc[(k, n, m)], cublas_us(k, m, ws)
            wbytes = n * k / 2 + n * ((k + 127) // 128) * 2
            gbs = wbytes / ours / 1e3
            tc = f"{own[(k, n, m)]:.1f}" if m >= 65 and (k, n, m) in own else ""
            print(f"{f'{k} x {n}':12} {m:>5} {ours:>10.1f} {theirs:>14.1f} "
                  f"{theirs / ours:>7.2f}x {gbs:>8.0f} {gbs / copy:>8.2f} {tc:>15}")
        del ws
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
