"""Shared helpers for the end-to-end tests: where the tools are, and running them."""
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("QLC_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN_DIR = Path(os.environ.get("QLC_BIN_DIR", SOURCE_DIR / "build" / "tools"))
FIXTURES = SOURCE_DIR / "test" / "fixtures"
DEMO_MODEL = SOURCE_DIR / "models" / "stories260k"

# qlc compile reads the tuning cache of --autotune from $XDG_CACHE_HOME/qlc/tuning.json by
# default: the tests get an empty cache of their own, whatever this machine has tuned.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="qlc-test-cache-")


def tool(name):
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is not built")
    return str(path)


def run(name, *args, timeout=600):
    """Runs a qlc tool and returns the CompletedProcess (text mode)."""
    return subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def run_ok(name, *args, timeout=600):
    p = run(name, *args, timeout=timeout)
    assert p.returncode == 0, f"{name} {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}"
    return p


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory):
    """Compiles each (model, target, quant) once per test session."""
    root = tmp_path_factory.mktemp("artifacts")
    cache = {}

    def get(model_dir, target="native", quant="none"):
        key = (str(model_dir), target, quant)
        if key not in cache:
            out = root / f"{Path(model_dir).name}-{target}-{quant}.so"
            run_ok("qlc", "compile", model_dir, "-o", out, "--target", target, "--quant", quant)
            cache[key] = out
        return cache[key]

    return get
