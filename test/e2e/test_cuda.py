"""The CUDA backend. Without a GPU (CI): CUDA artifacts compile (where nvcc exists), record
their target, and refuse to run with a clear message. With a GPU (the H100/H200 machine:
QLC_BIN_DIR=... pytest test_cuda.py): their logits against transformers' and against the
x86 artifacts of the same scheme, decode against prefill, fused against unfused, and an
sm_80 artifact (SASS for sm_80 plus PTX) on a newer GPU."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN_DIR, FIXTURES, run, run_ok
from badinput_helpers import assert_bad
from test_logits import dump, model_dir, ref, rel_err

NVCC = shutil.which("nvcc") or (
    "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)


def has_gpu():
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    p = subprocess.run([smi, "-L"], capture_output=True, text=True)
    return p.returncode == 0 and "GPU" in p.stdout


GPU = has_gpu()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
needs_gpu = pytest.mark.skipif(not GPU or NVCC is None, reason="no NVIDIA GPU here")

MODELS = ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16", "mistral-headdim-f32",
          "llama-linear-oldkeys-f32"]
TARGET = "sm_90"
# Models whose weights are f16/bf16: their prompts of more than 8 tokens take the
# tensor-core GEMM (codegen/cuda/kernels/qlc_cuda_mma.cuh), which rounds the activations
# to f16, so they are held to the DESIGN's f16/bf16 bound; f32 models keep the f32 one.
HALF_MODELS = {"llama-gqa-bf16", "qwen2-bias-tied-f16"}


def logits_tol(name, length=317):
    return 1e-2 if name in HALF_MODELS and length > 8 else 1e-4


X86 = "x86-64-v3"  # the x86 side of the comparisons: runs on the GPU machine's CPU too
# Artifacts compiled beforehand (`python3 test_cuda.py --prebuild DIR` on any machine with
# nvcc) are taken from $QLC_PREBUILT, so the GPU machine spends its time running them.
PREBUILT = os.environ.get("QLC_PREBUILT")


def artifact_name(model, target, quant, flags):
    return re.sub(r"[^A-Za-z0-9_.-]", "_",
                  "-".join([Path(model).name, target, quant, *flags])) + ".so"


def compile_artifact(model, target, quant, flags, out):
    run_ok("qlc", "compile", model, "-o", out, "--target", target, "--quant", quant, *flags,
           timeout=900)


@pytest.fixture(scope="module")
def cuda_artifact(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    cache = {}

    def get(model, target=TARGET, quant="none", *flags):
        key = (str(model), target, quant, flags)
        if key not in cache:
            name = artifact_name(model, target, quant, flags)
            if PREBUILT and (Path(PREBUILT) / name).exists():
                cache[key] = Path(PREBUILT) / name
            else:
                compile_artifact(model, target, quant, flags, root / name)
                cache[key] = root / name
        return cache[key]

    return get


# ------------------------------------------------------------------ everywhere with nvcc

@needs_nvcc
@pytest.mark.parametrize("target", ["sm_80", "sm_90"])
def test_cuda_artifact_compiles_and_records_its_target(target, cuda_artifact):
    art = cuda_artifact(FIXTURES / "llama-gqa-bf16", target)
    m = json.loads(run_ok("qlc", "inspect", art, "--json").stdout)
    assert m["target"]["kind"] == "cuda" and m["target"]["name"] == target
    assert m["target"]["features"] == [target]
    kernels = [k["kernel"] for k in m["kernels"]]
    assert any(k.startswith("attention<") for k in kernels)
    assert all("x86" not in k for k in kernels)


@needs_nvcc
def test_cuda_artifact_has_the_cuda_kv_plan(cuda_artifact):
    """qlc-plan-kv-cache chooses pages of 16 positions for CUDA; the attention kernels take
    the page size as a template argument."""
    m = json.loads(run_ok("qlc", "inspect", cuda_artifact(FIXTURES / "llama-gqa-bf16"),
                          "--json").stdout)
    kv = m["exec"]["kv_cache"]
    assert kv["page_size"] == 16 and kv["layout"] == "page,layer,kv,position,head"
    assert kv["page_bytes"] == 16 * kv["bytes_per_position"]
    att = [k["kernel"] for k in m["kernels"] if k["op"] == "qlc.attention"]
    assert att and all(k.endswith(", 16>") for k in att), att


@pytest.mark.skipif(GPU, reason="this machine has a GPU")
@needs_nvcc
def test_cuda_artifact_without_gpu_is_refused(cuda_artifact):
    art = cuda_artifact(FIXTURES / "llama-gqa-bf16", "sm_80")
    p = run("qlc-run", art, "--tokens", "1 2 3", "--dump-logits", "/dev/null")
    assert_bad(p, "qlc-run", str(art), "no usable NVIDIA GPU", "sm_80")


def test_missing_nvcc_is_a_usage_error(tmp_path):
    out = tmp_path / "m.so"
    p = run("qlc", "compile", FIXTURES / "llama-gqa-bf16", "-o", out, "--target", "sm_90",
            "--nvcc", tmp_path / "no-nvcc")
    assert_bad(p, "qlc", "nvcc", "sm_90")
    assert not out.exists()


def staging_bytes(art):
    manifest = json.loads(run_ok("qlc", "inspect", art, "--json").stdout)
    return manifest["exec"]["activations"]["staging_bytes"]


@needs_nvcc
def test_cuda_steps_below_65_tokens_plan_no_cublas_tiles(cuda_artifact):
    """Projections of 65 rows or more run cuBLAS on f16 tiles planned after the step's
    inputs and logits; an artifact whose steps are shorter never takes that path and plans
    only the inputs and logits (EmitCuda.cpp's ioBytes: 5 int arrays of max(64, 4 t / 256 *
    64) ints, t x vocab f32 logits), while one of 65 tokens plans the tiles too."""
    model = FIXTURES / "llama-gqa-bf16"
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    io = lambda t: -(-(5 * (-(-t * 4 // 256) * 64) * 4 + t * vocab * 4) // 256) * 256
    s64 = staging_bytes(cuda_artifact(model, TARGET, "rtn-w4", "--max-tokens", "64"))
    s65 = staging_bytes(cuda_artifact(model, TARGET, "rtn-w4", "--max-tokens", "65"))
    assert s64 == io(64)
    assert s65 > io(65) + 65 * 120 * 2  # the tiles: x in f16 (k >= 120) and a weight band


@pytest.mark.skipif(GPU, reason="this machine has a GPU")
def test_calib_device_cuda_without_gpu_is_a_usage_error(tmp_path):
    out = tmp_path / "g.so"
    p = run("qlc", "compile", model_dir("stories260k"), "-o", out, "--quant", "gptq-w4",
            "--calib-device", "cuda")
    assert_bad(p, "qlc", "--calib-device cuda", "no GPU to calibrate on")
    assert not out.exists()


# ---------------------------------------------------------------------- on the GPU


@needs_gpu
@pytest.mark.parametrize("quant,flags", [("gptq-w4", ()),
                                         ("gptq-w4", ("--act-order", "--group-size", "32")),
                                         ("awq-w4", ())])
def test_calibration_on_the_gpu_equals_the_cpu(quant, flags, tmp_path):
    """With a GPU, calibration runs the float model's projections and attention and GPTQ
    there (passes/CalibCuda.cu): the same algorithms in the same precision, so the
    artifacts' logits equal those of the CPU-calibrated one up to the sums' order (a code
    may land on the other side of a rounding boundary, rarely)."""
    tokens, _ = ref("stories260k", 317)
    logits = {}
    for dev in ("cuda", "cpu"):
        out = tmp_path / f"{dev}.so"
        p = run_ok("qlc", "compile", model_dir("stories260k"), "-o", out, "--target", X86,
                   "--quant", quant, *flags, "--calib-device", dev, "--calib-samples", "16",
                   "--calib-seqlen", "128", timeout=900)
        assert ("calibrating on NVIDIA" in p.stderr) == (dev == "cuda"), p.stderr
        logits[dev] = dump(out, tokens, tmp_path)
    err = rel_err(logits["cuda"], logits["cpu"])
    print(f"{quant} {' '.join(flags)}: GPU- vs CPU-calibrated rel err {err:.2e}")
    assert err <= 1e-3

@needs_gpu
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", [1, 17, 317])
def test_cuda_logits_match_transformers(name, length, cuda_artifact, tmp_path):
    """--quant none: f32 models within 1e-4; f16/bf16 models within 1e-2 once the prompt
    is longer than the GEMV's 8 rows (the tensor-core GEMM rounds activations to f16)."""
    tokens, expected = ref(name, length)
    got = dump(cuda_artifact(model_dir(name)), tokens, tmp_path)
    assert got.shape == expected.shape
    err = rel_err(got, expected)
    print(f"{name} {length} tokens: rel err {err:.2e} vs transformers")
    assert err <= logits_tol(name, length)


