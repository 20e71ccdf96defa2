#!/usr/bin/env python3
"""Writes the GGUF test fixtures; needs only numpy and gguf (PyPI), no torch.

    python3 scripts/make_gguf_fixture.py --out DIR

DIR/blocks.gguf       tensors of every ggml type qlc dequantizes (F32, F16, BF16, Q8_0,
                      Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K), filled with random raw block
                      bytes whose fp16 scale fields are random finite halves (raw F32 data
                      is any bit pattern; F16 data finite halves; BF16 any pattern).
DIR/blocks/NAME.npy   gguf.quants.dequantize of each tensor: the bit-exact reference.
DIR/stories260k.gguf  the demo model (models/stories260k, float32) as llama.cpp writes a
                      llama model: q/k rows permuted to llama.cpp's interleaved rotary
                      order, the SentencePiece vocabulary of tok512.bin as
                      tokenizer.ggml.* (model "llama", scores, token types, no merges).
DIR/stories260k-q8.gguf  the same with every 2-D tensor in Q8_0 (quantized by gguf-py).
DIR/llama-gqa-bf16.gguf, DIR/qwen2-bias-tied-f16.gguf  the test fixtures of those names
                      (BF16 weights, llama3 rope scaling written as llama.cpp does: a
                      rope_freqs tensor; F16 weights with q/k/v biases, qwen2, no permutation).
"""
import argparse
import json
import math
import struct
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFWriter, TokenType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parents[1]
STORIES = ROOT / "models" / "stories260k"

# Byte offsets of the fp16 scale fields inside one block, per type (gguf/quants.py).
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q6_K: [208],
}
# (name, type, shape as numpy [rows..., cols]); row lengths are awkward multiples of the block.
BLOCK_TENSORS = [
    ("f32", T.F32, (7, 13)),
    ("f16", T.F16, (5, 33)),
    ("bf16", T.BF16, (3, 2, 17)),
    ("q8_0", T.Q8_0, (9, 96)),
    ("q4_0", T.Q4_0, (5, 160)),
    ("q4_1", T.Q4_1, (7, 64)),
    ("q5_0", T.Q5_0, (3, 224)),
    ("q5_1", T.Q5_1, (6, 32)),
    ("q4_k", T.Q4_K, (3, 768)),
    ("q6_k", T.Q6_K, (5, 512)),
    ("q4_k_3d", T.Q4_K, (2, 3, 256)),
]


