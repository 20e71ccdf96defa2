"""The CUDA backend. Without a GPU (CI): CUDA artifacts compile (where nvcc exists), record
their target, and refuse to run with a clear message. With a GPU (the H100/H200 machine:
QLC_BIN_DIR=... pytest test_cuda.py): their logits against transformers' and against the
x86 artifacts of the same scheme, decode against prefill, fused against unfused, and an
sm_80 artifact (SASS for sm_80 plus PTX) on a newer GPU."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok
from badinput_helpers import assert_bad

NVCC = shutil.which("nvcc") or (
    "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)


def has_gpu():
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    p = subprocess.run([smi, "-L"], capture_output=True, text=True)
    return p.returncode == 0 and "GPU" in p.stdout


GPU = has_gpu()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
needs_gpu = pytest.mark.skipif(not GPU or NVCC is None, reason="no NVIDIA GPU here")

MODELS = ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16", "mistral-headdim-f32",
          "llama-linear-oldkeys-f32"]
TARGET = "sm_90"


def model_dir(name):
    return DEMO_MODEL if name == "stories260k" else FIXTURES / name


def ref(name, length):
    d = FIXTURES / name / "ref"
    return " ".join((d / f"tokens_{length}.txt").read_text().split()), np.load(
        d / f"logits_{length}.npy")


def rel_err(a, b):
    assert np.all(np.isfinite(a)), "non-finite logits"
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def dump(artifact, tokens, tmp_path, *extra):
    out = tmp_path / "logits.npy"
    run_ok("qlc-run", artifact, "--tokens", tokens, "--dump-logits", out, *extra)
    return np.load(out)


@pytest.fixture(scope="module")
def cuda_artifact(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    cache = {}

    def get(model, target=TARGET, quant="none", *flags):
        key = (str(model), target, quant, flags)
        if key not in cache:
            out = root / f"{Path(model).name}-{target}-{quant}-{len(cache)}.so"
            run_ok("qlc", "compile", model, "-o", out, "--target", target, "--quant", quant,
                   *flags, timeout=900)
            cache[key] = out
        return cache[key]

    return get


# ------------------------------------------------------------------ everywhere with nvcc

@needs_nvcc
@pytest.mark.parametrize("target", ["sm_80", "sm_90"])
def test_cuda_artifact_compiles_and_records_its_target(target, cuda_artifact):
    art = cuda_artifact(FIXTURES / "llama-gqa-bf16", target)
    m = json.loads(run_ok("qlc", "inspect", art, "--json").stdout)
    assert m["target"]["kind"] == "cuda" and m["target"]["name"] == target
    assert m["target"]["features"] == [target]
    kernels = [k["kernel"] for k in m["kernels"]]
    assert any(k.startswith("attention<") for k in kernels)
    assert all("x86" not in k for k in kernels)


@pytest.mark.skipif(GPU, reason="this machine has a GPU")
@needs_nvcc
def test_cuda_artifact_without_gpu_is_refused(cuda_artifact):
    art = cuda_artifact(FIXTURES / "llama-gqa-bf16", "sm_80")
    p = run("qlc-run", art, "--tokens", "1 2 3", "--dump-logits", "/dev/null")
    assert_bad(p, "qlc-run", str(art), "no usable NVIDIA GPU", "sm_80")


def test_missing_nvcc_is_a_usage_error(tmp_path):
    out = tmp_path / "m.so"
    p = run("qlc", "compile", FIXTURES / "llama-gqa-bf16", "-o", out, "--target", "sm_90",
            "--nvcc", tmp_path / "no-nvcc")
    assert_bad(p, "qlc", "nvcc", "sm_90")
    assert not out.exists()


# ---------------------------------------------------------------------- on the GPU

@needs_gpu
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", [1, 17, 317])
def test_cuda_logits_match_transformers(name, length, cuda_artifact, tmp_path):
    tokens, expected = ref(name, length)
    got = dump(cuda_artifact(model_dir(name)), tokens, tmp_path)
    assert got.shape == expected.shape
    assert rel_err(got, expected) <= 1e-4


@needs_gpu
@pytest.mark.parametrize("name", MODELS)
def test_cuda_decode_token_by_token_equals_prefill(name, cuda_artifact, tmp_path):
    tokens, expected = ref(name, 317)
    art = cuda_artifact(model_dir(name))
    stepped = dump(art, tokens, tmp_path, "--step-by-step")
    assert rel_err(stepped, dump(art, tokens, tmp_path)) <= 1e-5
    assert rel_err(stepped, expected) <= 1e-4


@needs_gpu
@pytest.mark.parametrize("name", ["stories260k", "llama-gqa-bf16"])
def test_sm80_artifact_runs_on_this_newer_gpu(name, cuda_artifact, tmp_path):
    tokens, expected = ref(name, 317)
    assert rel_err(dump(cuda_artifact(model_dir(name), "sm_80"), tokens, tmp_path),
                   expected) <= 1e-4


@needs_gpu
@pytest.mark.parametrize("quant,tol", [("f16", 1e-2), ("bf16", 1e-2)])
@pytest.mark.parametrize("name", ["stories260k", "mistral-headdim-f32"])
def test_cuda_half_weights_match_transformers(name, quant, tol, cuda_artifact, tmp_path):
    tokens, expected = ref(name, 317)
    assert rel_err(dump(cuda_artifact(model_dir(name), TARGET, quant), tokens, tmp_path),
                   expected) <= tol


QUANT_CASES = [("rtn-w4", ()), ("rtn-w4-sym", ("--group-size", "32")), ("rtn-w8", ()),
               ("nf4", ()), ("nf4-dq", ()), ("none", ("--kv-cache", "f16")),
               ("rtn-w4", ("--kv-cache", "int8"))]


@needs_gpu
@pytest.mark.parametrize("quant,flags", QUANT_CASES)
@pytest.mark.parametrize("name", ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16"])
def test_cuda_quantized_matches_x86_of_the_same_scheme(name, quant, flags, cuda_artifact,
                                                       tmp_path):
    """Same packed weights, same formats: the two backends differ by float rounding only."""
    tokens, _ = ref(name, 317)
    cuda = dump(cuda_artifact(model_dir(name), TARGET, quant, *flags), tokens, tmp_path)
    x86 = dump(cuda_artifact(model_dir(name), "native", quant, *flags), tokens, tmp_path)
    assert rel_err(cuda, x86) <= 1e-3


@needs_gpu
@pytest.mark.parametrize("quant", ["none", "rtn-w4", "nf4"])
@pytest.mark.parametrize("name", MODELS)
def test_cuda_fused_equals_unfused(name, quant, cuda_artifact, tmp_path):
    tokens, _ = ref(name, 317)
    fused = dump(cuda_artifact(model_dir(name), TARGET, quant), tokens, tmp_path)
    unfused = dump(cuda_artifact(model_dir(name), TARGET, quant, "--no-fuse"), tokens, tmp_path)
    assert rel_err(fused, unfused) <= 1e-5
