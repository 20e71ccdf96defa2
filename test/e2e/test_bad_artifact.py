"""Bad input, continued: qlc compile flags, artifacts (truncated, corrupted, other targets) and
qlc-run usage. Same rules as test_bad_input.py: exit code 2, one line naming the problem,
nothing left behind."""
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok
from badinput_helpers import *  # noqa: F401,F403  (helpers and the small_artifact fixture)

# ------------------------------------------------------------------------- qlc compile

def test_compile_unknown_target(tmp_path):
    compile_bad(tmp_path, SMALL, "--target", "pentium4", args=("--target", "pentium4"))


def test_compile_unknown_quant(tmp_path):
    compile_bad(tmp_path, SMALL, "--quant", "q5_k", args=("--target", "native", "--quant", "q5_k"))


@pytest.mark.parametrize("n", ["-1", "16777217", str(2**62)])
def test_compile_max_seq_len_out_of_range(tmp_path, n):
    compile_bad(tmp_path, SMALL, "--max-seq-len", n, args=("--target", "native", "--max-seq-len", n))


def test_compile_output_dir_missing(tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "m.so"
    p = run("qlc", "compile", SMALL, "-o", out, "--target", "native")
    assert_bad(p, "qlc", str(out.parent))
    assert not (tmp_path / "no").exists()


def test_compile_output_is_directory(tmp_path):
    out = tmp_path / "outdir"
    out.mkdir()
    p = run("qlc", "compile", SMALL, "-o", out, "--target", "native")
    assert_bad(p, "qlc", str(out))
    assert list(out.iterdir()) == []
    assert [x.name for x in tmp_path.iterdir()] == ["outdir"]


def test_compile_source_missing(tmp_path):
    src = tmp_path / "no-such-model"
    compile_bad(tmp_path, src, str(src))


def test_compile_source_is_file(tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"\0" * 100)
    compile_bad(tmp_path, src, str(src))


@pytest.mark.parametrize("content", [b"", b"GGUF", b"GGUF" + b"\0" * 60, b"GGUF\x03\0\0\0" + b"\xff" * 60])
def test_compile_gguf_broken(tmp_path, content):
    """A broken .gguf (or, before GGUF import exists, any .gguf) is refused by name."""
    src = tmp_path / "model.gguf"
    src.write_bytes(content)
    compile_bad(tmp_path, src, str(src))


def test_compile_missing_output_flag(tmp_path):
    p = run("qlc", "compile", SMALL, "--target", "native")
    assert_bad(p, "qlc", "-o")


def test_compile_unknown_flag(tmp_path):
    p = run("qlc", "compile", SMALL, "-o", tmp_path / "m.so", "--bogus-flag")
    assert_bad(p, "qlc", "--bogus-flag")
    assert list(tmp_path.iterdir()) == []


def test_compile_bad_flag_value(tmp_path):
    p = run("qlc", "compile", SMALL, "-o", tmp_path / "m.so", "--max-seq-len", "lots")
    assert_bad(p, "qlc", "--max-seq-len")


def test_no_subcommand():
    assert_bad(run("qlc"), "qlc", "subcommand")


@pytest.mark.parametrize("tool,args", [("qlc", ["--help"]), ("qlc", ["compile", "--help"]),
                                       ("qlc", ["inspect", "--help"]), ("qlc-run", ["--help"])])
def test_help_still_works(tool, args):
    p = run(tool, *args)
    assert p.returncode == 0, p.stderr
    assert "--" in p.stdout


# ----------------------------------------------------------------------------- artifacts

@pytest.mark.parametrize("cut", ["first-100", "half", "last-byte", "footer-only",
                                 "middle-removed"])
def test_artifact_truncated(tmp_path, small_artifact, cut):
    raw = small_artifact.read_bytes()
    keep = {"first-100": raw[:100], "half": raw[: len(raw) // 2], "last-byte": raw[:-1],
            "footer-only": raw[-64:], "middle-removed": raw[: len(raw) // 2] + raw[-64:]}[cut]
    small_artifact.write_bytes(keep)
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS, needles=[str(small_artifact)])
    assert_bad(run("qlc", "inspect", small_artifact), "qlc", str(small_artifact))
    assert_bad(run("qlc", "inspect", "--json", small_artifact), "qlc", str(small_artifact))


def test_artifact_weights_byte_flipped(tmp_path, small_artifact):
    f = footer(small_artifact)
    raw = bytearray(small_artifact.read_bytes())
    raw[f["weights_offset"] + f["weights_size"] // 3] ^= 0x40
    small_artifact.write_bytes(bytes(raw))
    line = run_bad(tmp_path, small_artifact, "--tokens", TOKENS,
                   needles=[str(small_artifact), "weights checksum"])
    assert "mismatch" in line
    # --no-verify skips the weights checksum: it loads and runs (the logits differ a little).
    logits = dump_logits(tmp_path, small_artifact, TOKENS, "noverify.npy", "--no-verify")
    assert logits.shape == (len(TOKENS.split()), 260)


def test_artifact_code_byte_flipped(tmp_path, small_artifact):
    f = footer(small_artifact)
    raw = bytearray(small_artifact.read_bytes())
    raw[f["code_size"] // 2] ^= 0x01
    small_artifact.write_bytes(bytes(raw))
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS,
            needles=[str(small_artifact), "code checksum"])
    # --no-verify concerns the weights only: the code is always checked.
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS, "--no-verify",
            needles=[str(small_artifact), "code checksum"])


def test_artifact_manifest_byte_flipped(tmp_path, small_artifact):
    f = footer(small_artifact)
    raw = bytearray(small_artifact.read_bytes())
    raw[f["manifest_offset"]] = ord("#")  # the manifest's opening '{'
    small_artifact.write_bytes(bytes(raw))
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS, needles=[str(small_artifact), "manifest"])
    assert_bad(run("qlc", "inspect", small_artifact), "qlc", str(small_artifact), "manifest")


def test_artifact_manifest_vocab_digit_flipped(tmp_path, small_artifact):
    """Still valid JSON, but vocab 960 would let token 900 read past the embedding table."""
    f = footer(small_artifact)
    raw = bytearray(small_artifact.read_bytes())
    man = raw[f["manifest_offset"]:f["manifest_offset"] + f["manifest_size"]].decode()
    i = man.index('"vocab_size": 260') + len('"vocab_size": ')
    raw[f["manifest_offset"] + i] = ord("9")  # 260 -> 960, same length
    small_artifact.write_bytes(bytes(raw))
    run_bad(tmp_path, small_artifact, "--tokens", "1 900 2",
            needles=[str(small_artifact), "manifest checksum"])
    assert_bad(run("qlc", "inspect", "--json", small_artifact), "qlc", "manifest checksum")


def test_artifact_manifest_num_layers_changed(tmp_path, small_artifact):
    """A smaller num_layers would size a KV cache the code overruns (it crashed before the
    manifest had a checksum)."""
    rewrite_manifest(small_artifact, lambda m: m["model"].update(num_layers=1))
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS, needles=["manifest checksum"])


@pytest.mark.parametrize("max_seq", [2**62, 2**40, 2**31])
def test_artifact_manifest_max_seq_huge(tmp_path, small_artifact, max_seq):
    """A huge max_seq_len in the manifest must not wrap the KV cache size (heap overrun)."""
    pytest.importorskip("xxhash")
    rewrite_manifest(small_artifact, lambda m: m["model"].update(max_seq_len=max_seq),
                     fix_hashes=True)
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS, needles=["max_seq", str(max_seq)])
    # With --max-seq the session does not use the manifest's value: runs fine.
    assert dump_logits(tmp_path, small_artifact, TOKENS, "ok.npy", "--max-seq", "64").shape == (8, 260)


