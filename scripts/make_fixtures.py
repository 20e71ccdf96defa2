#!/usr/bin/env python3
"""Build small random Hugging Face models and their reference logits.

This script is NOT part of the build or of CI. Run it by hand on a machine
where torch and transformers are installed (it was written against
transformers 5.x / torch 2.11; everything runs on the CPU, no GPU is needed):

    python3 scripts/make_fixtures.py --out test/fixtures

For every fixture it writes, under --out:

    <name>/config.json          Hugging Face config
    <name>/model.safetensors    random weights (save_pretrained)
    <name>/ref/tokens_<L>.txt   prompt token ids, space separated, one line
    <name>/ref/logits_<L>.npy   float32 [L, vocab] reference logits
    <name>/ref/meta.json        versions, command, float32-vs-float64 figures

and, for the real model in --stories (models/stories260k), only
stories260k/ref/... (the model itself is not copied).

Reference logits are computed on the CPU by the HF model loaded back from the
saved folder (attn_implementation="eager"), upcast with .double(), in one
forward over the whole prompt (position ids 0..L-1). Hugging Face's modelling
code silently computes some pieces in float32 even in a float64 model (RMSNorm
upcasts "to float32", eager attention's softmax uses dtype=float32, RoPE
inv_freq/cos/sin are built in float32). To get a genuinely float64 reference,
the reference forward runs inside a TorchFunctionMode that rewrites every
float32/float16/bfloat16 cast request into float64, and the rotary embedding
modules are rebuilt under that mode so inv_freq is computed in float64 too.
The figures stored in meta.json compare against that reference:
  rel_err_f32      : plain HF float32 forward
  rel_err_hf_f64   : plain HF .double() forward (with HF's internal f32 casts)
where rel_err = ||x - ref64|| / ||ref64|| over the whole [L, vocab] array.
"""

import argparse
import copy
import traceback
import json
import os
import shutil
import sys
import types

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

import transformers
from transformers import AutoConfig, AutoModelForCausalLM

PROMPT_LENGTHS = (1, 17, 317)

LOW_FLOATS = (torch.float32, torch.float16, torch.bfloat16)

# name -> (config class name, config kwargs, save dtype, torch seed, prompt seed)
FIXTURES = [
    (
        "llama-gqa-bf16",
        "LlamaConfig",
        dict(
            hidden_size=120,
            num_attention_heads=6,
            num_key_value_heads=2,
            intermediate_size=212,
            num_hidden_layers=3,
            vocab_size=384,
            max_position_embeddings=1024,
            rms_norm_eps=1e-5,
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=10000.0,
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=64,
            ),
            tie_word_embeddings=False,
        ),
        torch.bfloat16,
        1001,
        2001,
    ),
    (
        "qwen2-bias-tied-f16",
        "Qwen2Config",
        dict(
            hidden_size=96,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=176,
            num_hidden_layers=2,
            vocab_size=352,
            max_position_embeddings=1024,
            rms_norm_eps=1e-6,
            rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
            tie_word_embeddings=True,
            use_sliding_window=False,
        ),
        torch.float16,
        1002,
        2002,
    ),
    (
        "mistral-headdim-f32",
        "MistralConfig",
        dict(
            hidden_size=80,
            num_attention_heads=5,
            num_key_value_heads=1,
            head_dim=24,
            intermediate_size=150,
            num_hidden_layers=2,
            vocab_size=300,
            max_position_embeddings=1024,
            rms_norm_eps=1e-5,
            sliding_window=128,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0),
            tie_word_embeddings=False,
        ),
        torch.float32,
        1003,
        2003,
    ),
    (
        "llama-linear-oldkeys-f32",
        "LlamaConfig",
        dict(
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=4,
            intermediate_size=100,
            num_hidden_layers=2,
            vocab_size=260,
            max_position_embeddings=1024,
            rms_norm_eps=1e-5,
            attention_bias=True,
            mlp_bias=False,
            rope_parameters=dict(rope_type="linear", rope_theta=10000.0, factor=2.0),
            tie_word_embeddings=False,
        ),
        torch.float32,
        1004,
        2004,
    ),
]

STORIES_PROMPT_SEED = 2100

FAILURES = []  # non-fatal check failures; the script exits 1 at the end if any


def fail(msg):
    print("  CHECK FAILED:", msg)
    FAILURES.append(msg)


DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


# ----------------------------------------------------------------------------
# float64 everywhere
# ----------------------------------------------------------------------------


def _is_low(a):
    return isinstance(a, torch.dtype) and a in LOW_FLOATS


