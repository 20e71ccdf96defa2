"""The paged KV cache: qlc-plan-kv-cache's plan in the manifest and `qlc inspect`, the
x86 attention through block tables with small pages (every prompt and decode crosses
page boundaries), sequences interleaved in one session with pages handed out in a
shuffled order, and a pool too small for a step (docs/runtime.md)."""
import json
import os
import subprocess

import pytest

from badinput_helpers import assert_bad
from conftest import BIN_DIR, FIXTURES, run, run_ok
from test_logits import dump, model_dir, ref, rel_err

MODEL = FIXTURES / "llama-gqa-bf16"


@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    """Compiles (model, kv dtype, page size, extra flags) once per module."""
    root = tmp_path_factory.mktemp("paged")
    cache = {}

    def get(model, kv="f32", page=0, *extra):
        key = (str(model), kv, page, extra)
        if key not in cache:
            out = root / f"a{len(cache)}.so"
            run_ok("qlc", "compile", model, "-o", out, "--kv-cache", kv, "--kv-page-size", page,
                   *extra)
            cache[key] = out
        return cache[key]

    return get


def manifest(art):
    return json.loads(run_ok("qlc", "inspect", art, "--json").stdout)


@pytest.mark.parametrize("name", ["llama-gqa-bf16", "mistral-headdim-f32", "stories260k"])
@pytest.mark.parametrize("page", [1, 3, 32])
def test_small_pages_match_transformers(name, page, paged, tmp_path):
    tokens, expected = ref(name, 317)
    art = paged(model_dir(name), "f32", page)
    got = dump(art, tokens, tmp_path)
    assert rel_err(got, expected) <= 1e-4
    stepped = dump(art, tokens, tmp_path, "--step-by-step")
    assert rel_err(stepped, got) <= 1e-6


@pytest.mark.parametrize("kv", ["f32", "f16", "int8"])
def test_sequences_interleaved_on_shuffled_pages_equal_each_alone(kv, paged):
    # PagedSequencesInterleavedEqualAlone and PagePoolExhaustionLeavesOtherSlotsIntact
    # (test/unit/RuntimeTest.cpp), on pages of 4 positions; max tokens 16 makes the
    # prompts' prefill chunks cross pages too.
    # With the f32 cache every runtime test of an artifact runs on the small pages; the
    # f16/int8 caches round k/v that a chunked prefill computed with other GEMM shapes
    # differently (test_kv_cache.py), so there the paged tests alone, whose sequences
    # run the same calls alone and together.
    art = paged(MODEL, kv, 4, "--max-tokens", "16")
    env = dict(os.environ, QLC_TEST_ARTIFACT=str(art))
    tests = "ArtifactTest.*" if kv == "f32" else "ArtifactTest.Page*"
    p = subprocess.run([str(BIN_DIR.parent / "test" / "unit" / "qlc-runtime-tests"),
                        f"--gtest_filter={tests}"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"[  PASSED  ] {6 if kv == 'f32' else 2} tests" in p.stdout


def test_manifest_and_inspect_show_the_plan(paged):
    art = paged(MODEL, "int8", 0, "--max-seq-len", "100", "--max-batch", "3")
    m = manifest(art)
    kv = m["exec"]["kv_cache"]
    per_pos = kv["bytes_per_position"]
    assert kv["layout"] == "page,layer,kv,position,head"
    assert kv["page_size"] == 32  # x86's choice
    assert kv["page_bytes"] == 32 * per_pos
    assert kv["max_pages_per_seq"] == 4 and kv["pages"] == 12 and kv["max_batch"] == 3
    assert kv["budget_bytes"] == 0 and kv["scales"] == "per-token-head-asym"
    assert m["abi_version"] == 3
    text = run_ok("qlc", "inspect", art).stdout
    assert "kv pages   32 positions a page" in text and "12 pages" in text, text
    assert "page,layer,kv,position,head" in text


def test_kv_memory_caps_the_pages_and_the_session(paged, tmp_path):
    # llama-gqa-bf16: 960 bytes a position, pages of 32 positions (30720 bytes): one MiB
    # holds 34 pages, fewer than the 8 x 16 that 8 sequences of 512 need, more than one's.
    art = paged(MODEL, "f32", 0, "--max-seq-len", "512", "--max-batch", "8", "--kv-memory", "1")
    kv = manifest(art)["exec"]["kv_cache"]
    assert kv["budget_bytes"] == 1 << 20 and kv["page_bytes"] == 30720
    assert kv["max_pages_per_seq"] == 16 and kv["pages"] == 34
    tokens, expected = ref("llama-gqa-bf16", 317)
    assert rel_err(dump(art, tokens, tmp_path), expected) <= 1e-4
    # A session of 3 slots gets the capped pool (34 pages, not 48): its KV bytes show in
    # --bench's peak against an uncapped artifact's.
    free = paged(MODEL, "f32", 0, "--max-seq-len", "512")
    peak = {}
    for name, a in [("capped", art), ("free", free)]:
        out = run_ok("qlc-run", a, "--bench", "--batch", 3, "--prompt-len", 8, "--gen-len", 2,
                     "--max-seq", 512, "--threads", 1).stdout
        peak[name] = json.loads(out.strip().splitlines()[-1])["peak_device_bytes"]
    assert peak["free"] - peak["capped"] == (48 - 34) * 30720


def test_kv_memory_too_small_for_one_sequence_is_refused(tmp_path):
    p = run("qlc", "compile", MODEL, "-o", tmp_path / "a.so", "--max-seq-len", "16777216",
            "--kv-memory", "1")
    assert_bad(p, "qlc", "memory budget of 1048576 bytes", "max-seq-len 16777216")
    assert not (tmp_path / "a.so").exists()


@pytest.mark.parametrize("flag,value", [("--max-batch", "0"), ("--kv-page-size", "-1"),
                                        ("--kv-memory", "-5")])
def test_bad_plan_flags_are_refused(flag, value, tmp_path):
    p = run("qlc", "compile", MODEL, "-o", tmp_path / "a.so", flag, value)
    assert_bad(p, "qlc", flag)


def test_qlc_run_kv_pages(paged, tmp_path):
    art = paged(MODEL, "f32", 4)
    tokens, expected = ref("llama-gqa-bf16", 17)
    # 17 tokens need 5 pages of 4: with 5 they run, with 4 the prefill is refused.
    assert rel_err(dump(art, tokens, tmp_path, "--kv-pages", "5"), expected) <= 1e-4
    p = run("qlc-run", art, "--tokens", tokens, "--kv-pages", "4",
            "--dump-logits", tmp_path / "x.npy")
    assert p.returncode != 0 and "KV cache is full" in p.stderr, p.stderr
    # A memory fraction: of physical memory on x86, plenty for one sequence.
    assert rel_err(dump(art, tokens, tmp_path, "--kv-memory-fraction", "0.01"), expected) <= 1e-4
