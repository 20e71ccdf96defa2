"""Pre-quantized checkpoints in and out (docs/quantization.md, "Pre-quantized checkpoints").

Out: `qlc compile --quant Q --emit-checkpoint DIR` writes the quantized model as an
AutoGPTQ or AutoAWQ GEMM folder. ckpt_formats.py unpacks it with a NumPy transcription
of those projects' documented layouts (independent of qlc's C++); the dequantized float
weights, written as an ordinary float folder and compiled with --quant none, must give
the quantized artifact's logits, and the unpacked integers, zero points and scales must
equal what qlc quantized (qlc dump-weights) exactly. The checkpoint compiled back by qlc
gives the artifact's logits too.

In: checkpoints of random integers packed by ckpt_formats.py in AutoGPTQ's layout (v1 and
v2 zero points, 4 and 8 bits, desc_act false and true with act-order g_idx, symmetric)
and AutoAWQ GEMM's, compiled by qlc, must give the logits of the float model those
integers stand for. Bad checkpoints are refused with exit code 2 naming the tensor or
the quantization_config field.

Models are tiny random Llama/Qwen2 models made at test time (sizes multiple of 8, as the
int32 packing needs).
"""
import json
import shutil

import numpy as np
import pytest

from ckpt_formats import (PROJECTIONS, dequantize_checkpoint, make_prequantized, random_float_model,
                          read_safetensors, tiny_config, unpack_awq, unpack_gptq, write_model,
                          write_safetensors)
from conftest import DEMO_MODEL, run, run_ok

PROMPTS = ["7", "17 3 250 9 99 1 64 128 200 31 5 77 13 255 8 42 100"]  # decode and prefill paths


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def logits(artifact, tokens):
    out = f"{artifact}.{len(tokens.split())}.npy"
    run_ok("qlc-run", artifact, "--tokens", tokens, "--dump-logits", out)
    return np.load(out)


def all_logits(artifact):
    return [logits(artifact, t) for t in PROMPTS]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt-models")
    llama = tiny_config()
    qwen = tiny_config("Qwen2ForCausalLM", hidden=64, inter=128, tied=True)
    out = {"llama": write_model(root / "llama", llama, random_float_model(llama, 11)),
           "qwen2": write_model(root / "qwen2", qwen, random_float_model(qwen, 12))}
    calib = root / "calib.txt"
    calib.write_text(" ".join(map(str, np.random.default_rng(5).integers(3, 256, 2048))))
    out["calib"] = calib
    return out


# --- export -----------------------------------------------------------------------------

EXPORTS = [  # (model, --quant, --group-size, extra flags)
    ("llama", "rtn-w4", "32", []),
    ("qwen2", "rtn-w8-sym", "0", []),
    ("llama", "gptq-w4", "32", ["--act-order"]),
    ("qwen2", "gptq-w8", "32", []),
    ("llama", "gptq-w4-sym", "64", ["--checkpoint-format", "gptq_v2"]),
    ("llama", "awq-w4", "32", []),
    ("qwen2", "awq-w4", "64", []),
]


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt-export")
    cache = {}

    def get(model, quant, gs, extra):
        key = (model, quant, gs, *extra)
        if key not in cache:
            d = root / "-".join(k.lstrip("-") for k in key)
            args = ["compile", models[model], "-o", f"{d}.so", "--quant", quant, "--group-size", gs,
                    "--emit-checkpoint", d, *extra]
            if quant.startswith(("gptq", "awq")):
                args += ["--calib-tokens", models["calib"], "--calib-samples", "8",
                         "--calib-seqlen", "64"]
            run_ok("qlc", *args)
            cache[key] = (f"{d}.so", d)
        return cache[key]

    return get


