"""`qlc compile --embedding-dtype`: under weight quantization (rtn, nf4) the embedding
table and the logits projection are the only float matrices left; they are stored f16 by
default (f32 sources narrowed, 16-bit sources kept), or as asked."""
import json

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok


def weight_dtypes(art):
    m = json.loads(run_ok("qlc", "inspect", art, "--json").stdout)
    return {w["name"]: w["dtype"] for w in m["weights"]}, m["quant"]


def logits(art, tmp_path):
    tokens = open(FIXTURES / "stories260k" / "ref" / "tokens_317.txt").read().split()[:64]
    out = tmp_path / (art.stem + ".npy")
    run_ok("qlc-run", art, "--tokens", " ".join(tokens), "--dump-logits", out)
    return np.load(out)


@pytest.mark.parametrize("quant", ["rtn-w4", "nf4"])
def test_f32_embedding_is_narrowed_to_f16_by_default(quant, tmp_path):
    narrow, source = tmp_path / "narrow.so", tmp_path / "source.so"
    run_ok("qlc", "compile", DEMO_MODEL, "-o", narrow, "--quant", quant)
    run_ok("qlc", "compile", DEMO_MODEL, "-o", source, "--quant", quant,
           "--embedding-dtype", "source")
    d, q = weight_dtypes(narrow)
    assert d["model.embed_tokens.weight"] == "f16" and q["embedding_dtype"] == "f16"
    assert weight_dtypes(source)[0]["model.embed_tokens.weight"] == "f32"
    # Every other matrix is packed integers.
    assert all(t in ("f16", "u8", "f32") for t in d.values())
    a, b = logits(narrow, tmp_path), logits(source, tmp_path)
    err = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    assert 0 < err < 2e-3  # f16 rounding of the table, nothing more


def test_16bit_embedding_is_kept_and_bf16_can_be_asked_for(tmp_path):
    src = FIXTURES / "llama-gqa-bf16"
    kept, bf = tmp_path / "kept.so", tmp_path / "bf.so"
    run_ok("qlc", "compile", src, "-o", kept, "--quant", "rtn-w8")
    assert weight_dtypes(kept)[0]["model.embed_tokens.weight"] == "bf16"
    run_ok("qlc", "compile", DEMO_MODEL, "-o", bf, "--quant", "rtn-w8", "--embedding-dtype", "bf16")
    assert weight_dtypes(bf)[0]["model.embed_tokens.weight"] == "bf16"


def test_unknown_embedding_dtype_is_bad_input(tmp_path):
    out = tmp_path / "x.so"
    p = run("qlc", "compile", DEMO_MODEL, "-o", out, "--quant", "rtn-w4", "--embedding-dtype", "i8")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--embedding-dtype i8" in lines[0] and "source" in lines[0]
    assert not out.exists()
