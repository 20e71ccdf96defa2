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

SMALL = FIXTURES / "llama-linear-oldkeys-f32"       # 2 layers, f32, q/k/v/o biases, untied
NONSQUARE = FIXTURES / "mistral-headdim-f32"        # q_proj is [120, 80]
FOOTER = struct.Struct("<8sIIQQQQQQ")                # qlc/artifact_format.h, 64 bytes
assert FOOTER.size == 64
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


NORM = "model.norm.weight"        # [64] f32, the last 256 bytes of the data section
EMB = "model.embed_tokens.weight"  # [260, 64] f32


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


# ------------------------------------------------------------------------- qlc compile

def test_compile_unknown_target(tmp_path):
    compile_bad(tmp_path, SMALL, "--target", "pentium4", args=("--target", "pentium4"))


@pytest.mark.parametrize("target", ["sm_80", "sm_90"])
def test_compile_cuda_target_not_yet(tmp_path, target):
    line = compile_bad(tmp_path, SMALL, target, args=("--target", target))
    assert "not implemented" in line


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

def test_inspect_json(artifact_cache):
    art = artifact_cache(SMALL)
    m = json.loads(run_ok("qlc", "inspect", "--json", art).stdout)
    assert m["format"] == "qlc-artifact"
    assert m["model"]["vocab_size"] == 260 and m["model"]["num_layers"] == 2
    names = {w["name"] for w in m["weights"]}
    assert {EMB, NORM, "lm_head.weight", "model.layers.1.self_attn.q_proj.bias"} <= names
    assert len(m["weights"]) == 29
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
