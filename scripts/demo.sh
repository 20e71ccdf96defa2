#!/usr/bin/env bash
# Sets up and builds qlc, compiles the bundled demo model (stories260k) and generates
# from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${QLC_BUILD_DIR:-build}
mkdir -p "$BUILD_DIR/demo"
"$BUILD_DIR/tools/qlc" compile models/stories260k -o "$BUILD_DIR/demo/stories260k.so" --target native
"$BUILD_DIR/tools/qlc" inspect "$BUILD_DIR/demo/stories260k.so" | head -8
"$BUILD_DIR/tools/qlc-run" "$BUILD_DIR/demo/stories260k.so" --prompt "Once upon a time" -n 64 \
  --temperature 0.8 --top-p 0.95 --seed 1
"$BUILD_DIR/tools/qlc-run" "$BUILD_DIR/demo/stories260k.so" --bench --prompt-len 32 --gen-len 64
