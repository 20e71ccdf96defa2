"""Bad input must never crash a qlc tool.

DESIGN.md, "Command-line contracts": exit code 2 for bad input or usage, with one clear
line naming the file, the tensor, the key or the flag; 1 for internal errors; a crash on any
input is a bug. Every case here builds a broken input in tmp_path (from a small fixture) and
checks the exit code, that stderr is exactly one `qlc: error:` / `qlc-run: error:` line that
names the offending thing, and that no output (or half-written temporary) is left behind.
A few valid uses are checked alongside (sharded weights, --no-verify, inspect --json, --help).
"""
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok
from badinput_helpers import *  # noqa: F401,F403  (helpers and the small_artifact fixture)

# ------------------------------------------------------------- safetensors: the file

def test_no_safetensors(tmp_path):
    m = copy_model(tmp_path)
    (m / "model.safetensors").unlink()
    compile_bad(tmp_path, m, str(m), "model.safetensors")


def test_safetensors_empty(tmp_path):
    m = copy_model(tmp_path)
    (m / "model.safetensors").write_bytes(b"")
    compile_bad(tmp_path, m, str(m / "model.safetensors"))


@pytest.mark.parametrize("where", ["data-middle", "data-last-byte", "header-middle", "in-length"])
def test_safetensors_truncated(tmp_path, where):
    m = copy_model(tmp_path)
    st = m / "model.safetensors"
    raw = st.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    cut = {"data-middle": 8 + n + (len(raw) - 8 - n) // 2, "data-last-byte": len(raw) - 1,
           "header-middle": 8 + n // 2, "in-length": 5}[where]
    st.write_bytes(raw[:cut])
    line = compile_bad(tmp_path, m, str(st))
    if where.startswith("data"):
        assert "tensor '" in line   # names the first tensor that no longer fits


def test_safetensors_header_length_beyond_file(tmp_path):
    m = copy_model(tmp_path)
    st = m / "model.safetensors"
    raw = st.read_bytes()
    st.write_bytes(struct.pack("<Q", len(raw) * 2) + raw[8:])
    compile_bad(tmp_path, m, str(st), "header length")


def test_safetensors_header_length_huge(tmp_path):
    m = copy_model(tmp_path)
    st = m / "model.safetensors"
    raw = st.read_bytes()
    st.write_bytes(struct.pack("<Q", 2**64 - 1) + raw[8:])
    compile_bad(tmp_path, m, str(st), "header length")


def test_safetensors_header_not_json(tmp_path):
    m = copy_model(tmp_path)
    st = m / "model.safetensors"
    raw = bytearray(st.read_bytes())
    raw[8:8 + 12] = b"not json! {{"
    st.write_bytes(bytes(raw))
    compile_bad(tmp_path, m, str(st), "JSON")


def test_safetensors_header_not_object(tmp_path):
    m = copy_model(tmp_path)
    st = m / "model.safetensors"
    _, data = read_st(st)
    text = b"[1, 2, 3]"
    st.write_bytes(struct.pack("<Q", len(text)) + text + data)
    compile_bad(tmp_path, m, str(st), "object")


# ------------------------------------------------------------ safetensors: lying header

def _set(name, key, value):
    def fn(h):
        h[name][key] = value
    return fn




def test_offsets_end_beyond_file(tmp_path):
    m = copy_model(tmp_path)
    _, data = read_st(m / "model.safetensors")
    st = edit_header(m, _set(NORM, "data_offsets", [len(data) - 256, len(data) + 1024]))
    compile_bad(tmp_path, m, str(st), NORM, "data_offsets")


def test_offsets_begin_after_end(tmp_path):
    m = copy_model(tmp_path)
    def fn(h):
        b, e = h[NORM]["data_offsets"]
        h[NORM]["data_offsets"] = [e, b]
    st = edit_header(m, fn)
    compile_bad(tmp_path, m, str(st), NORM, "data_offsets")


def test_offsets_negative(tmp_path):
    m = copy_model(tmp_path)
    st = edit_header(m, _set(NORM, "data_offsets", [-256, 0]))
    compile_bad(tmp_path, m, str(st), NORM, "data_offsets")


def test_offsets_overlap(tmp_path):
    m = copy_model(tmp_path)
    def fn(h):
        # Two [64] f32 tensors sharing bytes: input_layernorm moved 128 bytes into model.norm.
        b, e = h[NORM]["data_offsets"]
        h["model.layers.0.input_layernorm.weight"]["data_offsets"] = [b - 128, e - 128]
    st = edit_header(m, fn)
    compile_bad(tmp_path, m, str(st), "overlap")


def test_dtype_f16_on_f32_bytes(tmp_path):
    m = copy_model(tmp_path)
    st = edit_header(m, _set(NORM, "dtype", "F16"))
    compile_bad(tmp_path, m, str(st), NORM, "F16")


@pytest.mark.parametrize("dtype", ["F8_E4M3", "Q4", "", "f32"])
def test_dtype_unknown(tmp_path, dtype):
    m = copy_model(tmp_path)
    st = edit_header(m, _set(EMB, "dtype", dtype))
    compile_bad(tmp_path, m, str(st), EMB, f"'{dtype}'")


@pytest.mark.parametrize("shape", [[-64], [64, -1], [2**63 + 5], [1.5], "64", [2**40, 2**40]])
def test_shape_bad(tmp_path, shape):
    m = copy_model(tmp_path)
    st = edit_header(m, _set(NORM, "shape", shape))
    compile_bad(tmp_path, m, str(st), NORM, "shape")


def test_entry_missing_fields(tmp_path):
    m = copy_model(tmp_path)
    st = edit_header(m, lambda h: h[NORM].pop("dtype"))
    compile_bad(tmp_path, m, str(st), NORM, "dtype")


def test_tensor_transposed(tmp_path):
    m = copy_model(tmp_path, NONSQUARE)
    name = "model.layers.0.self_attn.q_proj.weight"
    edit_header(m, _set(name, "shape", [80, 120]))
    compile_bad(tmp_path, m, name, "[80, 120]", "[120, 80]")


def test_tensor_wrong_vocab(tmp_path):
    m = copy_model(tmp_path)
    edit_config(m, lambda c: c.update(vocab_size=300))
    compile_bad(tmp_path, m, EMB, "config.json")


@pytest.mark.parametrize("name", [NORM, "lm_head.weight", "model.layers.1.self_attn.v_proj.bias"])
def test_tensor_missing(tmp_path, name):
    m = copy_model(tmp_path)
    edit_header(m, lambda h: h.pop(name))
    compile_bad(tmp_path, m, name, "missing")


def test_tensor_int_dtype(tmp_path):
    m = copy_model(tmp_path)
    edit_header(m, _set(NORM, "dtype", "I32"))  # same 4-byte size: only the importer sees it
    compile_bad(tmp_path, m, NORM, "I32")


# ------------------------------------------------------------------ sharded checkpoints

def split_in_two(src_model, dst):
    """Writes a real 2-shard copy of src_model (same tensors, same bytes) plus its index."""
    shutil.copytree(src_model, dst, ignore=shutil.ignore_patterns("ref", "model.safetensors"))
    header, data = read_st(src_model / "model.safetensors")
    names = [k for k in header if k != "__metadata__"]
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for fname, part in shards.items():
        h, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
        for k in reversed(part):  # another order than the source, to exercise the offsets
            b, e = header[k]["data_offsets"]
            h[k] = {"dtype": header[k]["dtype"], "shape": header[k]["shape"],
                    "data_offsets": [off, off + e - b]}
            chunks.append(data[b:e])
            off += e - b
            weight_map[k] = fname
        write_st(dst / fname, h, b"".join(chunks))
    index = {"metadata": {"total_size": len(data)}, "weight_map": weight_map}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return dst, shards


def test_sharded_same_logits(tmp_path, artifact_cache):
    m, _ = split_in_two(SMALL, tmp_path / "sharded")
    out = tmp_path / "sharded.so"
    run_ok("qlc", "compile", m, "-o", out, "--target", "native")
    sharded = dump_logits(tmp_path, out, name="sharded.npy")
    single = dump_logits(tmp_path, artifact_cache(SMALL), name="single.npy")
    assert sharded.shape == (len(TOKENS.split()), 260)
    assert sharded.dtype == np.float32
    assert np.array_equal(sharded, single)


def test_sharded_missing_shard(tmp_path):
    m, shards = split_in_two(SMALL, tmp_path / "sharded")
    (m / "model-00002-of-00002.safetensors").unlink()
    compile_bad(tmp_path, m, "model-00002-of-00002.safetensors")


def test_sharded_tensor_not_in_shard(tmp_path):
    m, shards = split_in_two(SMALL, tmp_path / "sharded")
    idx = m / "model.safetensors.index.json"
    j = json.loads(idx.read_text())
    moved = shards["model-00002-of-00002.safetensors"][0]
    j["weight_map"][moved] = "model-00001-of-00002.safetensors"
    j["weight_map"]["model.layers.7.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
    idx.write_text(json.dumps(j))
    compile_bad(tmp_path, m, str(idx), "is not in shard")


def test_sharded_ghost_tensor(tmp_path):
    m, _ = split_in_two(SMALL, tmp_path / "sharded")
    idx = m / "model.safetensors.index.json"
    j = json.loads(idx.read_text())
    j["weight_map"]["model.layers.7.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
    idx.write_text(json.dumps(j))
    compile_bad(tmp_path, m, str(idx), "model.layers.7.mlp.up_proj.weight")


def test_sharded_tensor_in_two_shards(tmp_path):
    m, shards = split_in_two(SMALL, tmp_path / "sharded")
    # Copy model.norm.weight's entry into the other shard as well.
    a, b = (m / f for f in shards)
    ha, da = read_st(a)
    hb, db = read_st(b)
    src, dst_h, dst_d, dst = (ha, hb, db, b) if NORM in ha else (hb, ha, da, a)
    data_src = da if src is ha else db
    s, e = src[NORM]["data_offsets"]
    dst_h[NORM] = dict(src[NORM], data_offsets=[len(dst_d), len(dst_d) + e - s])
    write_st(dst, dst_h, dst_d + data_src[s:e])
    compile_bad(tmp_path, m, NORM)


def test_sharded_index_not_json(tmp_path):
    m, _ = split_in_two(SMALL, tmp_path / "sharded")
    idx = m / "model.safetensors.index.json"
    idx.write_text("{ weight_map: ")
    compile_bad(tmp_path, m, str(idx), "JSON")


def test_sharded_shard_path_escape(tmp_path):
    m, _ = split_in_two(SMALL, tmp_path / "sharded")
    idx = m / "model.safetensors.index.json"
    j = json.loads(idx.read_text())
    j["weight_map"][NORM] = "../model.safetensors"
    idx.write_text(json.dumps(j))
    compile_bad(tmp_path, m, str(idx), "../model.safetensors")


# --------------------------------------------------------------------------- config.json

def test_config_missing(tmp_path):
    m = copy_model(tmp_path)
    (m / "config.json").unlink()
    compile_bad(tmp_path, m, str(m / "config.json"))


def test_config_unknown_architecture(tmp_path):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.update(architectures=["GPT2LMHeadModel"]))
    compile_bad(tmp_path, m, str(cfg), "GPT2LMHeadModel")


def test_config_no_architectures(tmp_path):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.pop("architectures"))
    compile_bad(tmp_path, m, str(cfg), "architectures")


@pytest.mark.parametrize("key", ["hidden_size", "num_hidden_layers", "vocab_size", "rms_norm_eps"])
def test_config_missing_key(tmp_path, key):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.pop(key))
    compile_bad(tmp_path, m, str(cfg), f"'{key}'")


