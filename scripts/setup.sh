#!/usr/bin/env bash
# Installs what qlc needs to build and test (Debian packages, Python packages), then
# configures and builds it in build/. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(cmake ninja-build g++ llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
              libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libxxhash-dev
              libpcre2-dev libutf8proc-dev pkg-config libeigen3-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c "import numpy, pytest, safetensors, tokenizers, gguf, jinja2" 2>/dev/null; then
  echo "setup: installing Python packages (numpy, pytest, safetensors, tokenizers, gguf, jinja2)"
  $PY -m pip install -q --disable-pip-version-check numpy pytest safetensors tokenizers gguf jinja2
fi

BUILD_DIR=${QLC_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$(command -v $PY)" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
