#!/usr/bin/env bash
# Sets up and builds qlc, then runs the whole test suite: lit, unit tests (GoogleTest)
# and the end-to-end tests (pytest), through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${QLC_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2
