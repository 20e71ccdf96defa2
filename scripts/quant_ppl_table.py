#!/usr/bin/env python3
"""WikiText-2 perplexity of one model under every data-free quantization scheme and KV type.

For each (scheme, kv) pair: `qlc compile SRC --quant Q [--group-size G] --kv-cache KV
--target T`, then `qlc-run ART --perplexity TEXT --ctx CTX [--max-chunks K]` (the last
line `perplexity: P over N tokens`). Prints one JSON line per point as it finishes and,
at the end, a Markdown table with the perplexity, its change against the unquantized
artifact with the same KV type, and the artifact size.

    python3 scripts/quant_ppl_table.py --src models/stories260k \\
        --text ../shared/data/wikitext-2-raw/wiki.test.raw --ctx 512

--only NAME,... limits the schemes (names as in the table's first column); --kv f16,int8
the KV types. Artifacts go to --work-dir and are removed after their run unless --keep.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

# name -> (--quant, --group-size or None)
SCHEMES = [
    ("none", "none", None),
    ("rtn-w8", "rtn-w8", None),
    ("rtn-w4 g128", "rtn-w4", 128),
    ("rtn-w4 g32", "rtn-w4", 32),
    ("rtn-w4-sym g128", "rtn-w4-sym", 128),
    ("nf4", "nf4", None),
    ("nf4-dq", "nf4-dq", None),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd):
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--src", required=True, help="model folder or .gguf")
    ap.add_argument("--text", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--max-chunks", type=int, default=0, help="0: the whole file")
    ap.add_argument("--kv", default="f16,int8")
    ap.add_argument("--only", default="", help="comma list of scheme names")
    ap.add_argument("--target", default="native")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--bin-dir", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "build", "tools"))
    ap.add_argument("--work-dir", default="/tmp/qlc-ppl")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    names = [s[0] for s in SCHEMES]
    only = [o for o in args.only.split(",") if o]
    for o in only:
        if o not in names:
            ap.error(f"--only: unknown scheme '{o}' (known: {', '.join(names)})")
    os.makedirs(args.work_dir, exist_ok=True)
    qlc = os.path.join(args.bin_dir, "qlc")
    qlc_run = os.path.join(args.bin_dir, "qlc-run")
    rows = []
    t_all = time.time()
    for name, quant, group in SCHEMES:
        if only and name not in only:
            continue
        for kv in args.kv.split(","):
            art = os.path.join(args.work_dir, re.sub(r"[^A-Za-z0-9]+", "-", f"{name}-{kv}") + ".so")
            cmd = [qlc, "compile", args.src, "-o", art, "--target", args.target, "--quant", quant,
                   "--kv-cache", kv]
            if group is not None:
                cmd += ["--group-size", group]
            t0 = time.time()
            run(cmd)
            t1 = time.time()
            rcmd = [qlc_run, art, "--perplexity", args.text, "--ctx", args.ctx]
            if args.max_chunks:
                rcmd += ["--max-chunks", args.max_chunks]
            if args.threads:
                rcmd += ["--threads", args.threads]
            out = run(rcmd)
            m = re.search(r"perplexity: ([0-9.]+) over ([0-9]+) tokens", out.strip().splitlines()[-1])
            if not m:
                sys.exit(f"unexpected qlc-run output: {out[-300:]}")
            row = dict(scheme=name, quant=quant, group_size=group, kv=kv,
                       perplexity=float(m.group(1)), tokens=int(m.group(2)),
                       artifact_bytes=os.path.getsize(art), compile_s=round(t1 - t0, 1),
                       eval_s=round(time.time() - t1, 1))
            print(json.dumps(row), flush=True)
            rows.append(row)
            if not args.keep:
                os.remove(art)
    base = {r["kv"]: r["perplexity"] for r in rows if r["scheme"] == "none"}
    cmd = "python3 scripts/quant_ppl_table.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print()
    print(f"Command: `{cmd}` ({time.time() - t_all:.0f} s)")
    print()
    kvs = args.kv.split(",")
    both = "f16" in kvs and "int8" in kvs
    print("| scheme | " + " | ".join(f"ppl, {kv} KV | Δ vs none" for kv in kvs) +
          (" | int8 KV vs f16 KV" if both else "") + " | artifact size |")
    print("|---|" + "---:|---:|" * len(kvs) + ("---:|" if both else "") + "---:|")
    for name in [n for n in names if any(r["scheme"] == n for r in rows)]:
        cells = []
        size = ""
        for kv in kvs:
            r = next((r for r in rows if r["scheme"] == name and r["kv"] == kv), None)
            if r is None:
                cells += ["", ""]
                continue
            size = f"{r['artifact_bytes'] / 1e6:.2f} MB"
            d = f"{100 * (r['perplexity'] / base[kv] - 1):+.2f} %" if kv in base else ""
            cells += [f"{r['perplexity']:.4f}", d]
        if both:
            p = {r["kv"]: r["perplexity"] for r in rows if r["scheme"] == name}
            cells.append(f"{100 * (p['int8'] / p['f16'] - 1):+.2f} %"
                         if "int8" in p and "f16" in p else "")
        print(f"| {name} | " + " | ".join(cells) + f" | {size} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
