#!/usr/bin/env bash
# On the GPU machine: the CUDA kernel tests, then the CUDA end-to-end tests
# (test/e2e/test_cuda.py) with qlc/qlc-run from BIN_DIR (default build/tools; binaries
# built on another x86-64 Linux machine run there too). Logs go to LOG_DIR (default .).
#   bash scripts/gpu_check.sh [BIN_DIR] [LOG_DIR] [pytest -k expression]
# KERNEL_TEST_BIN: a kernel test binary built beforehand (scripts/cuda_kernel_test.sh with
# BUILD_ONLY=1); QLC_PREBUILT: artifacts compiled beforehand (test_cuda.py --prebuild).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=$(realpath "${1:-build/tools}")
LOG_DIR=$(realpath "${2:-.}")
FILTER=${3:-}
nvidia-smi -L
rc=0
if [ -n "${KERNEL_TEST_BIN:-}" ]; then
  "$KERNEL_TEST_BIN" > "$LOG_DIR/cuda_kernel_test.log" 2>&1 || rc=1
else
  bash scripts/cuda_kernel_test.sh > "$LOG_DIR/cuda_kernel_test.log" 2>&1 || rc=1
fi
grep -E "FAIL|PASSED|failed" "$LOG_DIR/cuda_kernel_test.log" | tail -25
python3 -c "import pytest" 2>/dev/null || { echo "pytest is missing"; exit 1; }
(cd test/e2e && QLC_BIN_DIR="$BIN_DIR" python3 -m pytest -q -rs ${FILTER:+-k "$FILTER"} \
   test_cuda.py > "$LOG_DIR/test_cuda.log" 2>&1) || rc=1
grep -E "passed|failed|Error|assert" "$LOG_DIR/test_cuda.log" | tail -30
exit $rc
