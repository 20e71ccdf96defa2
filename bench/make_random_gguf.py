#!/usr/bin/env python3
"""Write a Llama-shaped GGUF with random Q4_0 weights, for timing llama.cpp beside qlc.

    python3 bench/make_random_gguf.py OUT.gguf [--layers 32] [--seed 0]

The shapes are Llama-2-7B's (the same as bench/bench_cuda.py's random f16 model): the
projections and the token embedding are Q4_0 blocks (an f16 scale and 32 random 4-bit codes,
18 bytes per 32 weights; the scale is drawn so that the weights have a standard deviation
near 0.02, like the f16 model's), the output projection is f16 (qlc keeps its lm_head in
f16 too) and the norms are 1. The vocabulary is a placeholder of 32,000 tokens (the three
control tokens, the 256 byte tokens of a SentencePiece vocabulary, then "t<i>"), enough for
llama.cpp to load the file and for llama-bench and llama-batched-bench, which feed token ids.
Timing does not depend on the weights' values; the logits of this model mean nothing.

Needs numpy and the `gguf` package (pip, or llama.cpp's gguf-py on PYTHONPATH).
"""

import argparse
import sys

import numpy as np

LLAMA2_7B = dict(hidden=4096, ffn=11008, heads=32, kv_heads=32, vocab=32000, ctx=4096,
                 eps=1e-5, rope_base=10000.0)


def q4_0_blocks(rng, rows, cols):
    """[rows, cols / 32 * 18] uint8: Q4_0 blocks with random codes and scales."""
    assert cols % 32 == 0, cols
    blocks = np.empty((rows, cols // 32), dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    # The codes' offset q - 8 has a standard deviation of about 4.6: d ~ 0.02 / 4.6.
    blocks["d"] = rng.uniform(0.003, 0.0057, size=(rows, cols // 32)).astype(np.float16)
    blocks["qs"] = rng.integers(0, 256, size=(rows, cols // 32, 16), dtype=np.uint8)
    return blocks.view(np.uint8).reshape(rows, cols // 32 * 18)


def vocabulary(n):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tokens += [f"t{i}" for i in range(n - len(tokens))]
    # gguf TokenType: 1 normal, 2 unknown, 3 control, 6 byte.
    types = [2, 3, 3] + [6] * 256 + [1] * (n - 259)
    scores = [0.0] * 259 + [-float(i) for i in range(n - 259)]
    return tokens, types, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.layers < 1:
        sys.exit("make_random_gguf.py: --layers must be at least 1")
    import gguf

    s = LLAMA2_7B
    rng = np.random.default_rng(a.seed)
    q4 = gguf.GGMLQuantizationType.Q4_0
    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(f"random-llama2-7b-shape-{a.layers}l-q4_0")
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["hidden"])
    w.add_block_count(a.layers)
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_dimension_count(s["hidden"] // s["heads"])
    w.add_rope_freq_base(s["rope_base"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_vocab_size(s["vocab"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    tokens, types, scores = vocabulary(s["vocab"])
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    h, f, kvd = s["hidden"], s["ffn"], s["kv_heads"] * (s["hidden"] // s["heads"])
    ones = np.ones(h, dtype=np.float32)
    w.add_tensor("token_embd.weight", q4_0_blocks(rng, s["vocab"], h), raw_dtype=q4)
    for i in range(a.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        for name, (rows, cols) in (("attn_q", (h, h)), ("attn_k", (kvd, h)), ("attn_v", (kvd, h)),
                                   ("attn_output", (h, h)), ("ffn_gate", (f, h)),
                                   ("ffn_up", (f, h)), ("ffn_down", (h, f))):
            w.add_tensor(f"blk.{i}.{name}.weight", q4_0_blocks(rng, rows, cols), raw_dtype=q4)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight",
                 rng.normal(0.0, 0.02, size=(s["vocab"], h)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
