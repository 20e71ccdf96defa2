"""NF4 (qlc-quantize-nf4, `--quant nf4` and `nf4-dq`) against bitsandbytes, bit for bit.

`qlc dump-weights MODEL --quant nf4[-dq]` writes the packed tensors the compiled IR reads
(and the IR, whose quantized_linear ops carry the double-quantization offset). For every
projection of the fixture models (f32, f16 and bf16 weights of awkward shapes, partial
last blocks, more than 256 blocks), of a generated model with zero blocks and outliers,
and of the real stories260k, the packed codes, absmax, nested absmax codes, their scales
and offset must equal bitsandbytes.functional.quantize_4bit(..., quant_type="nf4",
blocksize=64, compress_statistics=dq), and the weights they dequantize to must equal
bitsandbytes.functional.dequantize_4bit bit for bit.

bitsandbytes needs PyTorch (several GB with its CUDA wheels), which CI does not install:
without it the same comparison runs against SHA-256 digests of bitsandbytes' outputs
recorded in test/fixtures/nf4/bnb_digests.json. To record them again, with
bitsandbytes installed: QLC_NF4_RECORD=1 pytest test/e2e/test_nf4.py -k bitsandbytes.
bitsandbytes' double quantization subtracts torch's float32 mean of the absmax, which
for more than 32768 blocks depends on PyTorch's thread count; qlc reproduces the
single-threaded AVX2 sum (every model here has far fewer blocks).

The compiled nf4 artifacts must give the logits of a float model whose projections are
the dequantized weights (the kernels dequantize exactly as bitsandbytes), stay close to
the float reference and be smaller than the float artifact.
"""
import hashlib
import json
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, SOURCE_DIR, run, run_ok

try:
    import torch
    import bitsandbytes.functional as bnbf
    BNB_VERSION = __import__("bitsandbytes").__version__
except ImportError:  # CI: compare with the recorded digests instead
    bnbf = None
    BNB_VERSION = None

DIGESTS = FIXTURES / "nf4" / "bnb_digests.json"
RECORD = os.environ.get("QLC_NF4_RECORD") == "1"
MODELS = ["stories260k", "llama-gqa-bf16", "mistral-headdim-f32", "qwen2-bias-tied-f16",
          "generated-f32"]
SCHEMES = ["nf4", "nf4-dq"]


# --- the models -------------------------------------------------------------------------

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path):
    """name -> (safetensors dtype, array); BF16 as its uint16 bits (NumPy has no bf16)."""
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=SAFETENSORS_DTYPES[t["dtype"]])
        out[name] = (t["dtype"], arr.reshape(t["shape"]))
    return out


def widen(dtype, a):
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def generated_weights(shape, seed):
    """Deterministic weights from an integer hash (no RNG whose stream could change):
    heavy-tailed values, one all-zero block, one outlier, subnormal-sized values."""
    n = int(np.prod(shape))
    h = (np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B9))
    h = (h * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    h ^= h >> np.uint64(31)
    h = (h * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    h ^= h >> np.uint64(29)
    u = (h >> np.uint64(40)).astype(np.float64) / float(1 << 24) * 2.0 - 1.0  # [-1, 1)
    w = (0.05 * u ** 3).astype(np.float32)
    w[64:128] = 0.0                       # a whole block of zeros
    w[200] = 3.0                          # an outlier dominating its block
    w[256:320] *= np.float32(1e-30)       # a block of tiny values
    return w.reshape(shape)


def make_generated_model(out):
    """A one-layer Llama with hidden 100 and intermediate 37: projections 100x100,
    20x100, 37x100 and 100x37, none a multiple of the block size."""
    from safetensors.numpy import save_file
    hidden, inter, heads, vocab = 100, 37, 5, 64
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
           "intermediate_size": inter, "num_attention_heads": heads, "num_key_value_heads": 1,
           "head_dim": 20, "num_hidden_layers": 1, "vocab_size": vocab, "rms_norm_eps": 1e-5,
           "max_position_embeddings": 128, "rope_theta": 10000.0, "tie_word_embeddings": False,
           "bos_token_id": 1, "eos_token_id": 2, "dtype": "float32"}
    p = "model.layers.0."
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "lm_head.weight": (vocab, hidden),
              p + "self_attn.q_proj.weight": (hidden, hidden),
              p + "self_attn.k_proj.weight": (20, hidden), p + "self_attn.v_proj.weight": (20, hidden),
              p + "self_attn.o_proj.weight": (hidden, hidden),
              p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
              p + "mlp.down_proj.weight": (hidden, inter)}
    tensors = {name: generated_weights(s, i) for i, (name, s) in enumerate(sorted(shapes.items()))}
    for norm in (p + "input_layernorm.weight", p + "post_attention_layernorm.weight",
                 "model.norm.weight"):
        tensors[norm] = np.ones(hidden, np.float32)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg))
    save_file(tensors, str(out / "model.safetensors"))
    return out


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    dirs = {name: FIXTURES / name for name in MODELS if name not in ("stories260k", "generated-f32")}
    dirs["stories260k"] = DEMO_MODEL
    dirs["generated-f32"] = make_generated_model(tmp_path_factory.mktemp("nf4") / "generated-f32")
    return dirs