@needs_gpu
@pytest.mark.parametrize("name", MODELS)
def test_cuda_decode_token_by_token_equals_prefill(name, cuda_artifact, tmp_path):
    """Decoding runs the GEMV on f32 activations (1e-4 from transformers for every model);
    prefill of f16/bf16 models runs the tensor-core GEMM on f16-rounded activations, so the
    two agree within 1e-2 there, 1e-5 for f32 models."""
    tokens, expected = ref(name, 317)
    art = cuda_artifact(model_dir(name))
    stepped = dump(art, tokens, tmp_path, "--step-by-step")
    assert rel_err(stepped, dump(art, tokens, tmp_path)) <= (
        1e-2 if name in HALF_MODELS else 1e-5)
    assert rel_err(stepped, expected) <= 1e-4


PAGED_CASES = [("f32", 16), ("f32", 4), ("int8", 4), ("f16", 5)]


def paged_flags(kv, page):
    return ("--kv-cache", kv, "--kv-page-size", str(page), "--max-tokens", "16")


def runtime_tests_pass(art, gtest_filter, passed):
    """Runs test/unit/RuntimeTest.cpp's ArtifactTest cases matching gtest_filter on `art`;
    all must pass, `passed` of them ("2 tests", "1 test")."""
    env = dict(os.environ, QLC_TEST_ARTIFACT=str(art))
    p = subprocess.run([str(BIN_DIR.parent / "test" / "unit" / "qlc-runtime-tests"),
                        "--gtest_filter=" + gtest_filter], env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"[  PASSED  ] {passed}" in p.stdout


@needs_gpu
@pytest.mark.parametrize("kv,page", PAGED_CASES)
def test_cuda_paged_sequences_interleaved_equal_alone(kv, page, cuda_artifact):
    """The runtime's paged-cache tests (test/unit/RuntimeTest.cpp: sequences interleaved
    on shuffled pages against each alone, and a pool too small for a step) on a CUDA
    artifact: the block table on the device, updated before replayed decode graphs."""
    art = cuda_artifact(FIXTURES / "mistral-headdim-f32", TARGET, "none",
                        *paged_flags(kv, page))
    runtime_tests_pass(art, "ArtifactTest.Page*", "2 tests")


@needs_gpu
@pytest.mark.parametrize("kv", ["f16", "int8"])
def test_cuda_greedy_decode_equals_argmax_of_logits(kv, cuda_artifact):
    """qlc_decode_greedy takes the argmax on the GPU (argmax_rows_kernel) and copies back
    token ids only: the runtime test compares them with qlc_argmax of qlc_decode's logits
    over five batched steps of three sequences."""
    art = cuda_artifact(FIXTURES / "mistral-headdim-f32", TARGET, "none", *paged_flags(kv, 16))
    runtime_tests_pass(art, "ArtifactTest.Greedy*", "1 test")


@needs_gpu
def test_cuda_kv_pages_from_a_memory_fraction(cuda_artifact, tmp_path):
    """qlc-run --kv-memory-fraction sizes the pool from the GPU's free memory (after the
    weights and scratch); --kv-pages too few for the prompt is refused, naming the cache."""
    tokens, expected = ref("stories260k", 317)
    art = cuda_artifact(model_dir("stories260k"))
    got = dump(art, tokens, tmp_path, "--kv-memory-fraction", "0.05")
    assert rel_err(got, expected) <= logits_tol("stories260k")
    p = run("qlc-run", art, "--tokens", tokens, "--kv-pages", "2",
            "--dump-logits", tmp_path / "x.npy")
    assert p.returncode != 0 and "KV cache is full" in p.stderr, p.stderr


@needs_gpu
@pytest.mark.parametrize("name", ["stories260k", "llama-gqa-bf16"])
def test_sm80_artifact_runs_on_this_newer_gpu(name, cuda_artifact, tmp_path):
    tokens, expected = ref(name, 317)
    assert rel_err(dump(cuda_artifact(model_dir(name), "sm_80"), tokens, tmp_path),
                   expected) <= logits_tol(name)


@needs_gpu
@pytest.mark.parametrize("quant,tol", [("f16", 1e-2), ("bf16", 1e-2)])
@pytest.mark.parametrize("name", ["stories260k", "mistral-headdim-f32"])
def test_cuda_half_weights_match_transformers(name, quant, tol, cuda_artifact, tmp_path):
    tokens, expected = ref(name, 317)
    assert rel_err(dump(cuda_artifact(model_dir(name), TARGET, quant), tokens, tmp_path),
                   expected) <= tol


QUANT_CASES = [("rtn-w4", ()), ("rtn-w4-sym", ("--group-size", "32")), ("rtn-w8", ()),
               ("nf4", ()), ("nf4-dq", ()), ("none", ("--kv-cache", "f16")),
               ("rtn-w4", ("--kv-cache", "int8"))]


@pytest.fixture(scope="module")
def tiles_model(tmp_path_factory):
    """A random 2-layer Llama whose projections all take the int4 tile layout."""
    out = tmp_path_factory.mktemp("tiles") / "model"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "bench" /
                                        "make_random_llama.py"), "--out", str(out),
                    "--preset", "tiles", "--dtype", "f16", "--seed", "7"], check=True,
                   capture_output=True)
    return out


