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
echo "Greedy continuation of token ids '1 403 407 261' (text in and out comes with the tokenizer):"
"$BUILD_DIR/tools/qlc-run" "$BUILD_DIR/demo/stories260k.so" --tokens "1 403 407 261" -n 48
"$BUILD_DIR/tools/qlc-run" "$BUILD_DIR/demo/stories260k.so" --bench --prompt-len 32 --gen-len 64
