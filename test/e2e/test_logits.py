"""Logits of compiled artifacts against Hugging Face transformers' (float64 reference,
made by scripts/make_fixtures.py), and the decode path against the prefill path."""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import BIN_DIR, DEMO_MODEL, FIXTURES, run_ok

MODELS = ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16", "mistral-headdim-f32",
          "llama-linear-oldkeys-f32"]
LENGTHS = [1, 17, 317]


def model_dir(name):
    return DEMO_MODEL if name == "stories260k" else FIXTURES / name


def ref(name, length):
    d = FIXTURES / name / "ref"
    tokens = (d / f"tokens_{length}.txt").read_text().split()
    return " ".join(tokens), np.load(d / f"logits_{length}.npy")


def rel_err(a, b):
    assert np.all(np.isfinite(a)), "non-finite logits"
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def dump(artifact, tokens, tmp_path, *extra):
    out = tmp_path / "logits.npy"
    run_ok("qlc-run", artifact, "--tokens", tokens, "--dump-logits", out, *extra)
    return np.load(out)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", LENGTHS)
def test_float32_logits_match_transformers(name, length, artifact_cache, tmp_path):
    tokens, expected = ref(name, length)
    got = dump(artifact_cache(model_dir(name)), tokens, tmp_path)
    assert got.shape == expected.shape
    assert rel_err(got, expected) <= 1e-4


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", [17, 317])
def test_decode_token_by_token_equals_prefill(name, length, artifact_cache, tmp_path):
    tokens, expected = ref(name, length)
    art = artifact_cache(model_dir(name))
    one_shot = dump(art, tokens, tmp_path)
    stepped = dump(art, tokens, tmp_path, "--step-by-step")
    assert rel_err(stepped, one_shot) <= 1e-6
    assert rel_err(stepped, expected) <= 1e-4


CPU_FLAGS = set(open("/proc/cpuinfo").read().split())
LEVEL_NEEDS = {"x86-64": set(), "x86-64-v3": {"avx2", "fma", "f16c"},
               "x86-64-v4": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}}


@pytest.mark.parametrize("target", ["x86-64", "x86-64-v3", "x86-64-v4"])
@pytest.mark.parametrize("name", ["llama-gqa-bf16", "qwen2-bias-tied-f16"])
def test_every_x86_level_matches(name, target, artifact_cache, tmp_path):
    if not LEVEL_NEEDS[target] <= CPU_FLAGS:
        pytest.skip(f"this CPU lacks {sorted(LEVEL_NEEDS[target] - CPU_FLAGS)}")
    tokens, expected = ref(name, 317)
    got = dump(artifact_cache(model_dir(name), target=target), tokens, tmp_path)
    assert rel_err(got, expected) <= 1e-4


@pytest.mark.parametrize("quant,tol", [("f32", 1e-4), ("f16", 1e-2), ("bf16", 1e-2)])
@pytest.mark.parametrize("name", ["stories260k", "llama-gqa-bf16", "mistral-headdim-f32"])
def test_converted_weights_stay_close(name, quant, tol, artifact_cache, tmp_path):
    tokens, expected = ref(name, 317)
    got = dump(artifact_cache(model_dir(name), quant=quant), tokens, tmp_path)
    assert rel_err(got, expected) <= tol


def test_small_step_size_chunks_prefill(tmp_path):
    art = tmp_path / "chunked.so"
    run_ok("qlc", "compile", FIXTURES / "mistral-headdim-f32", "-o", art, "--max-tokens", "13")
    manifest = json.loads(run_ok("qlc", "inspect", art, "--json").stdout)
    assert manifest["exec"]["max_tokens"] == 13
    tokens, expected = ref("mistral-headdim-f32", 317)
    assert rel_err(dump(art, tokens, tmp_path), expected) <= 1e-4


def test_greedy_generation_follows_the_logits(artifact_cache, tmp_path):
    art = artifact_cache(DEMO_MODEL)
    prompt = "1 403 407 261"
    out = run_ok("qlc-run", art, "--tokens", prompt, "-n", "40").stdout.split()
    generated = [int(t) for t in out]
    assert 1 <= len(generated) <= 40
    ids = prompt.split() + out[:-1]
    logits = dump(art, " ".join(ids), tmp_path)
    # Each generated token is the argmax of the logits at the position before it.
    start = len(prompt.split()) - 1
    assert list(np.argmax(logits[start:], axis=1)) == generated


def test_runtime_api_on_an_artifact(tmp_path):
    art = tmp_path / "rt.so"
    run_ok("qlc", "compile", FIXTURES / "llama-gqa-bf16", "-o", art, "--max-tokens", "16")
    env = dict(os.environ, QLC_TEST_ARTIFACT=str(art))
    p = subprocess.run([str(BIN_DIR.parent / "test" / "unit" / "qlc-runtime-tests"),
                        "--gtest_filter=ArtifactTest.*"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[  PASSED  ] 6 tests" in p.stdout