@pytest.fixture(scope="session")
def dumps(model_dirs, tmp_path_factory):
    """(model, scheme) -> the folder `qlc dump-weights --quant scheme` wrote."""
    cache = {}

    def get(model, scheme):
        if (model, scheme) not in cache:
            out = tmp_path_factory.mktemp(f"{model}-{scheme}")
            run_ok("qlc", "dump-weights", model_dirs[model], "--quant", scheme, "--out", out)
            cache[(model, scheme)] = out
        return cache[(model, scheme)]

    return get


# --- qlc's side -------------------------------------------------------------------------

def kernel_tables():
    """The NF4 values and the dynamic 8-bit map as the kernels hold them."""
    text = (SOURCE_DIR / "ir" / "qlc_nf4_tables.h").read_text()

    def table(name):
        body = re.search(name + r"\[\d+\] = \{(.*?)\};", text, re.S).group(1)
        vals = [float.fromhex(v.strip()[:-1]) if "x" in v else float(v.strip()[:-1])
                for v in body.split(",") if v.strip()]
        return np.array(vals, np.float32)

    return table("nf4_values"), table("nf4_dynamic_map")


def quantized_ops(dump_dir):
    """source weight -> (block size, absmax offset) of each nf4 quantized_linear."""
    ops = {}
    for line in (dump_dir / "module.mlir").read_text().splitlines():
        if "qlc.quantized_linear" not in line or 'format = "nf4"' not in line:
            continue
        source = re.search(r'source = "([^"]+)"', line).group(1)
        block = int(re.search(r"group_size = (\d+)", line).group(1))
        off = re.search(r"absmax_offset = ([-+0-9.eE]+) : f64", line)
        ops[source] = (block, np.float32(float(off.group(1))) if off else np.float32(0.0))
    return ops


def qlc_tensors(dump_dir, source, scheme, block, offset):
    prefix = f"{source}.nf4b{block}" + (".dq" if scheme == "nf4-dq" else "")
    t = {"qweight": np.load(dump_dir / f"{prefix}.qweight.npy"),
         "absmax": np.load(dump_dir / f"{prefix}.absmax.npy")}
    if scheme == "nf4-dq":
        t["absmax2"] = np.load(dump_dir / f"{prefix}.absmax2.npy")
        t["offset"] = np.array([offset], np.float32)
    return t


def dequantize(t, numel, block):
    """qlc's dequantization (the kernels' arithmetic), in float32."""
    values, dyn = kernel_tables()
    q = t["qweight"]
    codes = np.stack([q >> 4, q & 0xF], axis=1).reshape(-1)[:numel]
    if "absmax2" in t:
        scaled = dyn[t["absmax"]] * np.repeat(t["absmax2"], 256)[:len(t["absmax"])]
        absmax = (scaled + t["offset"][0]).astype(np.float32)
    else:
        absmax = t["absmax"]
    return (values[codes] * np.repeat(absmax, block)[:numel]).astype(np.float32)


# --- bitsandbytes' side -----------------------------------------------------------------

def bnb_quantize(dtype, a, scheme):
    """bitsandbytes' tensors for weight `a` (in its stored dtype), and its dequantization."""
    t = torch.from_numpy(a.copy())
    if dtype == "BF16":
        t = t.view(torch.int16).view(torch.bfloat16)
    packed, st = bnbf.quantize_4bit(t, blocksize=64, compress_statistics=scheme == "nf4-dq",
                                    quant_type="nf4")
    out = {"qweight": packed.numpy().reshape(-1)}
    if scheme == "nf4-dq":
        assert np.array_equal(st.state2.code.numpy(), kernel_tables()[1])
        out["absmax"] = st.absmax.numpy()
        out["absmax2"] = st.state2.absmax.numpy()
        out["offset"] = np.array([st.offset.item()], np.float32)
    else:
        out["absmax"] = st.absmax.numpy()
    st.dtype = torch.float32  # dequantize to float32: the exact products, before any cast
    deq = bnbf.dequantize_4bit(packed, st).numpy().reshape(-1)
    return out, deq


def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:32]


def load_digests():
    return json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("model", MODELS)