class Float64Mode(TorchFunctionMode):
    """Rewrites requests for float32/16/bf16 into float64, and records any op
    that still produces a low-precision float tensor."""

    def __init__(self):
        super().__init__()
        self.leaks = {}

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.Tensor.float, torch.Tensor.half, torch.Tensor.bfloat16):
            func = torch.Tensor.double
        if _is_low(kwargs.get("dtype", None)):
            kwargs["dtype"] = torch.float64
        if func is torch.Tensor.to or func is torch.Tensor.type:
            args = tuple(torch.float64 if _is_low(a) else a for a in args)
        out = func(*args, **kwargs)
        self._check(func, out)
        return out

    def _check(self, func, out):
        if isinstance(out, torch.Tensor):
            if out.dtype in LOW_FLOATS:
                name = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
                self.leaks[name] = self.leaks.get(name, 0) + 1
        elif isinstance(out, (tuple, list)):
            for o in out:
                if isinstance(o, torch.Tensor):
                    self._check(func, o)


class float64_everywhere:
    def __enter__(self):
        self.old_default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        self.mode = Float64Mode()
        self.mode.__enter__()
        return self.mode

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)
        torch.set_default_dtype(self.old_default)
        return False


def rebuild_rotary_f64(model):
    """Recompute every rotary embedding's inv_freq in float64 (HF builds it in
    float32, so .double() alone keeps float32-rounded frequencies)."""
    report = []
    for name, mod in model.named_modules():
        if not type(mod).__name__.endswith("RotaryEmbedding"):
            continue
        if not hasattr(mod, "inv_freq"):
            continue
        cfg = getattr(mod, "config", None) or model.config
        with float64_everywhere():
            fresh = type(mod)(config=cfg)
        new = fresh.inv_freq.detach().to(torch.float64)
        old = mod.inv_freq.detach().to(torch.float64)
        rel = float((new - old).abs().max() / old.abs().max())
        assert new.shape == old.shape, (new.shape, old.shape)
        assert rel < 1e-6, f"{name}: f64 inv_freq differs from HF's by {rel}"
        assert getattr(fresh, "attention_scaling", 1.0) == getattr(mod, "attention_scaling", 1.0)
        mod.inv_freq = new.clone()
        if hasattr(mod, "original_inv_freq"):
            mod.original_inv_freq = new.clone()
        report.append(dict(module=name, inv_freq_rel_diff_vs_hf_f32=rel, n=int(new.numel())))
    return report


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def config_class(name):
    return getattr(transformers, name)


def make_config(cls_name, kwargs):
    cls = config_class(cls_name)
    cfg = cls(**kwargs)
    return cfg


def reinit_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.05 * noise)
            else:
                p.copy_(0.05 * noise)


def save_model(model, folder):
    os.makedirs(folder, exist_ok=True)
    try:
        model.save_pretrained(folder, safe_serialization=True)
    except TypeError:
        model.save_pretrained(folder)
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)


def load_model(folder, dtype):
    try:
        m = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=dtype)
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", torch_dtype=dtype)
    m.eval()
    return m.to(dtype)


def forward_logits(model, tokens):
    ids = torch.tensor(tokens, dtype=torch.long)[None, :]
    pos = torch.arange(len(tokens), dtype=torch.long)[None, :]
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=pos, use_cache=False)
    return out.logits[0]


def forward_f64_exact(model, tokens):
    with float64_everywhere() as mode:
        logits = forward_logits(model, tokens)
    assert logits.dtype == torch.float64, logits.dtype
    return logits, dict(mode.leaks)


def rel_err(x, ref):
    x = x.to(torch.float64)
    ref = ref.to(torch.float64)
    return float(torch.linalg.norm(x - ref) / torch.linalg.norm(ref))


def prompts(vocab, seed):
    rng = np.random.default_rng(seed)
    return {L: [int(t) for t in rng.integers(0, vocab, size=L)] for L in PROMPT_LENGTHS}


def safetensors_summary(path):
    from safetensors import safe_open

    out = {}
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            t = f.get_tensor(k)
            out[k] = (str(t.dtype).replace("torch.", ""), list(t.shape))
    return out


# ----------------------------------------------------------------------------
# reference data
# ----------------------------------------------------------------------------