@needs_nvcc
def test_cuda_int4_projections_are_stored_in_tiles(tiles_model, cuda_artifact):
    """CUDA artifacts store int4 projections with K % 128 == 0 and N % 16 == 0 in the tile
    layout (ir/qlc_w4_tiles.h): codes in tiles, scales and zeros as 8-byte entries (the
    zeros tensors are not stored); x86 artifacts keep the rows."""
    def weights(art):
        return json.loads(run_ok("qlc", "inspect", art, "--json").stdout)["weights"]
    cuda = weights(cuda_artifact(tiles_model, TARGET, "rtn-w4"))
    codes = [w for w in cuda if w.get("layout") == "w4_tiles"]
    entries = [w for w in cuda if w.get("layout") == "w4_tile_entries"]
    assert len(codes) == len(entries) == 2 * 4  # q/k/v, o, gate/up, down per layer
    for w in entries:  # N / 2 row pairs x groups x 8 bytes
        assert w["bytes"] == w["shape"][0]
    qkv = next(w for w in entries if "layers.0.self_attn.{q,k,v}_proj" in w["name"])
    assert qkv["bytes"] == 512 // 2 * (256 // 128) * 8
    assert not any("zeros" in w["name"] for w in cuda)
    x86 = weights(cuda_artifact(tiles_model, X86, "rtn-w4"))
    assert not any("layout" in w for w in x86)