@pytest.mark.parametrize("model,quant,gs,extra", EXPORTS)
def test_exported_checkpoint_dequantizes_to_the_artifacts_logits(exported, tmp_path, model, quant,
                                                                 gs, extra):
    artifact, ckpt = exported(model, quant, gs, extra)
    qc = json.loads((ckpt / "config.json").read_text())["quantization_config"]
    bits = int(quant.split("-w")[1][0])
    if quant.startswith("awq"):
        assert qc == {"quant_method": "awq", "bits": 4, "group_size": int(gs), "zero_point": True,
                      "version": "gemm", "modules_to_not_convert": None}
    else:
        assert qc["quant_method"] == "gptq" and qc["bits"] == bits
        assert qc["group_size"] == (int(gs) if gs != "0" else -1)
        assert qc["sym"] == quant.endswith("-sym")
        assert qc["desc_act"] == ("--act-order" in extra)
        assert qc["checkpoint_format"] == ("gptq_v2" if "gptq_v2" in extra else "gptq")
    tensors, header = read_safetensors(ckpt / "model.safetensors")
    q = "model.layers.1.mlp.down_proj"
    assert header[q + ".qweight"]["dtype"] == "I32" and header[q + ".qzeros"]["dtype"] == "I32"
    assert header[q + ".scales"]["dtype"] == "F16"
    assert (q + ".g_idx" in header) == (not quant.startswith("awq"))
    assert not any(n.endswith(".weight") and "_proj" in n for n in header)
    float_dir = dequantize_checkpoint(ckpt, tmp_path / "dequantized")
    run_ok("qlc", "compile", float_dir, "-o", tmp_path / "float.so", "--quant", "none")
    for a, b in zip(all_logits(artifact), all_logits(tmp_path / "float.so")):
        # The same weights in f32; only the order of the sums differs.
        assert rel(b, a) < 1e-5


@pytest.mark.parametrize("model,quant,gs,extra", EXPORTS)
def test_exported_checkpoint_compiles_back_to_the_same_logits(exported, tmp_path, model, quant,
                                                              gs, extra):
    artifact, ckpt = exported(model, quant, gs, extra)
    p = run_ok("qlc", "compile", ckpt, "-o", tmp_path / "back.so")
    for a, b in zip(all_logits(artifact), all_logits(tmp_path / "back.so")):
        assert rel(b, a) < 1e-6
    info = json.loads(run_ok("qlc", "inspect", tmp_path / "back.so", "--json").stdout)
    assert info["quant"]["checkpoint"]["quant_method"] == ("awq" if "awq" in quant else "gptq")


@pytest.mark.parametrize("model,quant,gs", [("llama", "rtn-w4", "32"), ("qwen2", "rtn-w8-sym", "0")])
def test_exported_integers_equal_what_qlc_quantized(exported, tmp_path, models, model, quant, gs):
    """The unpacked AutoGPTQ integers, zero points and scales are qlc's, bit for bit."""
    _, ckpt = exported(model, quant, gs, [])
    dump = tmp_path / "dump"
    run_ok("qlc", "dump-weights", models[model], "--out", dump, "--quant", quant, "--group-size", gs)
    tensors, _ = read_safetensors(ckpt / "model.safetensors")
    bits = int(quant.split("-w")[1][0])
    cfg = json.loads((models[model] / "config.json").read_text())
    checked = 0
    for i in range(cfg["num_hidden_layers"]):
        for proj in PROJECTIONS:
            p = f"model.layers.{i}.{proj}"
            codes, zeros = unpack_gptq(tensors[p + ".qweight"], tensors[p + ".qzeros"], bits)
            name = next(f for f in dump.iterdir() if f.name.startswith(p + ".weight.rtn") and
                        f.name.endswith(".qweight.npy")).name[:-len(".qweight.npy")]
            qw = np.load(dump / f"{name}.qweight.npy")
            qlc_codes = qw if bits == 8 else np.stack([qw & 15, qw >> 4], -1).reshape(qw.shape[0], -1)
            assert (qlc_codes[:, :codes.shape[0]].T == codes).all(), p
            assert (np.load(dump / f"{name}.scales.npy").T.view(np.uint16) ==
                    tensors[p + ".scales"].view(np.uint16)).all(), p
            if quant.endswith("-sym"):
                assert (zeros == 1 << (bits - 1)).all()
            else:
                assert (np.load(dump / f"{name}.zeros.npy").T == zeros).all(), p
            assert (tensors[p + ".g_idx"] == np.arange(codes.shape[0]) //
                    (int(gs) if gs != "0" else codes.shape[0])).all()
            checked += 1
    assert checked == 7 * cfg["num_hidden_layers"]


