"""GGUF import: bit-exact dequantization against gguf-py, the llama q/k permutation, logits
of a GGUF model against the float reference, and clear errors (never a crash) on broken files.

scripts/make_gguf_fixture.py (numpy + gguf, no torch) writes the fixtures into tmp_path at
test time: a file with a tensor of every block type qlc dequantizes plus gguf-py's
dequantization of each, and the demo model stories260k as llama.cpp would write it.
The broken files are built here, byte by byte, from a tiny valid llama GGUF.
"""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import DEMO_MODEL, FIXTURES, SOURCE_DIR, run, run_ok

try:
    import gguf  # noqa: F401
except ImportError:  # the fixture script needs it; scripts/setup.sh installs it
    pytest.fail("the gguf package is missing: pip install gguf (scripts/setup.sh does)",
                pytrace=False)

BLOCK_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q6_k",
               "q4_k_3d"]


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "make_gguf_fixture.py"),
                    "--out", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def raw_dump(fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    run_ok("qlc", "dump-weights", fixtures / "blocks.gguf", "--raw", "--out", out)
    return out


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("name", BLOCK_TYPES)
def test_dequantization_is_bit_exact(name, fixtures, raw_dump):
    expected = np.load(fixtures / "blocks" / f"{name}.npy")
    got = np.load(raw_dump / f"{name}.npy")
    assert got.shape == expected.shape
    assert np.array_equal(bits(got), bits(expected)), \
        f"{name}: {np.count_nonzero(bits(got) != bits(expected))} elements differ"


def test_dump_single_tensor(fixtures, tmp_path):
    run_ok("qlc", "dump-weights", fixtures / "blocks.gguf", "--raw", "--out", tmp_path,
           "--tensor", "q6_k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q6_k.npy"]
    p = run("qlc", "dump-weights", fixtures / "blocks.gguf", "--raw", "--out", tmp_path,
            "--tensor", "nope")
    assert_bad(p, "blocks.gguf", "nope")


# GGUF fixture -> the Hugging Face folder it was converted from.
CONVERTED = {"stories260k": DEMO_MODEL, "llama-gqa-bf16": FIXTURES / "llama-gqa-bf16",
             "qwen2-bias-tied-f16": FIXTURES / "qwen2-bias-tied-f16"}


@pytest.mark.parametrize("model", sorted(CONVERTED))
def test_imported_weights_equal_the_hf_checkpoint(model, fixtures, tmp_path):
    """llama's q/k rows are in llama.cpp's interleaved order in the GGUF; import undoes it
    exactly (qwen2's are not permuted). rope_freqs.weight is folded into the config."""
    run_ok("qlc", "dump-weights", fixtures / f"{model}.gguf", "--out", tmp_path / "g")
    run_ok("qlc", "dump-weights", CONVERTED[model], "--out", tmp_path / "hf")
    names = sorted(p.name for p in (tmp_path / "hf").iterdir())
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == names
    assert "model.layers.0.self_attn.q_proj.weight.npy" in names
    for n in names:
        a, b = np.load(tmp_path / "g" / n), np.load(tmp_path / "hf" / n)
        assert a.shape == b.shape and np.array_equal(bits(a), bits(b)), n


def rel_err(a, b):
    assert np.all(np.isfinite(a)), "non-finite logits"
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("model", sorted(CONVERTED))
@pytest.mark.parametrize("length", [1, 17, 317])
def test_gguf_model_logits_match_reference(model, length, fixtures, artifact_cache, tmp_path):
    """Against the transformers reference of the folder the GGUF was converted from."""
    ref = FIXTURES / model / "ref"
    tokens = (ref / f"tokens_{length}.txt").read_text().split()
    art = artifact_cache(fixtures / f"{model}.gguf")
    out = tmp_path / "logits.npy"
    run_ok("qlc-run", art, "--tokens", " ".join(tokens), "--dump-logits", out)
    assert rel_err(np.load(out), np.load(ref / f"logits_{length}.npy")) <= 1e-4


def test_llama3_rope_freqs_become_llama3_scaling(fixtures):
    ir = run_ok("qlc", "import", fixtures / "llama-gqa-bf16.gguf", "--config-only").stdout
    assert '"llama3"' in ir and "8.0" in ir


@pytest.mark.parametrize("quant", ["none", "f16", "bf16"])
def test_quantized_gguf_compiles_with_any_quant(quant, fixtures, artifact_cache, tmp_path):
    """Q8_0 weights dequantize to float32 at import; any qlc scheme applies after that."""
    ref = FIXTURES / "stories260k" / "ref"
    tokens = (ref / "tokens_17.txt").read_text().split()
    art = artifact_cache(fixtures / "stories260k-q8.gguf", quant=quant)
    out = tmp_path / "logits.npy"
    run_ok("qlc-run", art, "--tokens", " ".join(tokens), "--dump-logits", out)
    assert rel_err(np.load(out), np.load(ref / "logits_17.npy")) <= 2e-2


def test_import_prints_ir(fixtures):
    p = run_ok("qlc", "import", fixtures / "stories260k.gguf")
    assert "qlc.weight" in p.stdout and "model.layers.4.mlp.down_proj.weight" in p.stdout
    p = run_ok("qlc", "import", fixtures / "stories260k.gguf", "--config-only")
    assert "LlamaForCausalLM" in p.stdout


def test_tokenizer_json_of_a_sentencepiece_gguf(fixtures):
    tok = json.loads(run_ok("qlc", "gguf-tokenizer", fixtures / "stories260k.gguf").stdout)
    model = tok["model"]
    assert model["type"] == "BPE" and model["byte_fallback"] and model["unk_token"] == "<unk>"
    assert len(model["vocab"]) == 512 and model["merges"]  # merges derived from the scores
    assert [t["content"] for t in tok["added_tokens"]] == ["<unk>", "<s>", "</s>"]
    assert tok["post_processor"]["single"][0] == {"SpecialToken": {"id": "<s>", "type_id": 0}}
    tokenizers = pytest.importorskip("tokenizers")
    t = tokenizers.Tokenizer.from_str(json.dumps(tok))
    ids = t.encode("Once upon a time").ids
    assert ids[0] == 1 and t.decode(ids) == "Once upon a time"


# ----------------------------------------------------------------------------- broken files

def assert_bad(p, *needles):
    """Exit 2 (never a signal, never 1) and one `qlc: error:` line naming each needle."""
    assert p.returncode == 2, f"exit {p.returncode}\nstdout: {p.stdout[:500]}\nstderr: {p.stderr}"
    lines = p.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("qlc: error: "), p.stderr
    for n in needles:
        assert str(n) in lines[0], f"{n!r} not named in: {lines[0]}"
    return lines[0]


U32, F32, STR, ARR = 4, 6, 8, 9


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_u32(key, v):
    return kv(key, U32, struct.pack("<I", v))


def kv_str(key, s):
    return kv(key, STR, gstr(s))


class Tiny:
    """A tiny valid llama GGUF (1 layer, hidden 32, 4 heads, 2 KV heads, vocab 16, F32),
    with hooks to break any part of it."""

    def __init__(self):
        self.magic, self.version, self.alignment = b"GGUF", 3, 32
        self.kvs = {
            "general.architecture": kv_str("general.architecture", "llama"),
            "llama.embedding_length": kv_u32("llama.embedding_length", 32),
            "llama.block_count": kv_u32("llama.block_count", 1),
            "llama.feed_forward_length": kv_u32("llama.feed_forward_length", 64),
            "llama.attention.head_count": kv_u32("llama.attention.head_count", 4),
            "llama.attention.head_count_kv": kv_u32("llama.attention.head_count_kv", 2),
            "llama.attention.layer_norm_rms_epsilon":
                kv("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
            "llama.context_length": kv_u32("llama.context_length", 64),
            "tokenizer.ggml.model": kv_str("tokenizer.ggml.model", "gpt2"),
            "tokenizer.ggml.tokens": kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 16) +
                                        b"".join(gstr(chr(97 + i)) for i in range(16))),
            "tokenizer.ggml.merges": kv("tokenizer.ggml.merges", ARR, struct.pack("<IQ", STR, 0)),
            "tokenizer.ggml.bos_token_id": kv_u32("tokenizer.ggml.bos_token_id", 1),
        }
        self.rng = np.random.default_rng(0)
        shapes = {"token_embd.weight": (16, 32), "output_norm.weight": (32,),
                  "blk.0.attn_norm.weight": (32,), "blk.0.ffn_norm.weight": (32,),
                  "blk.0.attn_q.weight": (32, 32), "blk.0.attn_k.weight": (16, 32),
                  "blk.0.attn_v.weight": (16, 32), "blk.0.attn_output.weight": (32, 32),
                  "blk.0.ffn_gate.weight": (64, 32), "blk.0.ffn_up.weight": (64, 32),
                  "blk.0.ffn_down.weight": (32, 64)}
        # name -> [ne (ggml order), type, offset, bytes]
        self.tensors, self.data = {}, b""
        for name, shape in shapes.items():
            self.add(name, shape)
        self.n_tensors = self.n_kv = None
        self.extra = []  # (name, ne, type, offset) infos appended as they are, duplicates too

    def add(self, name, shape):
        """Appends an F32 tensor of random values."""
        raw = self.rng.standard_normal(shape).astype(np.float32).tobytes()
        self.data += b"\0" * (-len(self.data) % self.alignment)
        self.tensors[name] = [list(reversed(shape)), 0, len(self.data), raw]
        self.data += raw

    def tensor_info(self, name, ne, ttype, offset):
        return gstr(name) + struct.pack("<I", len(ne)) + b"".join(
            struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", ttype, offset)

    def build(self):
        head = self.magic + struct.pack("<I", self.version) + struct.pack(
            "<QQ", len(self.tensors) + len(self.extra) if self.n_tensors is None else self.n_tensors,
            len(self.kvs) if self.n_kv is None else self.n_kv)
        body = b"".join(self.kvs.values())
        body += b"".join(self.tensor_info(n, ne, t, off) for n, (ne, t, off, _) in self.tensors.items())
        body += b"".join(self.tensor_info(*info) for info in self.extra)
        out = head + body
        out += b"\0" * (-len(out) % self.alignment)
        return out + self.data

    def write(self, path):
        path.write_bytes(self.build())
        return path


def compile_bad(tmp_path, src, *needles):
    out = tmp_path / "out.so"
    p = run("qlc", "compile", src, "-o", out, "--target", "native")
    line = assert_bad(p, src.name, *needles)
    assert not out.exists()
    return line


def test_tiny_is_valid(tmp_path):
    src = Tiny().write(tmp_path / "tiny.gguf")
    run_ok("qlc", "compile", src, "-o", tmp_path / "t.so", "--target", "native")
    run_ok("qlc-run", tmp_path / "t.so", "--tokens", "1 2 3", "--dump-logits", tmp_path / "l.npy")


def truncated(part):
    """The file cut inside its header, its metadata, its tensor infos or its data."""
    def mutate(t):
        b = t.build()
        kv_end = 24 + sum(len(v) for v in t.kvs.values())
        cut = {"header": 12, "kv": kv_end - 3, "infos": kv_end + 30, "data": len(b) - 100}[part]
        return b[:cut]
    return mutate


def edit(fn):
    def mutate(t):
        fn(t)
        return t.build()
    return mutate


def set_tensor(name, index, value):
    def fn(t):
        t.tensors[name][index] = value
    return fn


def set_kv(key, payload):
    def fn(t):
        t.kvs[key] = payload
    return fn


BAD = {
    "wrong_magic": (edit(lambda t: setattr(t, "magic", b"GGML")), ["not a GGUF file"]),
    "version_1": (edit(lambda t: setattr(t, "version", 1)), ["version 1"]),
    "version_9": (edit(lambda t: setattr(t, "version", 9)), ["version 9"]),
    "big_endian": (edit(lambda t: setattr(t, "version", 3 << 24)), ["big-endian"]),
    "truncated_header": (truncated("header"), ["truncated"]),
    "truncated_in_kv": (truncated("kv"), ["tokenizer.ggml.bos_token_id", "truncated"]),
    "truncated_in_tensor_infos": (truncated("infos"), ["truncated"]),
    "truncated_in_data": (truncated("data"), ["blk.0.ffn_down.weight", "beyond"]),
    "offset_beyond_file": (edit(set_tensor("blk.0.attn_q.weight", 2, 1 << 40)),
                           ["blk.0.attn_q.weight", "beyond"]),
    "misaligned_offset": (edit(set_tensor("blk.0.attn_q.weight", 2, 4)),
                          ["blk.0.attn_q.weight", "alignment"]),
    "unknown_type": (edit(set_tensor("blk.0.attn_k.weight", 1, 77)),
                     ["blk.0.attn_k.weight", "unknown ggml type id 77"]),
    "unsupported_type": (edit(set_tensor("blk.0.attn_v.weight", 1, 13)),  # Q5_K: 256-blocks
                         ["blk.0.attn_v.weight", "block size"]),
    "absurd_dims": (edit(set_tensor("blk.0.ffn_up.weight", 0, [1 << 40, 1 << 40])),
                    ["blk.0.ffn_up.weight", "absurdly large"]),
    "too_many_dims": (edit(set_tensor("blk.0.ffn_up.weight", 0, [32, 2, 2, 2, 2, 4])),
                      ["blk.0.ffn_up.weight", "dimensions"]),
    "absurd_tensor_count": (edit(lambda t: setattr(t, "n_tensors", 1 << 62)), ["tensors"]),
    "absurd_kv_count": (edit(lambda t: setattr(t, "n_kv", 1 << 62)), ["metadata entries"]),
    "key_length_beyond_file": (edit(set_kv("llama.block_count", struct.pack("<Q", 1 << 50))),
                               ["string length"]),
    "string_value_beyond_file": (edit(set_kv("general.architecture", gstr("general.architecture") +
                                             struct.pack("<IQ", STR, 1 << 33))),
                                 ["general.architecture", "runs past"]),
    "array_count_beyond_file": (edit(set_kv("tokenizer.ggml.tokens", gstr("tokenizer.ggml.tokens") +
                                            struct.pack("<IIQ", ARR, STR, 1 << 60))),
                                ["tokenizer.ggml.tokens", "array"]),
    "unknown_value_type": (edit(set_kv("llama.block_count", gstr("llama.block_count") +
                                       struct.pack("<II", 42, 1))),
                           ["llama.block_count", "unknown value type 42"]),
    "bad_alignment": (edit(set_kv("general.alignment", kv_u32("general.alignment", 3))),
                      ["general.alignment"]),
    "overlapping_tensors": (edit(lambda t: t.tensors.__setitem__(
        "blk.0.attn_q.weight2", t.tensors["blk.0.attn_q.weight"])), ["overlaps"]),
    "duplicate_tensor": (edit(lambda t: t.extra.append(
        ("token_embd.weight", [32], 0, t.tensors["output_norm.weight"][2]))),
                         ["token_embd.weight", "twice"]),
    "missing_architecture": (edit(lambda t: t.kvs.pop("general.architecture")),
                             ["general.architecture"]),
    "unsupported_architecture": (edit(set_kv("general.architecture",
                                             kv_str("general.architecture", "mamba"))),
                                 ["'mamba'"]),
    "missing_required_key": (edit(lambda t: t.kvs.pop("llama.embedding_length")),
                             ["llama.embedding_length"]),
    "wrongly_typed_key": (edit(set_kv("llama.block_count", kv_str("llama.block_count", "1"))),
                          ["llama.block_count", "integer"]),
    "zero_heads": (edit(set_kv("llama.attention.head_count",
                               kv_u32("llama.attention.head_count", 0))),
                   ["llama.attention.head_count"]),
    "layer_beyond_block_count": (edit(lambda t: t.add("blk.7.attn_norm.weight", (32,))),
                                 ["blk.7.attn_norm.weight", "block_count"]),
    "moe_tensor": (edit(lambda t: t.tensors.__setitem__(
        "blk.0.ffn_gate_exps.weight", t.tensors.pop("blk.0.ffn_gate.weight"))),
                   ["blk.0.ffn_gate_exps.weight"]),
    "wrong_shape": (edit(set_tensor("blk.0.attn_k.weight", 0, [32, 8])),
                    ["model.layers.0.self_attn.k_proj.weight", "shape"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_gguf_is_a_clear_error(case, tmp_path):
    mutate, needles = BAD[case]
    src = tmp_path / f"{case}.gguf"
    src.write_bytes(mutate(Tiny()))
    compile_bad(tmp_path, src, *needles)


def test_duplicate_key(tmp_path):
    t = Tiny()
    t.kvs["dup"] = kv_u32("llama.block_count", 1)
    compile_bad(tmp_path, t.write(tmp_path / "dupkey.gguf"), "llama.block_count", "twice")


def test_known_type_qlc_cannot_dequantize(tmp_path):
    t = Tiny()
    _, _, off, raw = t.tensors["blk.0.ffn_down.weight"]
    # Q2_K (id 10): 84 bytes per 256 elements; 8 such rows fit where the F32 data was.
    t.tensors["blk.0.ffn_down.weight"] = [[256, 8], 10, off, raw]
    line = compile_bad(tmp_path, t.write(tmp_path / "q2k.gguf"), "blk.0.ffn_down.weight")
    assert "Q2_K" in line and "cannot dequantize" in line


def test_directory_named_gguf(tmp_path):
    d = tmp_path / "model.gguf"
    d.mkdir()
    compile_bad(tmp_path, d)


def test_empty_file(tmp_path):
    src = tmp_path / "empty.gguf"
    src.write_bytes(b"")
    compile_bad(tmp_path, src, "not a GGUF file")


def test_bad_token_id_spares_the_weights(tmp_path):
    """A broken tokenizer stops gguf-tokenizer, not the compile of the weights."""
    t = Tiny()
    t.kvs["tokenizer.ggml.bos_token_id"] = kv_u32("tokenizer.ggml.bos_token_id", 999)
    src = t.write(tmp_path / "badtok.gguf")
    assert_bad(run("qlc", "gguf-tokenizer", src), "badtok.gguf", "tokenizer.ggml.bos_token_id", "999")
    run_ok("qlc", "compile", src, "-o", tmp_path / "t.so", "--target", "native")


def test_every_truncation_and_corruption_is_handled(tmp_path):
    """Cut the file at many points and flip random bytes: exit 0 or 2, never a crash."""
    blob = Tiny().build()
    rng = np.random.default_rng(1)
    cases = [blob[:n] for n in range(0, len(blob), max(1, len(blob) // 150))]
    for _ in range(150):
        b = bytearray(blob)
        for i in rng.integers(0, len(blob) - len(Tiny().data) + 64, size=3):
            b[i] = int(rng.integers(0, 256))
        cases.append(bytes(b))
    src = tmp_path / "case.gguf"
    for i, b in enumerate(cases):
        src.write_bytes(b)
        p = run("qlc", "import", src)
        assert p.returncode in (0, 2), f"case {i}: exit {p.returncode}\n{p.stderr}"
        if p.returncode == 2:
            assert p.stderr.count("\n") == 1 and "case.gguf" in p.stderr, p.stderr