def write_refs(folder, ref_dir, prompt_seed, command, extra_meta=None):
    """Compute reference logits for the model in `folder`, write them to ref_dir."""
    os.makedirs(ref_dir, exist_ok=True)
    m64 = load_model(folder, torch.float64)
    m64_hf = copy.deepcopy(m64)  # plain HF .double() model, kept for the comparison
    exact = True
    try:
        rope_report = rebuild_rotary_f64(m64)
    except Exception:
        traceback.print_exc()
        fail(f"{folder}: rebuilding rotary embeddings in float64 failed")
        rope_report = "FAILED"
    m32 = load_model(folder, torch.float32)
    vocab = m64.config.vocab_size

    meta = dict(
        transformers=transformers.__version__,
        torch=torch.__version__,
        numpy=np.__version__,
        command=command,
        model_folder=os.path.basename(os.path.normpath(folder)),
        vocab_size=vocab,
        prompt_seed=prompt_seed,
        prompt_rng="numpy.random.default_rng(prompt_seed).integers(0, vocab, size=L), lengths drawn in order "
        + str(list(PROMPT_LENGTHS)),
        reference="float64 CPU forward, eager attention, HF float32 casts rewritten to float64 "
        "(see scripts/make_fixtures.py docstring); logits stored as float32",
        rotary_f64=rope_report,
        lengths={},
    )
    all_leaks = {}
    for L, toks in prompts(vocab, prompt_seed).items():
        hf64 = forward_logits(m64_hf, toks)
        leaks = {}
        if exact:
            try:
                ref64, leaks = forward_f64_exact(m64, toks)
            except Exception:
                traceback.print_exc()
                fail(f"{folder}: float64 mode forward failed; falling back to plain HF .double()")
                exact = False
        if not exact:
            ref64 = hf64
        for k, v in leaks.items():
            all_leaks[k] = all_leaks.get(k, 0) + v
        ref32 = forward_logits(m32, toks)
        assert ref64.shape == (L, vocab), ref64.shape
        assert torch.isfinite(ref64).all()
        e32 = rel_err(ref32, ref64)
        e64 = rel_err(hf64, ref64)
        std = float(ref64.std(dim=-1).mean())
        with open(os.path.join(ref_dir, f"tokens_{L}.txt"), "w") as f:
            f.write(" ".join(str(t) for t in toks) + "\n")
        np.save(os.path.join(ref_dir, f"logits_{L}.npy"), ref64.numpy().astype(np.float32))
        meta["lengths"][str(L)] = dict(
            rel_err_f32=e32,
            rel_err_hf_f64=e64,
            max_abs_err_f32=float((ref32.double() - ref64).abs().max()),
            mean_std_over_vocab=std,
            max_abs_logit=float(ref64.abs().max()),
        )
        print(f"  L={L:4d}: rel_err f32={e32:.3e}  hf-native f64={e64:.3e}  std(vocab)={std:.3f}")
    meta["float32_leaks_in_f64_forward"] = all_leaks
    if not exact:
        meta["reference"] = "FALLBACK: plain HF .double() forward (HF's internal float32 casts kept)"
    if all_leaks:
        print("  WARNING: low-precision ops in the float64 forward:", all_leaks)
    if extra_meta:
        meta.update(extra_meta)
    with open(os.path.join(ref_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    return m64, meta


def rewrite_old_keys(folder):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    assert rp.get("rope_type") == "linear", rp
    new = {}
    for k, v in cfg.items():
        if k == "dtype":
            new["torch_dtype"] = v
        else:
            new[k] = v
    new["rope_theta"] = float(rp["rope_theta"])
    new["rope_scaling"] = {"type": "linear", "factor": float(rp["factor"])}
    new = dict(sorted(new.items()))
    with open(path, "w") as f:
        json.dump(new, f, indent=2)
        f.write("\n")


def sliding_window_check(folder, tokens, window):
    """Does Mistral eager attention apply sliding_window, and with which bounds?"""
    res = {}
    m = load_model(folder, torch.float64)
    rebuild_rotary_f64(m)
    with_w, _ = forward_f64_exact(m, tokens)
    m_full = copy.deepcopy(m)
    m_full.config.sliding_window = None
    for mod in m_full.modules():
        if hasattr(mod, "sliding_window") and not isinstance(mod, type(m_full.config)):
            try:
                mod.sliding_window = None
            except Exception:
                pass
    without_w, _ = forward_f64_exact(m_full, tokens)
    q = len(tokens) - 1
    res["position"] = q
    res["max_abs_diff_last_pos_window_vs_none"] = float((with_w[q] - without_w[q]).abs().max())
    res["max_abs_diff_pos_window_minus_1_window_vs_none"] = float(
        (with_w[window - 1] - without_w[window - 1]).abs().max()
    )
    res["max_abs_diff_pos_window_window_vs_none"] = float((with_w[window] - without_w[window]).abs().max())

    # One-layer copy: which key positions can the last query see?
    m1 = copy.deepcopy(m)
    m1.config.num_hidden_layers = 1
    m1.model.layers = m1.model.layers[:1]
    if getattr(m1.config, "layer_types", None):
        m1.config.layer_types = m1.config.layer_types[:1]
    base, _ = forward_f64_exact(m1, tokens)
    for back in (window - 1, window):
        t2 = list(tokens)
        t2[q - back] = (t2[q - back] + 1) % m.config.vocab_size
        pert, _ = forward_f64_exact(m1, t2)
        res[f"one_layer_last_pos_changes_when_token_at_q_minus_{back}_changes"] = float(
            (pert[q] - base[q]).abs().max()
        )
    return res


# ----------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="test/fixtures", help="output directory (default test/fixtures)")
    ap.add_argument(
        "--stories",
        default="models/stories260k",
        help="HF folder of the real stories260k model; its references go to OUT/stories260k/ref",
    )
    ap.add_argument("--only", nargs="*", help="build only these fixtures")
    args = ap.parse_args()

    command = "python3 scripts/make_fixtures.py " + " ".join(sys.argv[1:])
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    os.makedirs(args.out, exist_ok=True)

    for name, cls_name, kwargs, save_dtype, seed, prompt_seed in FIXTURES:
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name} ===")
        folder = os.path.join(args.out, name)
        if os.path.exists(folder):
            shutil.rmtree(folder)
        torch.manual_seed(seed)
        cfg = make_config(cls_name, kwargs)
        print("  config.rope_parameters after construction:", getattr(cfg, "rope_parameters", None))
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        reinit_(model, seed)
        model = model.to(save_dtype).eval()
        try:
            model.config.dtype = save_dtype
        except Exception:
            model.config.torch_dtype = save_dtype
        save_model(model, folder)

        extra = {}
        if name == "llama-linear-oldkeys-f32":
            toks = prompts(cfg.vocab_size, prompt_seed)[317]
            before = forward_logits(model, toks)
            rope_before = dict(model.config.rope_parameters)
            rewrite_old_keys(folder)
            reloaded = load_model(folder, torch.float32)
            after = forward_logits(reloaded, toks)
            rope_after = dict(reloaded.config.rope_parameters)
            print("  rope_parameters in memory :", rope_before)
            print("  rope_parameters reloaded  :", rope_after)
            same = bool(torch.equal(before, after))
            diff = float((before - after).abs().max())
            print(f"  old-key reload: logits bitwise equal={same}, max abs diff={diff:.3e}")
            strip = lambda d: {k: v for k, v in d.items() if k != "type"}
            if strip(rope_before) != strip(rope_after):
                fail(f"old-key reload: rope_parameters differ {rope_before} vs {rope_after}")
            if not same:
                fail(f"old-key reload: logits not bitwise equal (max abs diff {diff})")
            extra["old_keys_reload"] = dict(
                logits_bitwise_equal=same, max_abs_diff=diff, rope_parameters_reloaded=rope_after
            )

        with open(os.path.join(folder, "config.json")) as f:
            print("  config.json:\n" + "\n".join("    " + l for l in f.read().splitlines()))
        st = safetensors_summary(os.path.join(folder, "model.safetensors"))
        dts = sorted({v[0] for v in st.values()})
        print(f"  model.safetensors: {os.path.getsize(os.path.join(folder, 'model.safetensors'))} bytes, "
              f"{len(st)} tensors, dtypes {dts}")
        if dts != [DTYPE_NAMES[save_dtype]]:
            fail(f"{name}: safetensors dtypes {dts}, expected {DTYPE_NAMES[save_dtype]}")
        for k, v in st.items():
            print(f"    {k}: {v[0]} {v[1]}")

        if name == "mistral-headdim-f32":
            toks = prompts(cfg.vocab_size, prompt_seed)[317]
            try:
                sw = sliding_window_check(folder, toks, cfg.sliding_window)
            except Exception:
                traceback.print_exc()
                fail("sliding window check crashed")
                sw = "FAILED"
            print("  sliding window check:", json.dumps(sw, indent=2))
            extra["sliding_window_check"] = sw

        _, meta = write_refs(folder, os.path.join(folder, "ref"), prompt_seed, command, extra)

    if args.stories and (not args.only or "stories260k" in args.only):
        if os.path.isdir(args.stories):
            print("\n=== stories260k ===")
            ref_dir = os.path.join(args.out, "stories260k", "ref")
            if os.path.exists(ref_dir):
                shutil.rmtree(ref_dir)
            write_refs(args.stories, ref_dir, STORIES_PROMPT_SEED, command,
                       dict(model_folder=os.path.normpath(args.stories)))
        else:
            print(f"\nWARNING: {args.stories} not found; stories260k references skipped")

    if FAILURES:
        print("\nFAILED CHECKS:")
        for f in FAILURES:
            print("  " + f)
        sys.exit(1)
    print("\ndone, all checks passed")


if __name__ == "__main__":
    main()