def finite_halves(rng, n):
    """Random float16 bit patterns with exponent < 31 (no inf/NaN), as uint16."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    exp = (bits >> 10) & 0x1F
    return np.where(exp == 0x1F, bits & np.uint16(0xBFFF), bits).astype(np.uint16)


def raw_blocks(rng, qtype, shape):
    block, size = GGML_QUANT_SIZES[qtype]
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    nblocks = rows * cols // block
    data = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint16).astype(np.uint8)
    for off in HALF_FIELDS[qtype]:
        data[:, off:off + 2] = finite_halves(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    return data.reshape(*shape[:-1], cols // block * size)


def write_blocks(out: Path, rng):
    w = GGUFWriter(str(out / "blocks.gguf"), arch="qlc-test")
    (out / "blocks").mkdir(exist_ok=True)
    for name, qtype, shape in BLOCK_TENSORS:
        if qtype == T.F32:
            raw = rng.integers(0, 1 << 32, size=shape, dtype=np.uint64).astype(np.uint32).view(np.float32)
            w.add_tensor(name, raw)
        elif qtype == T.F16:
            raw = finite_halves(rng, int(np.prod(shape))).view(np.float16).reshape(shape)
            w.add_tensor(name, raw)
        elif qtype == T.BF16:
            raw = rng.integers(0, 1 << 16, size=shape, dtype=np.uint32).astype(np.uint16).view(np.uint8)
            raw = raw.reshape(*shape[:-1], shape[-1] * 2)
            w.add_tensor(name, raw, raw_dtype=qtype)
        else:
            raw = raw_blocks(rng, qtype, shape)
            w.add_tensor(name, raw, raw_dtype=qtype)
        expected = dequantize(raw.view(np.uint8) if qtype != T.F32 else raw, qtype)
        expected = np.asarray(expected, dtype=np.float32).reshape(shape)
        np.save(out / "blocks" / f"{name}.npy", expected)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_safetensors(path: Path):
    """name -> (numpy array, gguf type); BF16 comes back as raw uint8 bytes."""
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        raw = b[8 + n + lo:8 + n + hi]
        if t["dtype"] == "BF16":
            a = np.frombuffer(raw, dtype=np.uint16).reshape(t["shape"])
        else:
            a = np.frombuffer(raw, dtype={"F32": np.float32, "F16": np.float16}[t["dtype"]])
            a = a.reshape(t["shape"])
        out[name] = (a, T[t["dtype"]])
    return out


def llama3_rope_freqs(cfg):
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors: llama3 rope scaling as
    per-frequency divisors."""
    rope = cfg["rope_parameters"]
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (rope["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, lo, hi = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / hi:
            out.append(1)
        elif wavelen > old / lo:
            out.append(factor)
        else:
            smooth = (old / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def llama_cpp_permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute: HF rotate-half rows -> interleaved."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def read_llama2c_vocab(path: Path):
    """tok512.bin -> (pieces, scores, types) in SentencePiece/llama.cpp form."""
    b = path.read_bytes()
    pos, pieces, scores = 4, [], []
    while pos < len(b):
        score, n = struct.unpack_from("<fi", b, pos)
        pos += 8
        pieces.append(b[pos:pos + n].decode("utf-8"))
        scores.append(score)
        pos += n
    types = []
    for i, p in enumerate(pieces):
        if i == 0:
            pieces[i], t = "<unk>", TokenType.UNKNOWN
        elif i in (1, 2):
            pieces[i], t = ["<s>", "</s>"][i - 1], TokenType.CONTROL
        elif p.startswith("<0x") and p.endswith(">") and len(p) == 6:
            t = TokenType.BYTE
        else:
            pieces[i], t = p.replace(" ", "\u2581"), TokenType.NORMAL
        types.append(int(t))
    return pieces, scores, types


HF_TO_GGUF_LAYER = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
                    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(hf_name):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf_name in top:
        return top[hf_name]
    _, _, i, rest = hf_name.split(".", 3)
    module, suffix = rest.rsplit(".", 1)
    return f"blk.{i}.{HF_TO_GGUF_LAYER[module]}.{suffix}"


def write_hf_model(folder: Path, path: Path, arch: str, quant=None, tokenizer=None):
    """A Hugging Face llama/qwen2 folder as llama.cpp's convert_hf_to_gguf.py writes it."""
    cfg = json.loads((folder / "config.json").read_text())
    rope = cfg.get("rope_parameters", {})
    w = GGUFWriter(str(path), arch=arch)
    w.add_name(folder.name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(rope["rope_theta"])
    if arch == "llama":
        w.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_vocab_size(cfg["vocab_size"])
    if tokenizer is not None:
        tokenizer(w)
    hf = read_safetensors(folder / "model.safetensors")
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    if rope.get("rope_type") == "llama3":
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        w.add_tensor("rope_freqs.weight", llama3_rope_freqs(cfg))
    for hf_name, (t, dtype) in hf.items():
        name = gguf_name(hf_name)
        if arch == "llama" and ".attn_q." in name:
            t = llama_cpp_permute(t, nh, nh)
        elif arch == "llama" and ".attn_k." in name:
            t = llama_cpp_permute(t, nh, nkv)
        t = np.ascontiguousarray(t)
        if quant is not None and t.ndim == 2 and t.shape[-1] % GGML_QUANT_SIZES[quant][0] == 0:
            w.add_tensor(name, quantize(t.astype(np.float32), quant), raw_dtype=quant)
        elif dtype == T.BF16:
            w.add_tensor(name, t.view(np.uint8).reshape(*t.shape[:-1], -1), raw_dtype=T.BF16)
        else:
            w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def stories_tokenizer(w):
    pieces, scores, types = read_llama2c_vocab(STORIES / "tok512.bin")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_blocks(args.out, np.random.default_rng(args.seed))
    write_hf_model(STORIES, args.out / "stories260k.gguf", "llama", tokenizer=stories_tokenizer)
    write_hf_model(STORIES, args.out / "stories260k-q8.gguf", "llama", quant=T.Q8_0,
                   tokenizer=stories_tokenizer)
    fixtures = ROOT / "test" / "fixtures"
    write_hf_model(fixtures / "llama-gqa-bf16", args.out / "llama-gqa-bf16.gguf", "llama")
    write_hf_model(fixtures / "qwen2-bias-tied-f16", args.out / "qwen2-bias-tied-f16.gguf", "qwen2")


if __name__ == "__main__":
    main()