def test_qlc_export_writes_what_emit_checkpoint_writes(exported, models, tmp_path):
    _, ckpt = exported("llama", "rtn-w4", "32", [])
    run_ok("qlc", "export", models["llama"], "-o", tmp_path / "out", "--quant", "rtn-w4",
           "--group-size", "32")
    for f in ("model.safetensors", "config.json"):
        assert (tmp_path / "out" / f).read_bytes() == (ckpt / f).read_bytes(), f


def test_export_copies_the_tokenizer(tmp_path):
    """stories260k's dims (172) do not fit GPTQ's int32 packing, so a copy with its
    tokenizer files and an 8-aligned config is exported."""
    src = tmp_path / "src"
    cfg = tiny_config(vocab=512)
    write_model(src, cfg, random_float_model(cfg, 3))
    for f in DEMO_MODEL.iterdir():
        if f.name.startswith("tokenizer"):
            shutil.copy(f, src / f.name)
    run_ok("qlc", "export", src, "-o", tmp_path / "out", "--quant", "rtn-w4", "--group-size", "32")
    for f in src.iterdir():
        if f.name.startswith("tokenizer"):
            assert (tmp_path / "out" / f.name).read_bytes() == f.read_bytes()
    run_ok("qlc", "compile", tmp_path / "out", "-o", tmp_path / "a.so")
    run_ok("qlc-run", tmp_path / "a.so", "--prompt", "Once upon a time", "-n", "4")


@pytest.mark.parametrize("quant,needle", [
    ("nf4", "NF4 is bitsandbytes' format"),
    ("awq-w8", "AutoAWQ's GEMM layout is 4-bit only"),
    ("f16", "has no GPTQ/AWQ checkpoint layout"),
])
def test_export_refuses_schemes_without_a_layout(models, tmp_path, quant, needle):
    p = run("qlc", "export", models["llama"], "-o", tmp_path / "out", "--quant", quant)
    assert p.returncode == 2 and needle in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()


def test_export_refuses_shapes_gptq_cannot_pack(tmp_path):
    p = run("qlc", "export", DEMO_MODEL, "-o", tmp_path / "out", "--quant", "rtn-w4", "--group-size", "32")
    assert p.returncode == 2, p.stderr
    assert "model.layers.0.mlp.gate_proj: a 172x64 weight cannot be written as a GPTQ checkpoint" in p.stderr


