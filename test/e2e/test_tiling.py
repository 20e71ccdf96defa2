"""qlc-select-tiling end to end (docs/passes.md): the kernel configs it selects (cost model,
a hand-written tuning cache, or --autotune on this CPU) give the logits of the kernels'
defaults (--no-select-tiling), fused and unfused; the cache's choice is visible in the IR
and in `qlc inspect`; bad caches and --autotune without a GPU are bad input (exit 2)."""
import json
import re
import shutil

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok

TOKENS = " ".join((FIXTURES / "llama-gqa-bf16" / "ref" / "tokens_17.txt").read_text().split())
MODELS = {"stories260k": DEMO_MODEL, "llama-gqa-bf16": FIXTURES / "llama-gqa-bf16"}


def rel_err(a, b):
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), "non-finite logits"
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def dump(artifact, path, toks=TOKENS):
    run_ok("qlc-run", artifact, "--tokens", toks, "--dump-logits", path)
    return np.load(path)


def kernels(artifact):
    manifest = json.loads(run_ok("qlc", "inspect", artifact, "--json").stdout)
    return [k["kernel"] for k in manifest["kernels"]]


def projections(model, quant, fuse):
    """(resolved target, [(kernel key, K, N)]) of the model's projections on this CPU."""
    args = ["--quant", quant, "--target", "native"] + (["--fuse"] if fuse else [])
    ir = run_ok("qlc", "import", model, *args).stdout
    target = re.search(r'qlc.tiling_target = "([^"]+)"', ir).group(1)
    out = set()
    for line in ir.splitlines():
        if "qlc.tiling =" not in line:
            continue
        q = re.search(r"bits = (\d+).*group_size = (\d+).*in_features = (\d+).*"
                      r"out_features = (\d+)", line)
        if "qlc.quantized_linear" in line:
            out.add((f"qlinear.int{q[1]}.g{q[2]}", int(q[3]), int(q[4])))
        else:  # qlc.linear / qlc.logits: the weight type tensor<NxKxdtype>
            n, k, dt = re.findall(r"tensor<(\d+)x(\d+)x(f32|f16|bf16)>", line)[-1]
            out.add((f"linear.{dt}", int(k), int(n)))
    return target, sorted(out)


PROJECTION_KERNELS = {"linear", "logits", "qlinear_int", "qlinear_int_perm", "qlinear_nf4"}
# Non-default AVX2 candidates of every range (passes/Tiling.cpp).
AVX2_PICKS = {"decode": ({"rows": 4}, {"rows": 2}), "small": ({"mr": 2, "nr": 4}, None),
              "prefill": ({"mr": 8, "nv": 1, "kc": 512}, {"mr": 8, "nv": 1, "kc": 512})}


def write_cache(path, target, shapes):
    entries = []
    for kernel, k, n in shapes:
        quant = kernel.startswith("qlinear")
        for rng, (dense_cfg, quant_cfg) in AVX2_PICKS.items():
            cfg = quant_cfg if quant else dense_cfg
            if cfg is not None:
                entries.append({"target": target, "kernel": kernel, "k": k, "n": n,
                                "range": rng, "config": cfg, "us": 1.0})
    path.write_text(json.dumps({"qlc_tuning_cache": 1, "entries": entries}))
    return path


@pytest.mark.parametrize("name,quant", [("stories260k", "none"), ("stories260k", "rtn-w4"),
                                        ("llama-gqa-bf16", "rtn-w8")])