def test_artifact_manifest_rewritten_valid(tmp_path, small_artifact, artifact_cache):
    """rewrite_manifest itself keeps the artifact valid (guards the test above)."""
    pytest.importorskip("xxhash")
    rewrite_manifest(small_artifact, lambda m: None, fix_hashes=True)
    a = dump_logits(tmp_path, small_artifact, TOKENS, "a.npy")
    b = dump_logits(tmp_path, artifact_cache(SMALL), TOKENS, "b.npy")
    assert np.array_equal(a, b)


def test_artifact_footer_byte_flipped(tmp_path, small_artifact):
    raw = bytearray(small_artifact.read_bytes())
    raw[-64 + 16] ^= 0x01  # code_size
    small_artifact.write_bytes(bytes(raw))
    run_bad(tmp_path, small_artifact, "--tokens", TOKENS, needles=[str(small_artifact), "footer"])
    assert_bad(run("qlc", "inspect", small_artifact), "qlc", str(small_artifact), "footer")


def test_artifact_random_file(tmp_path):
    junk = tmp_path / "junk.so"
    junk.write_bytes(np.random.default_rng(0).bytes(10000))
    run_bad(tmp_path, junk, "--tokens", TOKENS, needles=[str(junk), "not a qlc artifact"])
    assert_bad(run("qlc", "inspect", junk), "qlc", str(junk))


