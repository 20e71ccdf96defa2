#!/usr/bin/env bash
# Builds the CUDA kernel test (test/cuda) with plain nvcc, no CMake, and runs it.
#   bash scripts/cuda_kernel_test.sh            # build for sm_80 and sm_90, then run
#   NVCC=/path/nvcc OUT_BIN=/tmp/t ARCHS="90" bash scripts/cuda_kernel_test.sh
#   BUILD_ONLY=1 bash scripts/cuda_kernel_test.sh   # compile (with -Xptxas -v) only
#   bash scripts/cuda_kernel_test.sh --bench    # tensor-core vs SIMT GEMM timings
# Exit status: the test's (0 all passed, 1 failures, 77 no CUDA device).
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
OUT_BIN=${OUT_BIN:-build-cuda-test/cuda_kernel_test}
ARCHS=${ARCHS:-"80 90"}
mkdir -p "$(dirname "$OUT_BIN")"
gencode=()
for a in $ARCHS; do
  gencode+=(-gencode "arch=compute_$a,code=sm_$a")
done
"$NVCC" -std=c++17 -O2 "${gencode[@]}" -Xptxas -v \
  -I codegen/cuda/kernels -I ir -I codegen/x86/kernels \
  -o "$OUT_BIN" test/cuda/cuda_kernel_test.cu test/cuda/cuda_attention_test.cu \
  test/cuda/cuda_mma_test.cu test/cuda/cuda_tiling_test.cu \
  2> "$OUT_BIN.ptxas.txt" || { cat "$OUT_BIN.ptxas.txt" >&2; exit 1; }
python3 scripts/ptxas_table.py < "$OUT_BIN.ptxas.txt" > "$OUT_BIN.kernels.txt" 2>/dev/null || true
tail -n 1 "$OUT_BIN.kernels.txt" 2>/dev/null || true
[ -n "${BUILD_ONLY:-}" ] && exit 0
exec "$OUT_BIN" "$@"
