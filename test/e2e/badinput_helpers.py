"""Helpers shared by the bad-input tests (test_bad_input.py, test_bad_artifact.py)."""
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok

SMALL = FIXTURES / "llama-linear-oldkeys-f32"       # 2 layers, f32, q/k/v/o biases, untied
NONSQUARE = FIXTURES / "mistral-headdim-f32"        # q_proj is [120, 80]
FOOTER = struct.Struct("<8sIIQQQQQQ")                # qlc/artifact_format.h, 64 bytes
assert FOOTER.size == 64
NORM = "model.norm.weight"        # [64] f32, the last 256 bytes of the data section
EMB = "model.embed_tokens.weight"  # [260, 64] f32
TOKENS = "1 5 9 42 7 3 100 2"


# ----------------------------------------------------------------------------- helpers

def assert_bad(p, tool, *needles):
    """Exit 2 (not 1, not a signal) and one `TOOL: error:` line containing each needle."""
    assert p.returncode == 2, (
        f"expected exit 2, got {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    lines = p.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got:\n{p.stderr}"
    line = lines[0]
    print(line)
    assert line.startswith(f"{tool}: error: "), line
    for n in needles:
        assert str(n) in line, f"{n!r} not named in: {line}"
    return line


def copy_model(tmp_path, src=SMALL, name="model"):
    dst = tmp_path / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("ref"))
    return dst


def read_st(path):
    """(header dict, data bytes) of a safetensors file, parsed by hand."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_st(path, header, data):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + data)


def edit_header(model, fn):
    """Rewrites model/model.safetensors with fn(header) applied; the data stays as is."""
    st = model / "model.safetensors"
    header, data = read_st(st)
    fn(header)
    write_st(st, header, data)
    return st


def edit_config(model, fn):
    cfg = model / "config.json"
    c = json.loads(cfg.read_text())
    fn(c)
    cfg.write_text(json.dumps(c, indent=2))
    return cfg


def compile_bad(tmp_path, model, *needles, args=("--target", "native")):
    """qlc compile must fail with exit 2 naming needles and leave nothing in the output dir."""
    outdir = tmp_path / "out"
    outdir.mkdir(exist_ok=True)
    out = outdir / "model.so"
    p = run("qlc", "compile", model, "-o", out, *args)
    line = assert_bad(p, "qlc", *needles)
    assert not out.exists(), "a failed compile left its output behind"
    assert list(outdir.iterdir()) == [], f"leftovers: {list(outdir.iterdir())}"
    return line


def run_bad(tmp_path, artifact, *args, needles=()):
    """qlc-run --dump-logits must fail with exit 2 naming needles and write no .npy."""
    out = tmp_path / "logits.npy"
    p = run("qlc-run", artifact, *args, "--dump-logits", out)
    line = assert_bad(p, "qlc-run", *needles)
    assert not out.exists()
    assert not list(tmp_path.glob("logits.npy*"))
    return line


def dump_logits(tmp_path, artifact, tokens=TOKENS, name="logits.npy", *extra):
    out = tmp_path / name
    run_ok("qlc-run", artifact, "--tokens", tokens, "--dump-logits", out, *extra)
    return np.load(out)


def footer(path):
    raw = Path(path).read_bytes()
    magic, ver, _, code_size, man_off, man_size, w_off, w_size, _h = FOOTER.unpack(raw[-64:])
    assert magic == b"QLCART\x01\x00"
    return dict(code_size=code_size, manifest_offset=man_off, manifest_size=man_size,
                weights_offset=w_off, weights_size=w_size)


def rewrite_manifest(path, fn, fix_hashes=False):
    """Applies fn to the manifest of artifact `path` in place, keeping its size (the JSON is
    written compactly and padded with spaces). With fix_hashes the footer's manifest_hash
    and footer_hash are recomputed (needs the xxhash module), so only the content changes."""
    f = footer(path)
    raw = bytearray(Path(path).read_bytes())
    lo, hi = f["manifest_offset"], f["manifest_offset"] + f["manifest_size"]
    m = json.loads(raw[lo:hi])
    fn(m)
    text = json.dumps(m, separators=(",", ":")).encode()
    assert len(text) <= hi - lo
    raw[lo:hi] = text + b" " * (hi - lo - len(text))
    if fix_hashes:
        import xxhash
        foot = len(raw) - 64
        raw[foot + 12:foot + 16] = struct.pack("<I", xxhash.xxh3_64_intdigest(bytes(raw[lo:hi]))
                                               & 0xFFFFFFFF)
        raw[foot + 56:foot + 64] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(raw[foot:foot + 56])))
    Path(path).write_bytes(bytes(raw))


@pytest.fixture
def small_artifact(artifact_cache, tmp_path):
    """A private copy (safe to corrupt) of the compiled SMALL fixture."""
    dst = tmp_path / "small.so"
    shutil.copyfile(artifact_cache(SMALL), dst)
    return dst