def test_artifact_plain_elf(tmp_path):
    """A real shared object that is not a qlc artifact (no footer)."""
    so = tmp_path / "libm.so"
    src = next((p for p in ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6"]
                if os.path.exists(p)), None)
    if src is None:
        pytest.skip("no libm to copy")
    shutil.copyfile(src, so)
    run_bad(tmp_path, so, "--tokens", TOKENS, needles=[str(so)])


def test_artifact_empty_file(tmp_path):
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    run_bad(tmp_path, empty, "--tokens", TOKENS, needles=[str(empty)])
    assert_bad(run("qlc", "inspect", empty), "qlc", str(empty))


def test_artifact_directory(tmp_path):
    d = tmp_path / "dir.so"
    d.mkdir()
    run_bad(tmp_path, d, "--tokens", TOKENS, needles=[str(d)])
    assert_bad(run("qlc", "inspect", d), "qlc", str(d))


def test_artifact_nonexistent(tmp_path):
    missing = tmp_path / "missing.so"
    run_bad(tmp_path, missing, "--tokens", TOKENS, needles=[str(missing)])
    assert_bad(run("qlc", "inspect", missing), "qlc", str(missing))


def test_artifact_needs_avx512(tmp_path, artifact_cache):
    if "avx512f" in Path("/proc/cpuinfo").read_text():
        pytest.skip("this machine has AVX-512")
    art = artifact_cache(SMALL, target="x86-64-v4")
    assert "avx512f" in json.loads(run_ok("qlc", "inspect", "--json", art).stdout)["target"]["features"]
    run_bad(tmp_path, art, "--tokens", TOKENS, needles=[str(art), "x86-64-v4", "avx512"])


# ------------------------------------------------------------------------------ qlc-run

@pytest.mark.parametrize("tokens,needle", [("1 2 260", "260"), ("1 2 99999", "99999"),
                                           ("3 -1 4", "-1"), ("2147483647", "2147483647")])
def test_run_token_out_of_vocab(tmp_path, artifact_cache, tokens, needle):
    line = run_bad(tmp_path, artifact_cache(SMALL), "--tokens", tokens, needles=[needle])
    assert "vocab" in line


@pytest.mark.parametrize("tokens,needle", [("1 2 x", "'x'"), ("1 2.5", "'2.5'"),
                                           ("1,2,3", "'1,2,3'"), ("99999999999", "99999999999")])
def test_run_tokens_not_integers(tmp_path, artifact_cache, tokens, needle):
    run_bad(tmp_path, artifact_cache(SMALL), "--tokens", tokens, needles=["--tokens", needle])


@pytest.mark.parametrize("tokens", ["", "   "])
def test_run_tokens_empty(tmp_path, artifact_cache, tokens):
    run_bad(tmp_path, artifact_cache(SMALL), "--tokens", tokens, needles=["--tokens"])


def test_run_tokens_missing(tmp_path, artifact_cache):
    run_bad(tmp_path, artifact_cache(SMALL), needles=["--tokens"])


def test_run_prompt_longer_than_max_seq(tmp_path, artifact_cache):
    art = artifact_cache(SMALL)
    run_bad(tmp_path, art, "--tokens", "1 2 3 4 5", "--max-seq", "4", needles=["max_seq", "5"])
    # Just fits: fine.
    assert dump_logits(tmp_path, art, "1 2 3 4", "fits.npy", "--max-seq", "4").shape == (4, 260)


def test_run_prompt_longer_than_artifact_max_seq(tmp_path):
    art = tmp_path / "short.so"
    run_ok("qlc", "compile", SMALL, "-o", art, "--target", "native", "--max-seq-len", "6")
    assert json.loads(run_ok("qlc", "inspect", "--json", art).stdout)["model"]["max_seq_len"] == 6
    run_bad(tmp_path, art, "--tokens", "1 2 3 4 5 6 7", needles=["max_seq", "7"])


def test_run_step_by_step_past_max_seq(tmp_path, artifact_cache):
    run_bad(tmp_path, artifact_cache(SMALL), "--tokens", "1 2 3 4 5", "--max-seq", "3",
            "--step-by-step", needles=["max_seq"])


