"""AutoGPTQ and AutoAWQ checkpoint layouts in NumPy, written from their documented formats
(independently of qlc's importer and exporter), for the checkpoint tests.

AutoGPTQ / GPTQModel (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py: QuantLinear.pack
packs, its torch forward unpacks; GPTQModel's convert_gptq_v1_to_v2_format_module gives
the v1/v2 difference), for a linear layer of K input and N output features and
G = ceil(K / group_size) groups, with P = 32 // bits values per int32:

    qweight int32 [K // P, N]   value of input k, output n: bits * (k % P) up in word
                                (k // P, n), lowest bits first
    qzeros  int32 [G, N // P]   zero point of group g, output n: bits * (n % P) up in word
                                (g, n // P); checkpoint_format "gptq" (v1) stores zero - 1,
                                "gptq_v2" the zero itself
    scales  float16 [G, N]
    g_idx   int32 [K]           group of input k (k // group_size without act-order)
    W[n, k] = (q[k, n] - zero[g_idx[k], n]) * scale[g_idx[k], n]

AutoAWQ GEMM (awq/modules/linear/gemm.py: WQLinear_GEMM.from_linear packs;
awq/utils/packing_utils.py reverses the order to unpack), 4 bits, K % group_size == 0:

    qweight int32 [K, N // 8]   word (k, c) holds outputs c*8 .. c*8+7 of input k;
                                nibble i (bits 4i..4i+3) holds output c*8 + ORDER[i]
    qzeros  int32 [K // gs, N // 8], the same interleaving, zeros as they are
    scales  float16 [K // gs, N]
    W[n, k] = (q[k, n] - zero[k // gs, n]) * scale[k // gs, n]
"""
import json
import struct
from pathlib import Path

import numpy as np

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


# --- AutoGPTQ ---------------------------------------------------------------------------

