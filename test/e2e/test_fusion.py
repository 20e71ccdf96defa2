"""Fusion passes end to end (docs/passes.md): artifacts compiled with fusion (the
default) give the logits of unfused ones (`--no-fuse`) on every fixture, for float and
RTN-quantized weights, in a prefill and token by token; fusing then quantizing gives
the numbers of quantizing then fusing; and the pipeline debugging flags of
`qlc compile` (--print-ir-after-all, --mlir-print-ir-after, --timing, --pass-pipeline)."""
import json

import numpy as np
import pytest

from badinput_helpers import SMALL, assert_bad
from conftest import DEMO_MODEL, FIXTURES, run, run_ok

MODELS = ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16", "mistral-headdim-f32",
          "llama-linear-oldkeys-f32"]
QUANTS = ["none", "rtn-w4", "rtn-w8"]
FUSED_KERNELS = ("swiglu<", "add_rms_norm<")
# Kernels only the unfused graph has (qlc-fuse-rope moves RoPE into attention).
UNFUSED_KERNELS = ("rope<",)


def model_dir(name):
    return DEMO_MODEL if name == "stories260k" else FIXTURES / name


def tokens(name, length):
    return " ".join((FIXTURES / name / "ref" / f"tokens_{length}.txt").read_text().split())


def rel_err(a, b):
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), "non-finite logits"
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(model, quant, extra flags) -> artifact, compiled once per module."""
    root = tmp_path_factory.mktemp("fusion")
    cache = {}

    def get(name, quant, *flags):
        key = (name, quant, flags)
        if key not in cache:
            out = root / f"{name}-{quant}-{len(cache)}.so"
            args = ["--quant", quant] if quant else []
            run_ok("qlc", "compile", model_dir(name), "-o", out, "--target", "native", *args,
                   *flags)
            cache[key] = out
        return cache[key]

    return get


def dump(artifact, toks, path, *extra):
    run_ok("qlc-run", artifact, "--tokens", toks, "--dump-logits", path, *extra)
    return np.load(path)


def kernels(artifact):
    manifest = json.loads(run_ok("qlc", "inspect", artifact, "--json").stdout)
    return [k["kernel"] for k in manifest["kernels"]]


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("name", MODELS)
def test_fused_logits_equal_unfused(name, quant, compiled, tmp_path):
    fused, unfused = compiled(name, quant), compiled(name, quant, "--no-fuse")
    ks = kernels(fused)
    for k in FUSED_KERNELS:
        assert any(x.startswith(k) for x in ks), f"{k} missing from the fused artifact"
    assert not any(x.startswith(FUSED_KERNELS) for x in kernels(unfused))
    assert not any(x.startswith(UNFUSED_KERNELS) for x in ks)
    assert any(x.startswith(UNFUSED_KERNELS) for x in kernels(unfused))
    # qlc-fold-qkv-split: the attention reads q/k/v in place, no split kernel is left.
    assert not any(x.startswith("split_cols<") for x in ks)
    # Fusing removes q/k/v, gate/up and add+norm kernel calls (3, 2 and 1 per layer).
    assert len(ks) < len(kernels(unfused))
    long_prompt = tokens(name, 317)
    a = dump(fused, long_prompt, tmp_path / "f.npy")
    b = dump(unfused, long_prompt, tmp_path / "u.npy")
    assert a.shape == b.shape
    assert rel_err(a, b) <= 1e-5
    short = tokens(name, 17)
    a = dump(fused, short, tmp_path / "fs.npy", "--step-by-step")
    b = dump(unfused, short, tmp_path / "us.npy", "--step-by-step")
    assert rel_err(a, b) <= 1e-5


FUSE = "qlc-fuse-qkv,qlc-fuse-rope,qlc-fuse-gate-up,qlc-fuse-norm-residual"
NO_ROPE = FUSE.replace("qlc-fuse-rope,", "")


@pytest.mark.parametrize("kv", ["f32", "int8"])
@pytest.mark.parametrize("name", MODELS)
def test_fused_rope_logits_equal_unfused(name, kv, compiled, tmp_path):
    """qlc-fuse-rope: the attention rotates q and k itself; the rope kernels are gone and
    the logits are those of the artifact that runs them (prefill and token by token, with
    an exact and an int8 KV cache, whose codes are taken from the rotated keys)."""
    quant_kv = "" if kv == "f32" else "qlc-quantize-kv{dtype=int8},"
    fused = compiled(name, None, "--pass-pipeline", f"builtin.module({quant_kv}{FUSE})")
    plain = compiled(name, None, "--pass-pipeline", f"builtin.module({quant_kv}{NO_ROPE})")
    kf, kp = kernels(fused), kernels(plain)
    assert not any(k.startswith("rope<") for k in kf)
    layers = json.loads(run_ok("qlc", "inspect", fused, "--json").stdout)["model"]["num_layers"]
    assert sum(k.startswith("rope<") for k in kp) == 2 * layers
    assert len(kf) == len(kp) - 2 * layers
    long_prompt = tokens(name, 317)
    a = dump(fused, long_prompt, tmp_path / "f.npy")
    b = dump(plain, long_prompt, tmp_path / "u.npy")
    assert rel_err(a, b) <= 1e-5
    short = tokens(name, 17)
    a = dump(fused, short, tmp_path / "fs.npy", "--step-by-step")
    b = dump(plain, short, tmp_path / "us.npy", "--step-by-step")
    assert rel_err(a, b) <= 1e-5


@pytest.mark.parametrize("quant", ["none", "rtn-w4"])
@pytest.mark.parametrize("name", MODELS)
def test_folded_qkv_split_gives_the_same_logits(name, quant, compiled, tmp_path):
    """qlc-fold-qkv-split: the attention reads q, k and v as column ranges of the fused
    projection's rows; the three split kernels per layer are gone and the logits are bit
    for bit those of the artifact that copies the columns out first."""
    q = "qlc-quantize-rtn{bits=4 group-size=32}," if quant == "rtn-w4" else ""
    folded = compiled(name, None, "--pass-pipeline", f"builtin.module({q}{FUSE},qlc-fold-qkv-split)")
    split = compiled(name, None, "--pass-pipeline", f"builtin.module({q}{FUSE})")
    kf, ks = kernels(folded), kernels(split)
    layers = json.loads(run_ok("qlc", "inspect", folded, "--json").stdout)["model"]["num_layers"]
    assert sum(k.startswith("split_cols<") for k in ks) == 3 * layers
    assert not any(k.startswith("split_cols<") for k in kf)
    assert len(kf) == len(ks) - 3 * layers
    a = dump(folded, tokens(name, 317), tmp_path / "f.npy")
    b = dump(split, tokens(name, 317), tmp_path / "s.npy")
    assert np.array_equal(a, b), f"rel {rel_err(a, b)}"
    a = dump(folded, tokens(name, 17), tmp_path / "fs.npy", "--step-by-step")
    b = dump(split, tokens(name, 17), tmp_path / "ss.npy", "--step-by-step")
    assert np.array_equal(a, b), f"rel {rel_err(a, b)}"


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("name", ["stories260k", "qwen2-bias-tied-f16", "mistral-headdim-f32"])
def test_fuse_then_quantize_equals_quantize_then_fuse(name, bits, compiled, tmp_path):
    group = 128 if bits == 4 else 0
    quantize = f"qlc-quantize-rtn{{bits={bits} group-size={group}}}"
    # What --quant rtn-w* adds after quantizing: the embedding table narrowed to f16.
    cast = "qlc-cast-weights{dtype=f16 only-narrow=true}"
    fuse_first = compiled(name, None, "--pass-pipeline", f"builtin.module({FUSE},{quantize},{cast})")
    quant_first = compiled(name, None, "--pass-pipeline", f"builtin.module({quantize},{FUSE},{cast})")
    # --pass-pipeline runs no qlc-select-tiling: the pipeline's artifact keeps the kernels'
    # default tiles too (other K slices would change the f32 sums' rounding).
    pipeline = compiled(name, f"rtn-w{bits}", "--no-select-tiling")
    toks = tokens(name, 317)
    a = dump(fuse_first, toks, tmp_path / "a.npy")
    b = dump(quant_first, toks, tmp_path / "b.npy")
    c = dump(pipeline, toks, tmp_path / "c.npy")
    assert np.array_equal(a, b), f"rel {rel_err(a, b)}"
    assert np.array_equal(b, c), f"rel {rel_err(b, c)}"
    assert kernels(fuse_first) == kernels(quant_first)


def test_nf4_fuses_only_whole_blocks(compiled, tmp_path):
    """stories260k's projections hold whole NF4 blocks of 64, so they fuse; the logits
    are those of the unfused artifact."""
    fused, unfused = compiled("stories260k", "nf4"), compiled("stories260k", "nf4", "--no-fuse")
    n = [sum(k.startswith("qlinear_nf4<") for k in kernels(a)) for a in (fused, unfused)]
    assert n[0] < n[1], n  # q/k/v and gate/up each one projection
    toks = tokens("stories260k", 17)
    assert rel_err(dump(fused, toks, tmp_path / "a.npy"), dump(unfused, toks, tmp_path / "b.npy")) <= 1e-5


def test_nf4_double_quant_is_refused_and_stays_unfused(compiled):
    ks = kernels(compiled("stories260k", "nf4-dq"))
    assert not any(k.startswith("split_cols<") or k.startswith("swiglu<") for k in ks)
    assert any(k.startswith("add_rms_norm<") for k in ks)


# --- pipeline flags of qlc compile ------------------------------------------------------

def test_print_ir_after_all(tmp_path):
    p = run_ok("qlc", "compile", SMALL, "-o", tmp_path / "a.so", "--quant", "rtn-w8",
               "--print-ir-after-all")
    for name in ["qlc-quantize-rtn", "qlc-fuse-qkv", "qlc-fuse-rope", "qlc-fold-qkv-split",
                 "qlc-fuse-gate-up", "qlc-fuse-norm-residual", "qlc-plan-buffers"]:
        assert f"// -----// IR Dump After" in p.stderr and f"({name})" in p.stderr, name
    assert "qlc.split" in p.stderr and "qlc.swiglu" in p.stderr


def test_print_ir_after_one_pass(tmp_path):
    p = run_ok("qlc", "compile", SMALL, "-o", tmp_path / "a.so",
               "--mlir-print-ir-after", "qlc-fuse-gate-up")
    dumps = [l for l in p.stderr.splitlines() if "IR Dump After" in l]
    assert len(dumps) == 1 and "(qlc-fuse-gate-up)" in dumps[0], dumps
    assert "qlc.swiglu" in p.stderr


def test_print_ir_after_takes_one_pass_per_flag(tmp_path):
    """Before the positional source, the flag takes one value (a comma list for several)."""
    p = run_ok("qlc", "compile", "--mlir-print-ir-after", "qlc-fuse-qkv,qlc-fuse-norm-residual",
               SMALL, "-o", tmp_path / "a.so")
    dumps = [l for l in p.stderr.splitlines() if "IR Dump After" in l]
    assert len(dumps) == 2 and "(qlc-fuse-qkv)" in dumps[0] and "(qlc-fuse-norm-residual)" in dumps[1]


def test_timing_reports_every_pass(tmp_path):
    p = run_ok("qlc", "compile", SMALL, "-o", tmp_path / "a.so", "--quant", "rtn-w4", "--timing")
    assert "Execution time report" in p.stderr
    for name in ["QuantizeRtnPass", "FuseQkvPass", "FuseRopePass", "FuseGateUpPass",
                 "FuseNormResidualPass", "PlanBuffersPass"]:
        assert name in p.stderr, name
    assert "qlc: host compile" in p.stderr


def test_no_fuse_runs_no_fusion_pass(tmp_path):
    p = run_ok("qlc", "compile", SMALL, "-o", tmp_path / "a.so", "--no-fuse", "--print-ir-after-all")
    assert "qlc-fuse" not in p.stderr


@pytest.mark.parametrize("flags,needles", [
    (["--mlir-print-ir-after", "qlc-fuse-everything"],
     ["--mlir-print-ir-after", "qlc-fuse-everything", "qlc-fuse-qkv"]),
    (["--pass-pipeline", "builtin.module(qlc-fuse-qkv"], ["--pass-pipeline"]),
    (["--pass-pipeline", "builtin.module(qlc-no-such-pass)"], ["--pass-pipeline", "qlc-no-such-pass"]),
    (["--pass-pipeline", "builtin.module(qlc-fuse-qkv)", "--quant", "rtn-w4"],
     ["--pass-pipeline", "--quant rtn-w4"]),
    (["--fuse=maybe"], ["--fuse"]),
])
def test_bad_pipeline_flags(flags, needles, tmp_path):
    assert_bad(run("qlc", "compile", SMALL, "-o", tmp_path / "a.so", *flags), "qlc", *needles)