@needs_gpu
@pytest.mark.parametrize("quant", ["rtn-w4", "rtn-w4-sym"])
def test_cuda_int4_tiles_match_x86(quant, tiles_model, cuda_artifact, tmp_path):
    """Every path of qlinear_int_tiles against the x86 artifact of the same scheme: decode
    steps (the streaming GEMV), 5 tokens (the register-burst GEMV), 40 (token groups) and
    100 (cuBLAS on dequantized tiles)."""
    cuda = cuda_artifact(tiles_model, TARGET, quant)
    x86 = cuda_artifact(tiles_model, X86, quant)
    rng = np.random.default_rng(5)
    for length, extra in [(6, ("--step-by-step",)), (5, ()), (40, ()), (100, ())]:
        tokens = " ".join(str(t) for t in rng.integers(1, 1000, length))
        err = rel_err(dump(cuda, tokens, tmp_path, *extra), dump(x86, tokens, tmp_path, *extra))
        print(f"{quant} {length} tokens {' '.join(extra)}: rel err {err:.2e}")
        assert err <= 1e-2


@needs_gpu
@pytest.mark.parametrize("quant,flags", QUANT_CASES)
@pytest.mark.parametrize("name", ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16"])
def test_cuda_quantized_matches_x86_of_the_same_scheme(name, quant, flags, cuda_artifact,
                                                       tmp_path):
    """Same packed weights, same formats: the two backends differ by rounding only (the
    CUDA prefill GEMM rounds activations and dequantized weights to f16: the f16 bound)."""
    tokens, _ = ref(name, 317)
    cuda = dump(cuda_artifact(model_dir(name), TARGET, quant, *flags), tokens, tmp_path)
    x86 = dump(cuda_artifact(model_dir(name), X86, quant, *flags), tokens, tmp_path)
    err = rel_err(cuda, x86)
    print(f"{name} {quant} {' '.join(flags)}: rel err {err:.2e}")
    assert err <= 1e-2


@needs_gpu
@pytest.mark.parametrize("quant", ["none", "rtn-w4", "nf4"])
@pytest.mark.parametrize("name", MODELS)
def test_cuda_fused_equals_unfused(name, quant, cuda_artifact, tmp_path):
    tokens, _ = ref(name, 317)
    fused = dump(cuda_artifact(model_dir(name), TARGET, quant), tokens, tmp_path)
    unfused = dump(cuda_artifact(model_dir(name), TARGET, quant, "--no-fuse"), tokens, tmp_path)
    err = rel_err(fused, unfused)
    print(f"{name} {quant}: fused vs unfused rel err {err:.2e}")
    assert err <= 1e-5


@needs_gpu
@pytest.mark.parametrize("name,quant", [("stories260k", "rtn-w4"), ("stories260k", "nf4"),
                                        ("qwen2-bias-tied-f16", "none"),
                                        ("llama-gqa-bf16", "none")])
def test_cuda_prefill_through_cublas_equals_the_tensor_core_gemm(name, quant, cuda_artifact,
                                                                  tmp_path, monkeypatch):
    """From 65 rows a step's projections run cuBLAS on f16 tiles that qlc dequantizes
    (qlc_cuda_blas.cuh); QLC_CUBLAS=1 makes that path a requirement (a step fails without
    the library), QLC_CUBLAS=0 turns it off. Both round x and the weights to the same f16
    values, so the 317-token prompt's logits differ by the f32 sums' order only; with
    f16/bf16 weights (qwen2's biases too) cuBLAS's stay within the f16 bound of
    transformers (the quantized schemes are held to the x86 artifacts elsewhere)."""
    tokens, expected = ref(name, 317)
    art = cuda_artifact(model_dir(name), TARGET, quant)
    monkeypatch.setenv("QLC_CUBLAS", "1")
    blas = dump(art, tokens, tmp_path)
    monkeypatch.setenv("QLC_CUBLAS", "0")
    own = dump(art, tokens, tmp_path)
    err = rel_err(blas, own)
    print(f"{name} {quant}: cuBLAS vs tensor-core GEMM rel err {err:.2e}, "
          f"vs transformers {rel_err(blas, expected):.2e}")
    assert err <= 1e-3
    if quant == "none":
        assert rel_err(blas, expected) <= logits_tol(name)


def act_order_checkpoint(tmp_path):
    """A random AutoGPTQ act-order checkpoint (4 bits, groups of 32, a g_idx per input
    that is a permutation of groups) and its dequantized float model."""
    from ckpt_formats import make_prequantized, tiny_config
    make_prequantized(tmp_path / "q", tmp_path / "f", tiny_config(), "gptq", bits=4,
                      group_size=32, desc_act=True, seed=5)
    return tmp_path / "q", tmp_path / "f"


@needs_nvcc
def test_cuda_act_order_checkpoint_compiles_with_the_gather(tmp_path):
    q, _ = act_order_checkpoint(tmp_path)
    run_ok("qlc", "compile", q, "-o", tmp_path / "q.so", "--target", TARGET, timeout=900)
    kernels = json.loads(run_ok("qlc", "inspect", tmp_path / "q.so", "--json").stdout)["kernels"]
    assert any("qlinear_int_perm<" in k["kernel"] for k in kernels)


@needs_gpu
def test_cuda_act_order_checkpoint_matches_x86_and_the_dequantized_model(tmp_path):
    q, f = act_order_checkpoint(tmp_path)
    run_ok("qlc", "compile", q, "-o", tmp_path / "cuda.so", "--target", TARGET, timeout=900)
    run_ok("qlc", "compile", q, "-o", tmp_path / "x86.so", "--target", X86, timeout=900)
    run_ok("qlc", "compile", f, "-o", tmp_path / "f.so", "--target", X86, timeout=900)
    for n in (5, 39):  # the GEMV (<= 8 tokens) and the tensor-core GEMM
        tokens = " ".join(str(t) for t in range(1, n + 1))
        cuda = dump(tmp_path / "cuda.so", tokens, tmp_path)
        x86 = dump(tmp_path / "x86.so", tokens, tmp_path)
        flt = dump(tmp_path / "f.so", tokens, tmp_path)
        print(f"act-order, {n} tokens: cuda vs x86 {rel_err(cuda, x86):.2e}, "
              f"vs dequantized {rel_err(cuda, flt):.2e}")
        assert rel_err(cuda, x86) <= 1e-2 and rel_err(cuda, flt) <= 1e-2


@needs_gpu
@pytest.mark.parametrize("quant", ["none", "rtn-w4", "nf4"])
@pytest.mark.parametrize("name", MODELS)
def test_cuda_selected_tiles_equal_default_tiles(name, quant, cuda_artifact, tmp_path):
    """qlc-select-tiling's configs (the cost model's, on these small shapes mostly not the
    defaults: 2-warp GEMV blocks, 16-row mma tiles) against the kernels' defaults."""
    tokens, _ = ref(name, 317)
    selected = dump(cuda_artifact(model_dir(name), TARGET, quant), tokens, tmp_path)
    default = dump(cuda_artifact(model_dir(name), TARGET, quant, "--no-select-tiling"), tokens,
                   tmp_path)
    err = rel_err(selected, default)
    print(f"{name} {quant}: selected vs default tiles rel err {err:.2e}")
    assert err <= 1e-5


@needs_gpu
@pytest.mark.parametrize("quant", ["none", "rtn-w4"])
def test_cuda_autotune_times_on_this_gpu(quant, cuda_artifact, tmp_path):
    """--autotune builds the timing program with nvcc, times every candidate on this GPU,
    stores the winners, and the artifact built from them gives the default's logits."""
    name = "llama-gqa-bf16"
    cache = tmp_path / "tuning.json"
    out = tmp_path / "tuned.so"
    run_ok("qlc", "compile", model_dir(name), "-o", out, "--target", TARGET, "--quant", quant,
           "--autotune", "--tuning-cache", cache, timeout=1800)
    entries = json.loads(cache.read_text())["entries"]
    assert {e["range"] for e in entries} == {"decode", "small", "prefill"}
    assert all(e["target"] == TARGET and e["us"] > 0 for e in entries)
    print(f"{name} {quant}: " + "; ".join(
        f"{e['kernel']} {e['k']}x{e['n']} {e['range']} {e['config']} {e['us']:.1f} us"
        for e in entries))
    tokens, _ = ref(name, 317)
    default = dump(cuda_artifact(model_dir(name), TARGET, quant, "--no-select-tiling"), tokens,
                   tmp_path)
    assert rel_err(dump(out, tokens, tmp_path), default) <= 1e-5


def gpu_cases():
    """Every artifact the GPU tests use: (model, target, quant, flags)."""
    cases = [(model_dir(n), TARGET, "none", ()) for n in MODELS]
    cases += [(model_dir(n), "sm_80", "none", ()) for n in ["stories260k", "llama-gqa-bf16"]]
    cases += [(model_dir(n), TARGET, q, ()) for n in ["stories260k", "mistral-headdim-f32"]
              for q in ["f16", "bf16"]]
    for n in ["stories260k", "llama-gqa-bf16", "qwen2-bias-tied-f16"]:
        for q, f in QUANT_CASES:
            cases += [(model_dir(n), TARGET, q, f), (model_dir(n), X86, q, f)]
    for n in MODELS:
        for q in ["none", "rtn-w4", "nf4"]:
            cases += [(model_dir(n), TARGET, q, ()), (model_dir(n), TARGET, q, ("--no-fuse",)),
                      (model_dir(n), TARGET, q, ("--no-select-tiling",))]
    for kv, page in PAGED_CASES:
        cases += [(FIXTURES / "mistral-headdim-f32", TARGET, "none", paged_flags(kv, page))]
    return list(dict.fromkeys(cases))


if __name__ == "__main__":
    import argparse
    from concurrent.futures import ThreadPoolExecutor
    ap = argparse.ArgumentParser(description="compile the GPU tests' artifacts beforehand")
    ap.add_argument("--prebuild", required=True, metavar="DIR")
    ap.add_argument("-j", type=int, default=os.cpu_count())
    a = ap.parse_args()
    out = Path(a.prebuild)
    out.mkdir(parents=True, exist_ok=True)
    todo = [(c, out / artifact_name(*c)) for c in gpu_cases()]
    todo = [(c, d) for c, d in todo if not d.exists()]
    with ThreadPoolExecutor(a.j) as pool:
        for d in pool.map(lambda cd: (compile_artifact(*cd[0], cd[1]), cd[1])[1], todo):
            print("compiled", d.name, flush=True)