def test_cached_configs_give_the_default_logits_fused_and_unfused(name, quant, tmp_path):
    model = MODELS[name]
    target, shapes = projections(model, quant, True)
    if target != "x86-64-v3":
        pytest.skip(f"the hand-written cache holds AVX2 candidates; this CPU is {target}")
    shapes = sorted(set(shapes) | set(projections(model, quant, False)[1]))
    cache = write_cache(tmp_path / "cache.json", target, shapes)
    # The cache's choice is in the IR qlc-select-tiling leaves ...
    ir = run_ok("qlc", "import", model, "--quant", quant, "--target", "native", "--fuse",
                "--tuning-cache", cache).stdout
    assert 'by = "cache"' in ir and 'by = "model"' not in ir, ir
    logits = {}
    for fuse in ("--fuse", "--no-fuse"):
        for tiling in ("--no-select-tiling", "cache", "model"):
            out = tmp_path / f"{fuse}{tiling}.so"
            flags = {"cache": ["--tuning-cache", cache], "model": [],
                     "--no-select-tiling": ["--no-select-tiling"]}[tiling]
            run_ok("qlc", "compile", model, "-o", out, "--target", "native", "--quant", quant,
                   fuse, *flags)
            ks = [k for k in kernels(out) if k.split("<")[0] in PROJECTION_KERNELS]
            if tiling == "--no-select-tiling":  # ... and in the kernels' template arguments
                assert not any("Tiling<" in k for k in ks), ks
            elif tiling == "cache":
                assert all("Tiling<" in k for k in ks), ks
                assert any("Tiling<4, 2, 4, 8, 1, 512>" in k for k in ks), ks
                if quant != "none":
                    assert any("Tiling<2, 0, 0, 8, 1, 512>" in k for k in ks), ks
            logits[(fuse, tiling)] = dump(out, tmp_path / f"{fuse}{tiling}.npy")
    base = logits[("--fuse", "--no-select-tiling")]
    for key, value in logits.items():
        # K slices of another length sum the same products in another order.
        assert rel_err(value, base) < 1e-5, key


def test_malformed_or_illegal_cache_is_bad_input(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"qlc_tuning_cache": 1, "entries": [')
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "m.so", "--tuning-cache", bad)
    assert p.returncode == 2, p.stderr
    assert f"tuning cache {bad}: is not JSON" in p.stderr, p.stderr
    target, shapes = projections(DEMO_MODEL, "none", True)
    kernel, k, n = shapes[0]
    bad.write_text(json.dumps({"qlc_tuning_cache": 1, "entries": [
        {"target": target, "kernel": kernel, "k": k, "n": n, "range": "prefill",
         "config": {"mr": 5, "nv": 2, "kc": 256}}]}))
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "m.so", "--tuning-cache", bad)
    assert p.returncode == 2, p.stderr
    assert f"tuning cache {bad}: config {{kc=256 mr=5 nv=2}} of {kernel}" in p.stderr, p.stderr
    assert "is not legal on" in p.stderr and p.stderr.count("\n") <= 3, p.stderr


def test_autotune_without_gpu_is_bad_input(tmp_path):
    if shutil.which("nvidia-smi") and "GPU" in run_ok("nvidia-smi", "-L").stdout:
        pytest.skip("this machine has a GPU")
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "m.so", "--target", "sm_90",
            "--autotune", "--tuning-cache", tmp_path / "c.json")
    assert p.returncode == 2, p.stderr
    assert "--autotune --target sm_90: no NVIDIA GPU on this machine" in p.stderr, p.stderr
    assert not (tmp_path / "c.json").exists()


def test_autotune_on_this_cpu_fills_the_cache(tmp_path):
    cache = tmp_path / "sub" / "tuning.json"
    out = tmp_path / "tuned.so"
    run_ok("qlc", "compile", DEMO_MODEL, "-o", out, "--target", "native", "--quant", "rtn-w4",
           "--autotune", "--tuning-cache", cache)
    entries = json.loads(cache.read_text())["entries"]
    target, shapes = projections(DEMO_MODEL, "rtn-w4", True)
    got = {(e["kernel"], e["k"], e["n"]) for e in entries if e["target"] == target}
    assert got == set(shapes)
    assert all(e["us"] > 0 for e in entries)
    ranges = {(e["kernel"], e["range"]) for e in entries}
    assert ("linear.f16", "small") in ranges and ("qlinear.int4.g64", "prefill") in ranges
    # A second run keeps the entries it does not replace (another target's here).
    data = json.loads(cache.read_text())
    data["entries"].append(dict(entries[0], target="x86-64-v4"))
    cache.write_text(json.dumps(data))
    run_ok("qlc", "compile", DEMO_MODEL, "-o", out, "--target", "native", "--quant", "rtn-w4",
           "--autotune", "--tuning-cache", cache)
    again = json.loads(cache.read_text())["entries"]
    assert len(again) == len(entries) + 1
    default = tmp_path / "default.so"
    run_ok("qlc", "compile", DEMO_MODEL, "-o", default, "--target", "native", "--quant",
           "rtn-w4", "--no-select-tiling")
    assert rel_err(dump(out, tmp_path / "t.npy"), dump(default, tmp_path / "d.npy")) < 1e-5