@pytest.mark.parametrize("key,value", [("hidden_size", "64"), ("hidden_size", 0),
                                       ("num_attention_heads", -4), ("num_key_value_heads", 0),
                                       ("tie_word_embeddings", "no"), ("head_dim", 64.5)])
def test_config_bad_value(tmp_path, key, value):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.update({key: value}))
    compile_bad(tmp_path, m, str(cfg), f"'{key}'")


@pytest.mark.parametrize("update,key", [
    ({"num_attention_heads": 2**62, "num_key_value_heads": 4}, "num_attention_heads"),
    ({"head_dim": 2**62}, "head_dim"),
    ({"vocab_size": 2**64 - 1}, "vocab_size"),
    ({"num_hidden_layers": 2**62}, "num_hidden_layers"),
    ({"num_hidden_layers": 65537}, "num_hidden_layers")])
def test_config_too_large(tmp_path, update, key):
    """Used to overflow int64 (UB) computing num_heads * head_dim in the importer."""
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.update(update))
    compile_bad(tmp_path, m, str(cfg), f"'{key}'", "too large")
    assert_bad(run("qlc", "import", cfg, "--config-only"), "qlc", f"'{key}'")


def test_config_fuzz_config_only(tmp_path):
    """Random odd values in config.json: `qlc import --config-only` succeeds or exits 2."""
    import random
    rng = random.Random(1234)
    base = json.loads((SMALL / "config.json").read_text())
    vals = [None, -1, 0, 1, 3, 2**31, 2**62, 2**64 + 1, -2**63, 1.5, 1e308, "x", "", [], {}, [1],
            True, {"type": "llama3"}, {"type": "linear", "factor": 0},
            {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}]
    keys = list(base) + ["rope_parameters", "sliding_window", "use_sliding_window"]
    cfg = tmp_path / "config.json"
    for _ in range(60):
        c = dict(base)
        for _ in range(rng.choice([1, 2])):
            c[rng.choice(keys)] = rng.choice(vals)
        cfg.write_text(json.dumps(c))
        p = run("qlc", "import", cfg, "--config-only")
        if p.returncode != 0:
            assert_bad(p, "qlc", str(cfg))