def test_packed_tensors_equal_bitsandbytes(model, scheme, model_dirs, dumps):
    d = dumps(model, scheme)
    ops = quantized_ops(d)
    weights = read_safetensors(model_dirs[model] / "model.safetensors")
    assert ops, "no nf4 quantized_linear in the compiled IR"
    assert set(ops) == {n for n in weights if re.search(r"_proj\.weight$", n)}
    recorded = load_digests()
    entry = {}
    for source, (block, offset) in sorted(ops.items()):
        assert block == 64
        dtype, a = weights[source]
        ours = qlc_tensors(d, source, scheme, block, offset)
        deq = dequantize(ours, a.size, block)
        if bnbf is not None:
            theirs, their_deq = bnb_quantize(dtype, a, scheme)
            for k, v in theirs.items():
                assert ours[k].dtype == v.dtype and ours[k].shape == v.shape, (source, k)
                assert np.array_equal(bits(ours[k]) if v.dtype == np.float32 else ours[k],
                                      bits(v) if v.dtype == np.float32 else v), \
                    f"{source} {k}: {np.count_nonzero(ours[k] != v)} of {v.size} differ"
            assert np.array_equal(bits(deq), bits(their_deq)), \
                f"{source}: {np.count_nonzero(bits(deq) != bits(their_deq))} dequantized differ"
            entry[source] = {"input": digest(a), "dequantized": digest(their_deq),
                             **{k: digest(v) for k, v in theirs.items()}}
        else:
            want = recorded.get(model, {}).get(scheme, {}).get(source)
            if want is None:
                pytest.skip(f"bitsandbytes is not installed and {DIGESTS.name} has no digest "
                            f"of {model} {scheme} {source}")
            if want["input"] != digest(a):
                pytest.skip(f"{source} is not the weight {DIGESTS.name} was recorded from")
            for k, v in ours.items():
                assert digest(v) == want[k], f"{source} {k} differs from bitsandbytes"
            assert digest(deq) == want["dequantized"], f"{source}: dequantized weights differ"
    if bnbf is not None and RECORD:
        recorded.setdefault(model, {})[scheme] = entry
        recorded["bitsandbytes"] = BNB_VERSION
        DIGESTS.parent.mkdir(parents=True, exist_ok=True)
        DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")


# --- compiled artifacts -----------------------------------------------------------------

def rel_err(a, b):
    assert np.all(np.isfinite(a)), "non-finite logits"
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def logits(artifact, tokens, out):
    run_ok("qlc-run", artifact, "--tokens", tokens, "--dump-logits", out)
    return np.load(out)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_compiled_model_runs_the_dequantized_weights(scheme, dumps, artifact_cache, tmp_path):
    from safetensors.numpy import save_file
    ref_dir = FIXTURES / "stories260k" / "ref"
    tokens = (ref_dir / "tokens_317.txt").read_text().strip()
    expected = np.load(ref_dir / "logits_317.npy")
    quant_art = artifact_cache(DEMO_MODEL, quant=scheme)
    got = logits(quant_art, tokens, tmp_path / "q.npy")
    # The float model whose projections are the dequantized NF4 weights.
    d = dumps("stories260k", scheme)
    weights = {n: widen(dt, a) for n, (dt, a) in
               read_safetensors(DEMO_MODEL / "model.safetensors").items()}
    for source, (block, offset) in quantized_ops(d).items():
        shape = weights[source].shape
        weights[source] = dequantize(qlc_tensors(d, source, scheme, block, offset),
                                     int(np.prod(shape)), block).reshape(shape)
    # The matrices left float (the tied embedding / logits table) are stored f16 by
    # --embedding-dtype's default: the float model gets them f16 too.
    for name, a in weights.items():
        if a.ndim == 2 and name not in quantized_ops(d):
            weights[name] = a.astype(np.float16)
    deq_dir = tmp_path / "dequantized"
    shutil.copytree(DEMO_MODEL, deq_dir, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file(weights, str(deq_dir / "model.safetensors"))
    float_art = tmp_path / "dequantized.so"
    run_ok("qlc", "compile", deq_dir, "-o", float_art)
    same = logits(float_art, tokens, tmp_path / "f.npy")
    assert rel_err(got, same) <= 1e-5
    # 4 bits on a 260K-parameter model: a few percent off the float logits.
    assert rel_err(got, expected) <= 0.1
    assert quant_art.stat().st_size < artifact_cache(DEMO_MODEL).stat().st_size


def test_unsupported_block_size_is_bad_input(tmp_path):
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "x.so", "--quant", "nf4",
            "--group-size", "100")
    assert p.returncode == 2
    assert "--group-size 100" in p.stderr and "4096" in p.stderr
