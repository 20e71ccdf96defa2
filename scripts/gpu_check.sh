#!/usr/bin/env bash
# On the GPU machine: the CUDA kernel tests, then the CUDA end-to-end tests
# (test/e2e/test_cuda.py) with qlc/qlc-run from BIN_DIR (default build/tools; binaries
# built on another x86-64 Linux machine run there too). Logs go to LOG_DIR (default .).
#   bash scripts/gpu_check.sh [BIN_DIR] [LOG_DIR] [pytest -k expression]
set -uo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=$(realpath "${1:-build/tools}")
LOG_DIR=$(realpath "${2:-.}")
FILTER=${3:-}
nvidia-smi -L
nvcc --version | tail -1
rc=0
bash scripts/cuda_kernel_test.sh 2>&1 | tee "$LOG_DIR/cuda_kernel_test.log" | tail -60 || rc=1
python3 -c "import pytest" 2>/dev/null || { echo "pytest is missing"; exit 1; }
(cd test/e2e && QLC_BIN_DIR="$BIN_DIR" python3 -m pytest -q -rs ${FILTER:+-k "$FILTER"} \
   test_cuda.py 2>&1 | tee "$LOG_DIR/test_cuda.log" | tail -40) || rc=1
exit $rc