def test_run_no_mode(artifact_cache):
    p = run("qlc-run", artifact_cache(SMALL), "--tokens", TOKENS)
    assert_bad(p, "qlc-run", "--dump-logits", "--bench")


def test_run_two_modes(tmp_path, artifact_cache):
    p = run("qlc-run", artifact_cache(SMALL), "--tokens", TOKENS, "--bench", "--dump-logits",
            tmp_path / "l.npy")
    assert_bad(p, "qlc-run", "--dump-logits", "--bench")
    assert not (tmp_path / "l.npy").exists()


@pytest.mark.parametrize("flag,value", [("--batch", "0"), ("--batch", "-3"), ("--batch", "two"),
                                        ("--prompt-len", "0"), ("--threads", "-1"),
                                        ("--max-seq", "-5"), ("-n", "x")])
def test_run_bad_flag_value(artifact_cache, flag, value):
    p = run("qlc-run", artifact_cache(SMALL), "--bench", flag, value)
    assert_bad(p, "qlc-run", flag)


def test_run_unknown_flag(artifact_cache):
    p = run("qlc-run", artifact_cache(SMALL), "--tokens", TOKENS, "--temprature", "0.5")
    assert_bad(p, "qlc-run", "--temprature")


def test_run_missing_artifact_arg():
    assert_bad(run("qlc-run", "--tokens", TOKENS), "qlc-run", "artifact")


def test_run_dump_logits_unwritable(tmp_path, artifact_cache):
    out = tmp_path / "no" / "dir" / "l.npy"
    p = run("qlc-run", artifact_cache(SMALL), "--tokens", TOKENS, "--dump-logits", out)
    assert_bad(p, "qlc-run", str(out))
    assert not (tmp_path / "no").exists()


def test_run_prompt_without_tokenizer(artifact_cache):
    p = run("qlc-run", artifact_cache(SMALL), "--prompt", "Once upon a time", "-n", "4")
    assert_bad(p, "qlc-run", "--prompt")


# ---------------------------------------------------------------- valid uses, alongside

# Fused (the default): per layer, q/k/v weights and biases are one tensor each and
# gate/up one (29 - 2 * 5 = 19 tensors); --no-fuse keeps the checkpoint's tensors.
@pytest.mark.parametrize("fuse,q_bias,count", [
    ("--fuse", "model.layers.1.self_attn.{q,k,v}_proj.bias", 19),
    ("--no-fuse", "model.layers.1.self_attn.q_proj.bias", 29)])
def test_inspect_json(fuse, q_bias, count, artifact_cache, tmp_path):
    art = artifact_cache(SMALL)
    if fuse == "--no-fuse":
        art = tmp_path / "unfused.so"
        run_ok("qlc", "compile", SMALL, "-o", art, fuse)
    m = json.loads(run_ok("qlc", "inspect", "--json", art).stdout)
    assert m["format"] == "qlc-artifact"
    assert m["model"]["vocab_size"] == 260 and m["model"]["num_layers"] == 2
    names = {w["name"] for w in m["weights"]}
    assert {EMB, NORM, "lm_head.weight", q_bias} <= names
    assert len(m["weights"]) == count
    for w in m["weights"]:
        assert w["offset"] % 64 == 0 and w["bytes"] > 0
    assert m["kernels"] and all({"op", "kernel", "weight"} <= set(k) for k in m["kernels"])
    assert {"code", "weights"} <= set(m["checksums"])
    text = run_ok("qlc", "inspect", art).stdout
    assert "kernels" in text and "LlamaForCausalLM" in text


def test_run_greedy_and_step_by_step(tmp_path, artifact_cache):
    art = artifact_cache(SMALL)
    p = run_ok("qlc-run", art, "--tokens", TOKENS, "-n", "5")
    ids = p.stdout.split()
    assert 1 <= len(ids) <= 5 and all(0 <= int(t) < 260 for t in ids)
    full = dump_logits(tmp_path, art, TOKENS, "full.npy")
    step = dump_logits(tmp_path, art, TOKENS, "step.npy", "--step-by-step")
    np.testing.assert_allclose(step, full, rtol=1e-4, atol=1e-4)


def test_bench_small(artifact_cache):
    p = run_ok("qlc-run", artifact_cache(SMALL), "--bench", "--batch", "2", "--prompt-len", "8",
               "--gen-len", "4")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["batch"] == 2 and r["prefill_tok_s"] > 0 and r["decode_tok_s"] > 0