def test_config_not_json(tmp_path):
    m = copy_model(tmp_path)
    cfg = m / "config.json"
    cfg.write_text('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64,')
    compile_bad(tmp_path, m, str(cfg), "JSON")


def test_config_not_object(tmp_path):
    m = copy_model(tmp_path)
    cfg = m / "config.json"
    cfg.write_text("[]")
    compile_bad(tmp_path, m, str(cfg), "object")


def test_config_heads_not_multiple_of_kv_heads(tmp_path):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.update(num_key_value_heads=3))
    compile_bad(tmp_path, m, str(cfg), "num_attention_heads", "num_key_value_heads")


def test_config_rope_yarn(tmp_path):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.update(rope_scaling={"type": "yarn", "factor": 4.0}))
    compile_bad(tmp_path, m, str(cfg), "'yarn'")


def test_config_rope_parameters_yarn(tmp_path):
    m = copy_model(tmp_path, DEMO_MODEL)
    cfg = edit_config(m, lambda c: c["rope_parameters"].update(rope_type="yarn"))
    compile_bad(tmp_path, m, str(cfg), "'yarn'")


def test_config_hidden_act_gelu(tmp_path):
    m = copy_model(tmp_path)
    cfg = edit_config(m, lambda c: c.update(hidden_act="gelu"))
    line = compile_bad(tmp_path, m, str(cfg), "hidden_act", "gelu")
    assert "'\"gelu\"'" not in line, "the value is quoted twice"
