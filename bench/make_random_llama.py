#!/usr/bin/env python3
"""Writes a Hugging Face style Llama folder with random weights, for benchmarks.

The default shape is a ~125M-parameter Llama (hidden 768, 12 layers, 12 heads, 4 KV heads,
head_dim 64, intermediate 2048, vocab 32000, untied lm_head). Linear and embedding weights
are normal with std 0.02, norm weights are 1.0; the seed is fixed, so the same options
always give the same file. Only numpy and the `safetensors` package are needed.

    python3 bench/make_random_llama.py --out ~/.cache/qlc-bench/llama-100m-bf16 --dtype bf16
    python3 bench/make_random_llama.py --out /tmp/llama7b-2l --preset llama2-7b --layers 2 --dtype f16
"""

import argparse
import json
import os
import sys

import numpy as np
import safetensors
import safetensors.numpy

SHAPE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_key_value_heads=4,
    head_dim=64,
    intermediate_size=2048,
    vocab_size=32000,
    max_position_embeddings=2048,
)

# Llama-2-7B's shape (32 layers), for timing runs with random weights; --layers shortens it.
PRESETS = {
    "small": SHAPE,
    # Every projection takes the CUDA artifacts' int4 tile layout (K % 128, N % 16), in
    # seconds: test/e2e/test_cuda.py.
    "tiles": dict(
        hidden_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        intermediate_size=384,
        vocab_size=1000,
        max_position_embeddings=1024,
    ),
    "llama2-7b": dict(
        hidden_size=4096,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        head_dim=128,
        intermediate_size=11008,
        vocab_size=32000,
        max_position_embeddings=4096,
    ),
}

HF_DTYPE = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def f32_to_bf16_bits(a):
    """Rounds float32 to bfloat16 (nearest, ties to even) and returns the uint16 bits."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return r.astype(np.uint16)


def tensor_shapes(s):
    d, hd = s["hidden_size"], s["head_dim"]
    q, kv, inter, vocab = s["num_attention_heads"] * hd, s["num_key_value_heads"] * hd, \
        s["intermediate_size"], s["vocab_size"]
    out = [("model.embed_tokens.weight", (vocab, d), "normal")]
    for i in range(s["num_hidden_layers"]):
        p = f"model.layers.{i}"
        out += [
            (f"{p}.input_layernorm.weight", (d,), "ones"),
            (f"{p}.self_attn.q_proj.weight", (q, d), "normal"),
            (f"{p}.self_attn.k_proj.weight", (kv, d), "normal"),
            (f"{p}.self_attn.v_proj.weight", (kv, d), "normal"),
            (f"{p}.self_attn.o_proj.weight", (d, q), "normal"),
            (f"{p}.post_attention_layernorm.weight", (d,), "ones"),
            (f"{p}.mlp.gate_proj.weight", (inter, d), "normal"),
            (f"{p}.mlp.up_proj.weight", (inter, d), "normal"),
            (f"{p}.mlp.down_proj.weight", (d, inter), "normal"),
        ]
    out += [("model.norm.weight", (d,), "ones"), ("lm_head.weight", (vocab, d), "normal")]
    return out


def save(tensors, path, dtype):
    """Saves name -> float32 array as `dtype`; bf16 goes through safetensors' raw API
    because numpy has no bfloat16 type."""
    if dtype == "f32":
        safetensors.numpy.save_file({k: v.astype(np.float32) for k, v in tensors.items()}, path)
        return
    if dtype == "f16":
        safetensors.numpy.save_file({k: v.astype(np.float16) for k, v in tensors.items()}, path)
        return
    bits = {k: f32_to_bf16_bits(v) for k, v in tensors.items()}
    if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.8
        spec = {k: safetensors.TensorSpec(dtype="bfloat16", shape=v.shape, data_ptr=v.ctypes.data,
                                          data_len=v.nbytes) for k, v in bits.items()}
    else:
        spec = {k: {"dtype": "bfloat16", "shape": v.shape, "data": v.tobytes()}
                for k, v in bits.items()}
    safetensors.serialize_file(spec, path, metadata={"format": "pt"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder to write (created if missing)")
    ap.add_argument("--dtype", choices=sorted(HF_DTYPE), default="bf16",
                    help="storage dtype of the weights (default bf16)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small",
                    help="model shape (default: the ~125M-parameter one above)")
    ap.add_argument("--layers", type=int, default=0,
                    help="number of decoder layers (default: the preset's)")
    args = ap.parse_args()
    shape = dict(PRESETS[args.preset])
    if args.layers < 0:
        ap.error(f"--layers must be at least 1 (0: the preset's), got {args.layers}")
    if args.layers:
        shape["num_hidden_layers"] = args.layers

    rng = np.random.default_rng(args.seed)
    tensors, params = {}, 0
    for name, dims, init in tensor_shapes(shape):
        if init == "ones":
            a = np.ones(dims, dtype=np.float32)
        else:
            a = rng.standard_normal(dims, dtype=np.float32)
            a *= np.float32(0.02)
        tensors[name] = a
        params += a.size

    os.makedirs(args.out, exist_ok=True)
    config = dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        initializer_range=0.02,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype=HF_DTYPE[args.dtype],
        **shape,
    )
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    save(tensors, os.path.join(args.out, "model.safetensors"), args.dtype)
    print(f"parameters: {params} ({params / 1e6:.1f}M), dtype {args.dtype}, wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
