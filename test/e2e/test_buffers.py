"""The activation buffer plan (qlc-plan-buffers, docs/passes.md) end to end: `qlc inspect`
reports it, the manifest carries it, the runtime refuses a manifest whose plan is
incoherent (exit 2, one line, no crash), QLC_CHECK_BUFFERS=1 catches a step that writes
past the arena, and a --pass-pipeline without the pass gets the same plan from codegen."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from badinput_helpers import SMALL, TOKENS, assert_bad, dump_logits, rewrite_manifest, run_bad
from conftest import DEMO_MODEL, run, run_ok, tool


def manifest(artifact):
    return json.loads(run_ok("qlc", "inspect", artifact, "--json").stdout)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("buffers")
    cache = {}

    def get(model, *flags):
        key = (str(model), flags)
        if key not in cache:
            out = root / f"m{len(cache)}.so"
            run_ok("qlc", "compile", model, "-o", out, "--target", "native", *flags)
            cache[key] = out
        return cache[key]

    return get


@pytest.fixture
def private(compiled, tmp_path):
    """A copy of the SMALL artifact (64 tokens a step), safe to corrupt."""
    pytest.importorskip("xxhash")
    dst = tmp_path / "small.so"
    shutil.copyfile(compiled(SMALL, "--max-tokens", "64"), dst)
    return dst


def live_together(a, b):
    return a["first"] <= b["last"] and b["first"] <= a["last"]


@pytest.mark.parametrize("model", [SMALL, DEMO_MODEL])
def test_inspect_reports_plan(compiled, model):
    art = compiled(model, "--max-tokens", "64")
    plan = manifest(art)["exec"]["activations"]
    text = run_ok("qlc", "inspect", art).stdout
    assert f"activations: peak {plan['peak_bytes']} bytes for max_tokens 64" in text
    assert plan["max_tokens"] == 64
    assert plan["num_buffers"] == len(plan["buffers"]) > 0
    assert plan["peak_bytes"] <= plan["arena_bytes"] <= manifest(art)["exec"]["scratch_bytes"]
    bufs = plan["buffers"]
    for b in bufs:
        assert b["offset"] % plan["alignment"] == 0
        assert b["offset"] + b["bytes"] <= plan["arena_bytes"]
    # Buffers are reused: far fewer bytes than one buffer per value.
    assert plan["arena_bytes"] < sum(b["bytes"] for b in bufs) / 4
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if live_together(a, b):
                assert a["offset"] + a["bytes"] <= b["offset"] or b["offset"] + b["bytes"] <= a["offset"]
    # The plan is for max_tokens rows: twice the tokens, twice every buffer.
    big = manifest(compiled(model, "--max-tokens", "128"))["exec"]["activations"]
    assert [b["bytes"] for b in big["buffers"]] == [2 * b["bytes"] for b in bufs]


def test_pass_pipeline_without_plan_is_planned_by_codegen(compiled, tmp_path):
    """codegen runs the pass's own planner when the pipeline leaves qlc-plan-buffers out."""
    pipeline = "builtin.module(qlc-fuse-qkv,qlc-fuse-gate-up,qlc-fuse-norm-residual)"
    a = compiled(SMALL, "--pass-pipeline", pipeline)
    b = compiled(SMALL, "--pass-pipeline", pipeline.replace(")", ",qlc-plan-buffers{max-tokens=512})"))
    assert manifest(a)["exec"]["activations"] == manifest(b)["exec"]["activations"]
    assert np.array_equal(dump_logits(tmp_path, a, TOKENS, "a.npy"),
                          dump_logits(tmp_path, b, TOKENS, "b.npy"))


def test_pass_pipeline_plan_for_other_max_tokens(tmp_path):
    """A plan made for another --max-tokens is refused by codegen with a clear message."""
    out = tmp_path / "m.so"
    p = run("qlc", "compile", SMALL, "-o", out, "--target", "native", "--pass-pipeline",
            "builtin.module(qlc-plan-buffers{max-tokens=8})")
    assert p.returncode != 0 and p.returncode < 128, p.stderr
    assert "max_tokens 8, not 512" in p.stderr
    assert not out.exists()


def corrupt_arena_below_peak(m):
    a = m["exec"]["activations"]
    a["arena_bytes"] = a["peak_bytes"] - 64


def corrupt_offset_outside(m):
    a = m["exec"]["activations"]
    a["buffers"][0]["offset"] = a["arena_bytes"]


def corrupt_overlap(m):
    bufs = m["exec"]["activations"]["buffers"]
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if live_together(a, b) and a["bytes"] == b["bytes"]:
                b["offset"] = a["offset"]
                return
    raise AssertionError("no two buffers live together")


def corrupt_scratch_small(m):
    m["exec"]["scratch_bytes"] = m["exec"]["activations"]["arena_bytes"] - 64


def corrupt_peak(m):
    m["exec"]["activations"]["peak_bytes"] -= 64  # still <= arena: the table check fires


def corrupt_count(m):
    m["exec"]["activations"]["num_buffers"] += 1


def corrupt_max_tokens(m):
    m["exec"]["activations"]["max_tokens"] = 32


def corrupt_missing_field(m):
    del m["exec"]["activations"]["arena_bytes"]


@pytest.mark.parametrize("corrupt, needle", [
    (corrupt_arena_below_peak, "smaller than peak_bytes"),
    (corrupt_offset_outside, "inside the arena"),
    (corrupt_overlap, "live at the same time and overlap"),
    (corrupt_scratch_small, "exceeds scratch_bytes"),
    (corrupt_peak, "differs from the"),
    (corrupt_count, "num_buffers differs"),
    (corrupt_max_tokens, "planned for max_tokens 32"),
    (corrupt_missing_field, "arena_bytes"),
])
def test_corrupt_plan_refused(tmp_path, private, corrupt, needle):
    rewrite_manifest(private, corrupt, fix_hashes=True)
    run_bad(tmp_path, private, "--tokens", TOKENS, needles=[str(private), needle])


def test_guard_off_and_on_same_logits(tmp_path, private):
    plain = dump_logits(tmp_path, private, TOKENS, "a.npy")
    env = dict(os.environ, QLC_CHECK_BUFFERS="1")
    out = tmp_path / "b.npy"
    p = subprocess.run([tool("qlc-run"), str(private), "--tokens", TOKENS, "--dump-logits",
                        str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    assert np.array_equal(plain, np.load(out))


def test_guard_catches_overrun(tmp_path, private):
    """A manifest without a plan (as before qlc-plan-buffers) whose scratch_bytes is too
    small: with QLC_CHECK_BUFFERS=1 the step's overrun lands in the guard and is reported."""
    def shrink(m):
        a = m["exec"].pop("activations")
        top = max(a["buffers"], key=lambda b: b["offset"])
        m["exec"]["scratch_bytes"] = top["offset"] + 64
    rewrite_manifest(private, shrink, fix_hashes=True)
    env = dict(os.environ, QLC_CHECK_BUFFERS="1")
    p = subprocess.run([tool("qlc-run"), str(private), "--tokens", "1 5 9", "--dump-logits",
                        str(tmp_path / "x.npy")], capture_output=True, text=True, env=env,
                       timeout=600)
    assert 0 < p.returncode < 128, (p.returncode, p.stderr)
    assert "QLC_CHECK_BUFFERS" in p.stderr and "past the activation arena" in p.stderr, p.stderr