def test_export_refuses_a_nonempty_output_and_a_prequantized_source(models, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    p = run("qlc", "export", models["llama"], "-o", tmp_path / "out", "--quant", "rtn-w4")
    assert p.returncode == 2 and "is not an empty directory" in p.stderr
    make_prequantized(tmp_path / "pq", tmp_path / "pf", tiny_config(), "gptq")
    p = run("qlc", "export", tmp_path / "pq", "-o", tmp_path / "o2", "--quant", "rtn-w4")
    assert p.returncode == 2 and "already quantized" in p.stderr


# --- import -----------------------------------------------------------------------------

IMPORTS = {  # name -> make_prequantized arguments
    "gptq-v1-w4-g32": dict(method="gptq", bits=4, group_size=32),
    "gptq-v1-w4-g32-actorder": dict(method="gptq", bits=4, group_size=32, desc_act=True),
    "gptq-v1-w4-actorder-unshared": dict(method="gptq", bits=4, group_size=32, desc_act=True,
                                         shared_perms=False),
    "gptq-v1-w8-g32-actorder-sym": dict(method="gptq", bits=8, group_size=32, desc_act=True, sym=True),
    "gptq-v1-w8-perrow": dict(method="gptq", bits=8, group_size=-1),
    "gptq-v2-w4-g64": dict(method="gptq", bits=4, group_size=64, v1=False),
    "awq-gemm-w4-g32": dict(method="awq", group_size=32),
}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_prequantized_checkpoint_gives_the_dequantized_models_logits(tmp_path, name, arch):
    cfg = tiny_config() if arch == "llama" else tiny_config("Qwen2ForCausalLM", inter=128, tied=True)
    make_prequantized(tmp_path / "q", tmp_path / "f", cfg, seed=len(name), **IMPORTS[name])
    p = run_ok("qlc", "compile", tmp_path / "q", "-o", tmp_path / "q.so", "-v")
    run_ok("qlc", "compile", tmp_path / "f", "-o", tmp_path / "f.so")
    for a, b in zip(all_logits(tmp_path / "q.so"), all_logits(tmp_path / "f.so")):
        assert rel(a, b) < 1e-5
    manifest = json.loads(run_ok("qlc", "inspect", tmp_path / "q.so", "--json").stdout)
    kernels = manifest["kernels"]
    names = " ".join(k["kernel"] for k in kernels)
    act_order = IMPORTS[name].get("desc_act", False)
    assert ("qlinear_int_perm<" in names) == act_order
    assert "qlinear_int<" in names or act_order
    unshared = "unshared" in name
    assert ("input permutations (act-order) differ" in p.stderr) == unshared
    # With shared permutations q/k/v and gate/up still fuse: four projections a layer
    # (q/k/v, o, gate/up, down) instead of seven.
    projections = sum(k["op"] == "qlc.quantized_linear" for k in kernels)
    assert (projections == 4 * manifest["model"]["num_layers"]) == (not unshared), projections


# --- bad checkpoints --------------------------------------------------------------------

def broken(tmp_path, edit, method="gptq", **kw):
    """A valid checkpoint, then `edit(tensors, config)` applied to it."""
    make_prequantized(tmp_path / "q", tmp_path / "f", tiny_config(), method, **kw)
    tensors, _ = read_safetensors(tmp_path / "q" / "model.safetensors")
    cfg = json.loads((tmp_path / "q" / "config.json").read_text())
    edit(tensors, cfg)
    write_safetensors(tmp_path / "q" / "model.safetensors", tensors)
    (tmp_path / "q" / "config.json").write_text(json.dumps(cfg))
    return run("qlc", "compile", tmp_path / "q", "-o", tmp_path / "q.so")


Q = "model.layers.0.self_attn.q_proj"


def drop(name):
    return lambda t, c: t.pop(name)


def reshape(name, f):
    def edit(t, c):
        t[name] = f(t[name])
    return edit


def set_config(key, value):
    def edit(t, c):
        c["quantization_config"][key] = value
    return edit


def unequal_groups(t, c):
    g = t[Q + ".g_idx"].copy()
    g[np.argmax(g == 0)] = 1  # group 0 one short, group 1 one over
    t[Q + ".g_idx"] = g


BAD = {
    "missing-qzeros": (drop(Q + ".qzeros"), {}, f"missing tensor '{Q}.qzeros'"),
    "missing-scales": (drop(Q + ".scales"), dict(method="awq"), f"missing tensor '{Q}.scales'"),
    "missing-g_idx": (drop(Q + ".g_idx"), dict(desc_act=True), f"missing tensor '{Q}.g_idx'"),
    "missing-projection": (drop(Q + ".qweight"), {}, f"missing tensor '{Q}.qweight'"),
    "scales-shape": (reshape(Q + ".scales", lambda a: a[:1]), {},
                     f"tensor '{Q}.scales' has shape [1, 64]"),
    "qzeros-shape": (reshape(Q + ".qzeros", lambda a: a[:, :4]), dict(method="awq"),
                     f"tensor '{Q}.qzeros' has shape [2, 4]"),
    "qweight-vs-config": (lambda t, c: (t.update({Q + ".qweight": t[Q + ".qweight"][:4]}),
                                        t.pop(Q + ".g_idx")), dict(group_size=-1),
                          f"tensor '{Q}.qweight' holds a weight of 64 outputs x 32 inputs but "
                          "config.json implies 64 x 64"),
    "qweight-dtype": (reshape(Q + ".qweight", lambda a: a.astype(np.float32)), {},
                      f"tensor '{Q}.qweight' has dtype F32; gptq checkpoints store it as I32"),
    "g_idx-groups": (unequal_groups, dict(desc_act=True),
                     f"tensor '{Q}.g_idx': group 0 has 31 input features, not 32"),
    "g_idx-range": (reshape(Q + ".g_idx", lambda a: a + 5), {},
                    f"tensor '{Q}.g_idx': g_idx[0] = 5 is not a group in [0, 2)"),
    "bits": (set_config("bits", 2), {}, "quantization_config.bits: 2 bits are not supported"),
    "awq-version": (set_config("version", "gemv_fast"), dict(method="awq"),
                    "quantization_config.version: 'gemv_fast' is not supported"),
    "awq-no-zero-point": (set_config("zero_point", False), dict(method="awq"),
                          "quantization_config.zero_point: false is not supported"),
    "format": (set_config("checkpoint_format", "marlin"), {},
               "quantization_config.checkpoint_format: 'marlin' is not supported"),
    "method": (set_config("quant_method", "fp8"), {},
               "quantization_config.quant_method: 'fp8' is not supported"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_checkpoint_is_refused_naming_the_tensor_or_field(tmp_path, case):
    edit, kw, needle = BAD[case]
    p = broken(tmp_path, edit, **kw)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_a_v1_zero_of_256_is_refused(tmp_path):
    """AutoGPTQ v1 stores zero - 1; a stored 255 (8-bit) means 256, which qlc cannot hold."""
    def edit(t, c):
        t[Q + ".qzeros"] = t[Q + ".qzeros"] | np.int32(0xFF)
    p = broken(tmp_path, edit, bits=8)
    assert p.returncode == 2 and f"tensor '{Q}.qzeros': the zero point of group 0, output 0 is 256" in p.stderr


def test_a_prequantized_checkpoint_is_not_quantized_again(tmp_path):
    make_prequantized(tmp_path / "q", tmp_path / "f", tiny_config(), "awq")
    p = run("qlc", "compile", tmp_path / "q", "-o", tmp_path / "q.so", "--quant", "rtn-w4")
    assert p.returncode == 2 and "is already quantized" in p.stderr and "--quant none" in p.stderr


@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
def test_a_zero_point_of_zero_is_written_exactly(tmp_path, fmt):
    """A group of non-negative weights has zero point 0, which AutoGPTQ v1 (zero - 1) cannot
    store: qlc writes it as ((maxq - q) - maxq) * (-scale), the same weights; gptq_v2 stores
    the 0 itself."""
    cfg = tiny_config()
    t = random_float_model(cfg, 21)
    w = t[Q + ".weight"]
    w[:5, :32] = np.abs(w[:5, :32])  # outputs 0..4, group 0: zero point 0
    write_model(tmp_path / "m", cfg, t)
    run_ok("qlc", "compile", tmp_path / "m", "-o", tmp_path / "a.so", "--quant", "rtn-w4",
           "--group-size", "32", "--emit-checkpoint", tmp_path / "ck", "--checkpoint-format", fmt)
    tensors, _ = read_safetensors(tmp_path / "ck" / "model.safetensors")
    codes, zeros = unpack_gptq(tensors[Q + ".qweight"], tensors[Q + ".qzeros"], 4, v1=fmt == "gptq")
    scales = tensors[Q + ".scales"]
    if fmt == "gptq":
        assert (zeros[0, :5] == 15).all() and (scales[0, :5] < 0).all()
        assert (scales[0, 5:] > 0).all() and (scales[1:] > 0).all()
    else:
        assert (zeros[0, :5] == 0).all() and (scales > 0).all()
    dequantize_checkpoint(tmp_path / "ck", tmp_path / "f")
    run_ok("qlc", "compile", tmp_path / "f", "-o", tmp_path / "f.so")
    for a, b in zip(all_logits(tmp_path / "a.so"), all_logits(tmp_path / "f.so")):
        assert rel(b, a) < 1e-5
