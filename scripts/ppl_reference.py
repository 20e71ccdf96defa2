#!/usr/bin/env python3
"""Perplexity reference: Hugging Face transformers on a GGUF model, on the same windows as
`qlc-run --perplexity FILE --ctx N [--max-chunks K]`.

The text is tokenized whole, without special tokens; the ids are cut into non-overlapping
windows of --ctx tokens (a last window shorter than 2 tokens is dropped); each window is one
forward pass from position 0 and every token after its first is scored. Run where torch and
transformers (and gguf, accelerate) are installed, e.g.:

    python3 scripts/ppl_reference.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf \
        --text ../shared/data/wikitext-2-raw/wiki.test.raw --ctx 512 --max-chunks 40 \
        --ids-out ids.txt
"""
import argparse
import json
import math
import os
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--max-chunks", type=int, default=0)
    ap.add_argument("--ids-out", help="write the token ids here (for qlc-run --perplexity-tokens)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (float32, TF32 off)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    d, f = os.path.split(os.path.abspath(args.gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    if args.device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        model.to(args.device)
    text = open(args.text, "rb").read().decode("utf-8", errors="replace")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if args.ids_out:
        with open(args.ids_out, "w") as o:
            o.write(" ".join(map(str, ids)))
    starts = [b for b in range(0, len(ids), args.ctx) if len(ids) - b >= 2]
    if args.max_chunks:
        starts = starts[:args.max_chunks]
    nll, n, t0 = 0.0, 0, time.time()
    partial = {}
    with torch.no_grad():
        for i, b in enumerate(starts):
            w = torch.tensor([ids[b:b + args.ctx]])
            logits = model(w.to(args.device)).logits[0].double().cpu()
            lp = torch.log_softmax(logits[:-1], dim=-1)
            nll -= lp.gather(1, w[0, 1:, None]).sum().item()
            n += w.shape[1] - 1
            if i + 1 in (8, 40):
                partial[i + 1] = math.exp(nll / n)
            print(f"window {i + 1}/{len(starts)} ppl {math.exp(nll / n):.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    print(json.dumps({"perplexity": math.exp(nll / n), "tokens": n, "windows": len(starts),
                      "ctx": args.ctx, "total_ids": len(ids), "after_windows": partial, "device": args.device,
                      "torch": torch.__version__, "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