def pack_gptq(codes, zeros, bits, v1=True):
    """codes uint [K, N] in [0, 2^bits), zeros int [G, N] -> (qweight, qzeros) int32."""
    per = 32 // bits
    k, n = codes.shape
    assert k % per == 0 and n % per == 0
    c = codes.astype(np.uint64).reshape(k // per, per, n)
    qweight = np.zeros((k // per, n), np.uint64)
    for i in range(per):
        qweight |= c[:, i, :] << np.uint64(bits * i)
    stored = zeros.astype(np.int64) - (1 if v1 else 0)
    assert stored.min() >= 0 and stored.max() < (1 << bits), "zero point not storable"
    z = stored.astype(np.uint64).reshape(zeros.shape[0], n // per, per)
    qzeros = np.zeros((zeros.shape[0], n // per), np.uint64)
    for i in range(per):
        qzeros |= z[:, :, i] << np.uint64(bits * i)
    return (qweight.astype(np.uint32).view(np.int32), qzeros.astype(np.uint32).view(np.int32))


def unpack_gptq(qweight, qzeros, bits, v1=True):
    """-> codes int32 [K, N], zeros int32 [G, N] (v1: the stored value plus one)."""
    per, mask = 32 // bits, (1 << bits) - 1
    qw = qweight.view(np.uint32)
    shifts = (np.arange(per, dtype=np.uint32) * bits)
    codes = (qw[:, None, :] >> shifts[None, :, None]) & mask
    codes = codes.reshape(qw.shape[0] * per, qw.shape[1]).astype(np.int32)
    qz = qzeros.view(np.uint32)
    zeros = (qz[:, :, None] >> shifts[None, None, :]) & mask
    zeros = zeros.reshape(qz.shape[0], qz.shape[1] * per).astype(np.int32)
    return codes, zeros + (1 if v1 else 0)


def dequant_gptq(codes, zeros, scales, g_idx):
    """-> float32 W [N, K] (the product of an integer and an f16 scale is exact in f32)."""
    z = zeros[g_idx]                      # [K, N]
    s = scales.astype(np.float32)[g_idx]  # [K, N]
    return ((codes - z).astype(np.float32) * s).T.copy()


# --- AutoAWQ GEMM -----------------------------------------------------------------------

def _interleave(values):
    """[R, N] nibbles -> int32 [R, N // 8] in AutoAWQ's order."""
    r, n = values.shape
    v = values.astype(np.uint32).reshape(r, n // 8, 8)
    out = np.zeros((r, n // 8), np.uint32)
    for i in range(8):
        out |= v[:, :, AWQ_ORDER[i]] << np.uint32(4 * i)
    return out.view(np.int32)


def _deinterleave(words):
    w = words.view(np.uint32)
    nib = (w[:, :, None] >> (4 * np.arange(8, dtype=np.uint32))[None, None, :]) & 15
    out = np.empty_like(nib)
    out[:, :, AWQ_ORDER] = nib  # nibble i holds column ORDER[i]
    return out.reshape(w.shape[0], w.shape[1] * 8).astype(np.int32)


def pack_awq(codes, zeros):
    """codes [K, N] in [0, 16), zeros [G, N] -> (qweight, qzeros) int32."""
    assert codes.shape[1] % 8 == 0
    return _interleave(codes), _interleave(zeros)


def unpack_awq(qweight, qzeros):
    return _deinterleave(qweight), _deinterleave(qzeros)


def dequant_awq(codes, zeros, scales, group_size):
    g_idx = np.arange(codes.shape[0]) // group_size
    return dequant_gptq(codes, zeros, scales, g_idx)


# --- model folders ----------------------------------------------------------------------

PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def read_safetensors(path):
    """name -> numpy array (F32, F16, I32; BF16 widened to float32)."""
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[base + b:base + e]
        if t["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, {"F32": np.float32, "F16": np.float16, "I32": np.int32}[t["dtype"]])
        out[name] = a.reshape(t["shape"]).copy()
    return out, header


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def write_model(folder, config, tensors):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def tiny_config(arch="LlamaForCausalLM", hidden=64, inter=96, layers=2, heads=4, kv_heads=2,
                vocab=256, tied=False):
    return {"architectures": [arch], "hidden_size": hidden, "intermediate_size": inter,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "vocab_size": vocab, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256, "rope_theta": 10000.0, "hidden_act": "silu",
            "tie_word_embeddings": tied, "torch_dtype": "float16", "bos_token_id": 1,
            "eos_token_id": 2}


def projection_shapes(cfg):
    """HF prefix of every projection -> (out_features, in_features), and whether biased."""
    d, hd = cfg["hidden_size"], cfg["hidden_size"] // cfg["num_attention_heads"]
    q, kv, inter = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd, cfg["intermediate_size"]
    shapes = {"self_attn.q_proj": (q, d), "self_attn.k_proj": (kv, d), "self_attn.v_proj": (kv, d),
              "self_attn.o_proj": (d, q), "mlp.gate_proj": (inter, d), "mlp.up_proj": (inter, d),
              "mlp.down_proj": (d, inter)}
    qwen = cfg["architectures"][0] == "Qwen2ForCausalLM"
    out = {}
    for i in range(cfg["num_hidden_layers"]):
        for p, s in shapes.items():
            out[f"model.layers.{i}.{p}"] = (s, qwen and p in ("self_attn.q_proj", "self_attn.k_proj",
                                                             "self_attn.v_proj"))
    return out


def random_float_model(cfg, seed, dtype=np.float16):
    """The non-projection tensors and float projections of a random model of `cfg`."""
    rng = np.random.default_rng(seed)
    d, v = cfg["hidden_size"], cfg["vocab_size"]
    t = {"model.embed_tokens.weight": rng.normal(0, 0.5, (v, d)),
         "model.norm.weight": rng.uniform(0.8, 1.2, d)}
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = rng.normal(0, 0.1, (v, d))
    for i in range(cfg["num_hidden_layers"]):
        t[f"model.layers.{i}.input_layernorm.weight"] = rng.uniform(0.8, 1.2, d)
        t[f"model.layers.{i}.post_attention_layernorm.weight"] = rng.uniform(0.8, 1.2, d)
    for p, ((n, k), bias) in projection_shapes(cfg).items():
        t[p + ".weight"] = rng.normal(0, 1.0 / np.sqrt(k), (n, k))
        if bias:
            t[p + ".bias"] = rng.normal(0, 0.1, n)
    return {name: a.astype(dtype) for name, a in t.items()}


def dequantize_checkpoint(folder, out_folder):
    """A pre-quantized checkpoint folder -> an ordinary float32 HF folder whose projections
    are the dequantized weights (no quantization_config)."""
    cfg = json.loads((Path(folder) / "config.json").read_text())
    qc = cfg.pop("quantization_config")
    tensors, _ = read_safetensors(Path(folder) / "model.safetensors")
    out = {}
    prefixes = {n[:-len(".qweight")] for n in tensors if n.endswith(".qweight")}
    for p in prefixes:
        if qc["quant_method"] == "gptq":
            codes, zeros = unpack_gptq(tensors[p + ".qweight"], tensors[p + ".qzeros"], qc["bits"],
                                       v1=qc.get("checkpoint_format", "gptq") == "gptq")
            k = codes.shape[0]
            gs = qc["group_size"] if qc["group_size"] > 0 else k
            g_idx = tensors.get(p + ".g_idx", np.arange(k) // gs)
            out[p + ".weight"] = dequant_gptq(codes, zeros, tensors[p + ".scales"], g_idx)
        else:
            codes, zeros = unpack_awq(tensors[p + ".qweight"], tensors[p + ".qzeros"])
            out[p + ".weight"] = dequant_awq(codes, zeros, tensors[p + ".scales"], qc["group_size"])
    for name, a in tensors.items():
        if not any(name.startswith(p + ".") and not name.endswith(".bias") for p in prefixes):
            out[name] = a.astype(np.float32)
    cfg["torch_dtype"] = "float32"
    return write_model(out_folder, cfg, out)


def make_prequantized(folder, float_folder, cfg, method, bits=4, group_size=32, desc_act=False,
                      v1=True, sym=False, seed=0, shared_perms=True):
    """Writes a checkpoint of random integers, zero points and scales packed in AutoGPTQ's
    (method "gptq") or AutoAWQ GEMM's ("awq") layout to `folder`, and to `float_folder` the
    float32 model they stand for (dequantized from the generated integers, not from the
    packed tensors). With desc_act, every input gets a random act-order g_idx (shared by
    the projections reading it, as AutoGPTQ's Hessian order is, unless not shared_perms)."""
    rng = np.random.default_rng(seed)
    tensors = random_float_model(cfg, seed + 1)
    floats = {n: a.astype(np.float32) for n, a in tensors.items()}
    maxq = (1 << bits) - 1
    perms = {}
    for p, ((n, k), bias) in projection_shapes(cfg).items():
        del tensors[p + ".weight"], floats[p + ".weight"]
        gs = group_size if group_size > 0 else k
        groups = -(-k // gs)
        codes = rng.integers(0, maxq + 1, (k, n))
        if sym:
            zeros = np.full((groups, n), 1 << (bits - 1))
        else:  # v1 stores zero - 1, so zeros of 1 .. 2^bits
            zeros = rng.integers(1 if v1 and method == "gptq" else 0, maxq + 1, (groups, n))
        scales = rng.uniform(0.5, 1.5, (groups, n)) / (maxq * np.sqrt(k))
        scales = scales.astype(np.float16)
        if method == "gptq":
            g_idx = np.arange(k) // gs
            if desc_act:
                key = (p.rsplit(".", 2)[0], "attn" if p.endswith(("q_proj", "k_proj", "v_proj"))
                       else "mlp" if p.endswith(("gate_proj", "up_proj")) else p)
                if key not in perms or not shared_perms:
                    perms[key] = rng.permutation(k)
                g_idx = np.empty(k, np.int64)
                g_idx[perms[key]] = np.arange(k) // gs  # act-order: groups by quantization order
            qweight, qzeros = pack_gptq(codes, zeros, bits, v1=v1)
            back_codes, back_zeros = unpack_gptq(qweight, qzeros, bits, v1=v1)
            tensors[p + ".g_idx"] = g_idx.astype(np.int32)
        else:
            assert bits == 4 and k % gs == 0
            g_idx = np.arange(k) // gs
            qweight, qzeros = pack_awq(codes, zeros)
            back_codes, back_zeros = unpack_awq(qweight, qzeros)
        assert (back_codes == codes).all() and (back_zeros == zeros).all()
        tensors[p + ".qweight"], tensors[p + ".qzeros"], tensors[p + ".scales"] = qweight, qzeros, scales
        floats[p + ".weight"] = dequant_gptq(codes, zeros, scales, g_idx)
    qcfg = dict(cfg)
    if method == "gptq":
        qcfg["quantization_config"] = {
            "quant_method": "gptq", "bits": bits, "group_size": group_size, "desc_act": desc_act,
            "sym": sym, "checkpoint_format": "gptq" if v1 else "gptq_v2", "static_groups": False}
    else:
        qcfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": group_size,
                                       "zero_point": True, "version": "GEMM"}
    fcfg = dict(cfg, torch_dtype="float32")
    write_model(float_folder, fcfg, floats)
    return write_model(folder, qcfg, tensors)
