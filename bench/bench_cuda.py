#!/usr/bin/env python3
"""Decode and prefill throughput of qlc's CUDA artifacts beside transformers, on one GPU.

Run on the GPU machine (it needs torch, transformers, safetensors and nvcc there; the qlc
and qlc-run binaries can be built elsewhere and carried):

    python3 bench/bench_cuda.py --bin-dir build/tools --schemes none,rtn-w4,nf4 --kv f16,int8

It writes a Llama-2-7B-shaped model with random f16 weights (seeded; `--layers` makes a
shallower one of the same layer shapes), then in the same run:
  * measures a device-to-device copy (bytes read + written per second): the ceiling;
  * times transformers' (PyTorch, eager) f16 greedy decode at each batch;
  * compiles qlc artifacts (--target sm_90 unless --target) per scheme and KV dtype and
    times `qlc-run --bench` decode at each batch and prefill of --prefill-len tokens;
and prints a table: tok/s, ratio to transformers, and for batch 1 the bytes a decode step
must read (weights + KV) times tok/s as a fraction of the copy bandwidth.

--fusion on|off|both compiles with the fusion passes, with --no-fuse, or both; --tiling
default|model|tuned|both|all with the kernels' default tiles (--no-select-tiling),
qlc-select-tiling's cost model, tiles --autotune'd on this GPU at compile time (cache in
WORK/tuning.json), default and tuned, or all three. Each variant's rows get a ratio to the
first variant of the same scheme and KV dtype (fused, default tiles when measured):

    python3 bench/bench_cuda.py --schemes rtn-w4 --kv f16 --fusion both --tiling both

--pdl both times each artifact twice: as usual, and with QLC_CUDA_PDL=1, which launches
every kernel of an sm_90 artifact as a programmatic dependent launch (off by default).
--prefill-len 0 skips the long-prompt prefill.

--llama-cpp DIR also times llama.cpp (DIR holds llama-bench and llama-batched-bench, built
from its public source with -DGGML_CUDA=ON) in the same run, on a GGUF of the same shapes
with random Q4_0 weights and an f16 output projection (bench/make_random_gguf.py; it needs
the gguf package, e.g. llama.cpp's gguf-py on PYTHONPATH), with flash attention on and the
KV cache in f16 (--kv f16) or q8_0 (--kv int8): batch 1 from llama-bench (-d PROMPT_LEN
-n GEN_LEN, and -p PREFILL_LEN), larger batches from llama-batched-bench (-npp PROMPT_LEN
-ntg GEN_LEN -npl B). An empty --schemes times no qlc artifact.
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
from bench_decode import bytes_per_token  # noqa: E402

LLAMA2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                 max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def copy_bandwidth(torch, gib=2, reps=20):
    n = gib << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    a.random_()
    for _ in range(3):
        b.copy_(a)
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        s.record()
        b.copy_(a)
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    times.sort()
    del a, b
    torch.cuda.empty_cache()
    return 2 * n / times[len(times) // 2]


def make_model(torch, folder, layers, seed):
    """Random f16 Llama on the GPU (std 0.02, norms 1), saved as an HF folder."""
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = dict(LLAMA2_7B, num_hidden_layers=layers)
    config = LlamaConfig(**cfg, torch_dtype="float16", tie_word_embeddings=False)
    torch.manual_seed(seed)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cuda").half()
    g = torch.Generator(device="cuda").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=g)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config, device="cuda")
    model.eval()
    if not os.path.exists(os.path.join(folder, "config.json")):
        t0 = time.time()
        model.save_pretrained(folder, safe_serialization=True, max_shard_size="20GB")
        log(f"saved the model to {folder} in {time.time() - t0:.0f} s")
    return model


def transformers_decode(torch, model, batch, prompt_len, gen_len, seed):
    from transformers import DynamicCache
    g = torch.Generator(device="cuda").manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_len), device="cuda",
                        generator=g)
    with torch.no_grad():
        for rep in range(2):  # the first is the warm-up
            cache = DynamicCache()
            torch.cuda.synchronize()
            t0 = time.time()
            out = model(ids, past_key_values=cache, use_cache=True)
            torch.cuda.synchronize()
            prefill = time.time() - t0
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.time()
            for _ in range(gen_len):
                out = model(nxt, past_key_values=cache, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            decode = time.time() - t0
    return {"decode_tok_s": batch * gen_len / decode, "prefill_tok_s": batch * prompt_len / prefill}


def run(cmd, timeout=1800, env=None):
    log("$", " ".join(map(str, cmd)))
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout,
                       env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p


def gguf_bytes_per_token(path, layers, prompt_len, gen_len, kv):
    """Bytes a decode step reads from the GGUF (all but one embedding row) and its KV."""
    import gguf
    r = gguf.GGUFReader(path)
    total = sum(int(t.n_bytes) for t in r.tensors)
    emb = next(t for t in r.tensors if t.name == "token_embd.weight")
    total -= int(emb.n_bytes) - int(emb.n_bytes) // int(emb.shape[1])
    kv_dim = LLAMA2_7B["num_key_value_heads"] * (LLAMA2_7B["hidden_size"]
                                                 // LLAMA2_7B["num_attention_heads"])
    elem = 2.0 if kv == "f16" else 34.0 / 32.0  # q8_0: an f16 scale per 32 int8
    kv_bytes = 2 * layers * kv_dim * elem * (prompt_len + (gen_len + 1) / 2)
    return total, kv_bytes


def llama_cpp_rows(a, bw, base, batches):
    """llama.cpp's Q4_0 decode and prefill on a random GGUF of the same shapes."""
    gg = os.path.join(a.work, f"llama2-7b-shape-{a.layers}l-q4_0.gguf")
    if not os.path.exists(gg):
        run([sys.executable, os.path.join(REPO, "bench", "make_random_gguf.py"), gg,
             "--layers", a.layers, "--seed", a.seed])
    rows = []
    for kv in a.kv.split(","):
        ct = {"f16": "f16", "int8": "q8_0"}[kv]
        common = ["-m", gg, "-ngl", 99, "-fa", "on", "-ctk", ct, "-ctv", ct]
        engine = f"llama.cpp Q4_0 kv {ct}"
        out = json.loads(run([os.path.join(a.llama_cpp, "llama-bench")] + common +
                             ["-p", 0, "-n", a.gen_len, "-d", a.prompt_len, "-r", 3, "-o",
                              "json"]).stdout)
        tok_s = out[0]["avg_ts"]
        w, kvb = gguf_bytes_per_token(gg, a.layers, a.prompt_len, a.gen_len, kv)
        row = {"engine": engine, "variant": "fa on, llama-bench", "batch": 1,
               "decode_tok_s": tok_s, "bytes_per_token": w + kvb,
               "bw_fraction": tok_s * (w + kvb) / bw}
        if 1 in base:
            row["vs_transformers"] = tok_s / base[1]
        rows.append(row)
        log(row)
        big = [b for b in batches if b > 1]
        if big:
            ctx = max(big) * (a.prompt_len + a.gen_len) + 256
            p = run([os.path.join(a.llama_cpp, "llama-batched-bench")] + common +
                    ["-c", ctx, "-b", 2048, "-ub", 512, "-npp", a.prompt_len, "-ntg", a.gen_len,
                     "-npl", ",".join(map(str, big)), "--output-format", "jsonl"])
            for line in (p.stdout + p.stderr).splitlines():
                if line.startswith('{"n_kv_max"'):
                    r = json.loads(line)
                    row = {"engine": engine, "variant": "fa on, llama-batched-bench",
                           "batch": r["pl"], "decode_tok_s": r["speed_tg"],
                           "prefill_tok_s": r["speed_pp"]}
                    if r["pl"] in base:
                        row["vs_transformers"] = r["speed_tg"] / base[r["pl"]]
                    rows.append(row)
                    log(row)
        if a.prefill_len > 0:
            out = json.loads(run([os.path.join(a.llama_cpp, "llama-bench")] + common +
                                 ["-p", a.prefill_len, "-n", 0, "-r", 3, "-o", "json"]).stdout)
            rows.append({"engine": engine, "variant": "fa on, llama-bench", "batch": 1,
                         "prefill_len": a.prefill_len, "prefill_tok_s": out[0]["avg_ts"]})
            log(rows[-1])
    return rows


def qlc_bench(bins, art, batch, prompt_len, gen_len, env=None):
    p = run([os.path.join(bins, "qlc-run"), art, "--bench", "--batch", batch,
             "--prompt-len", prompt_len, "--gen-len", gen_len], env=env)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "tools"))
    ap.add_argument("--work", default="/tmp/qlc-bench-cuda")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--target", default="sm_90")
    ap.add_argument("--schemes", default="none,rtn-w4,nf4")
    ap.add_argument("--kv", default="f16,int8")
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen-len", type=int, default=64)
    ap.add_argument("--prefill-len", type=int, default=2048)
    ap.add_argument("--no-transformers", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="also write the results here")
    ap.add_argument("--fusion", default="on", choices=["on", "off", "both"])
    ap.add_argument("--tiling", default="model", choices=["default", "model", "tuned", "both", "all"])
    ap.add_argument("--pdl", default="off", choices=["on", "off", "both"],
                    help="programmatic dependent launch (QLC_CUDA_PDL=1, sm_90 artifacts): "
                         "off (the default), on, or both")
    ap.add_argument("--keep", action="store_true", help="keep the artifacts in WORK")
    ap.add_argument("--llama-cpp", default="",
                    help="directory with llama.cpp's llama-bench and llama-batched-bench")
    a = ap.parse_args()
    pdls = {"on": ["on"], "off": ["off"], "both": ["off", "on"]}[a.pdl]
    fusions = {"on": ["on"], "off": ["off"], "both": ["on", "off"]}[a.fusion]
    tilings = {"default": ["default"], "model": ["model"], "tuned": ["tuned"],
               "both": ["default", "tuned"], "all": ["default", "model", "tuned"]}[a.tiling]

    import torch
    os.makedirs(a.work, exist_ok=True)
    folder = os.path.join(a.work, f"llama2-7b-shape-{a.layers}l-f16")
    dev = torch.cuda.get_device_name()
    results = {"device": dev, "layers": a.layers, "rows": []}
    bw = copy_bandwidth(torch)
    results["copy_bytes_s"] = bw
    log(f"{dev}: copy {bw / 1e9:.0f} GB/s (read + write)")
    batches = [int(b) for b in a.batches.split(",")]

    base = {}
    if a.no_transformers and (os.path.exists(os.path.join(folder, "config.json"))
                              or not a.schemes):
        model = None
    else:
        model = make_model(torch, folder, a.layers, a.seed)
    if not a.no_transformers:
        for b in batches:
            r = transformers_decode(torch, model, b, a.prompt_len, a.gen_len, a.seed)
            base[b] = r["decode_tok_s"]
            results["rows"].append({"engine": "transformers f16", "batch": b, **r})
            log(f"transformers batch {b}: {r}")
        r = transformers_decode(torch, model, 1, a.prefill_len, 4, a.seed)
        results["rows"].append({"engine": "transformers f16", "batch": 1,
                                "prefill_len": a.prefill_len, **r})
    del model
    torch.cuda.empty_cache()

    tiling_flags = {"default": ["--no-select-tiling"],
                    "model": ["--tuning-cache", os.path.join(a.work, "no-tuning.json")],
                    "tuned": ["--autotune", "--tuning-cache", os.path.join(a.work, "tuning.json")]}
    if a.llama_cpp:
        results["rows"] += llama_cpp_rows(a, bw, base, batches)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)

    for scheme in filter(None, a.schemes.split(",")):
        for kv in a.kv.split(","):
            first = {}  # (batch, prefill) -> tok/s of the first variant
            for fuse in fusions:
                for tiling in tilings:
                    variant = f"fuse {fuse}, {tiling} tiles"
                    art = os.path.join(a.work, f"{scheme}-{kv}-{fuse}-{tiling}-{a.target}.so")
                    t0 = time.time()
                    run([os.path.join(a.bin_dir, "qlc"), "compile", folder, "-o", art, "--target",
                         a.target, "--quant", scheme, "--kv-cache", kv,
                         "--fuse" if fuse == "on" else "--no-fuse"] + tiling_flags[tiling])
                    compile_s = time.time() - t0
                    manifest = json.loads(run([os.path.join(a.bin_dir, "qlc"), "inspect", art,
                                               "--json"]).stdout)
                    engine = f"qlc {scheme} kv {kv}"
                    for pdl in pdls:
                        env = dict(os.environ, QLC_CUDA_PDL="1" if pdl == "on" else "0")
                        var = variant if pdl == "off" else variant + ", pdl on"
                        for b in batches:
                            r = qlc_bench(a.bin_dir, art, b, a.prompt_len, a.gen_len, env)
                            row = {"engine": engine, "variant": var, "batch": b,
                                   "compile_s": compile_s, **r}
                            if b in base:
                                row["vs_transformers"] = r["decode_tok_s"] / base[b]
                            first.setdefault((b, 0), r["decode_tok_s"])
                            row["vs_first"] = r["decode_tok_s"] / first[(b, 0)]
                            if b == 1:
                                w, kvb, _ = bytes_per_token(manifest, a.prompt_len, a.gen_len)
                                row["bytes_per_token"] = w + kvb
                                row["bw_fraction"] = r["decode_tok_s"] * (w + kvb) / bw
                            results["rows"].append(row)
                            log(row)
                        if a.prefill_len > 0:
                            r = qlc_bench(a.bin_dir, art, 1, a.prefill_len, 4, env)
                            first.setdefault((1, a.prefill_len), r["prefill_tok_s"])
                            results["rows"].append({"engine": engine, "variant": var, "batch": 1,
                                                    "prefill_len": a.prefill_len, **r,
                                                    "vs_first": r["prefill_tok_s"]
                                                    / first[(1, a.prefill_len)]})
                    if not a.keep:
                        os.remove(art)
                    if a.json:  # what is done so far survives a later failure
                        with open(a.json, "w") as f:
                            json.dump(results, f, indent=1)

    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"\n{dev}, Llama-2-7B shapes with {a.layers} layers, f16 random weights; "
          f"copy {bw / 1e9:.0f} GB/s")
    print(f"{'engine':24} {'variant':26} {'batch':>5} {'decode tok/s':>12} {'vs hf':>6} "
          f"{'bw frac':>7} {'prefill tok/s':>13} {'vs 1st variant':>14}")
    for r in results["rows"]:
        pre = f"{r['prefill_tok_s']:.0f}" if "prefill_tok_s" in r else ""
        pre += f" @{r['prefill_len']}" if "prefill_len" in r else ""
        dec = "" if "prefill_len" in r else f"{r['decode_tok_s']:.1f}"
        vs = f"{r['vs_transformers']:.2f}" if "vs_transformers" in r else ""
        frac = f"{r['bw_fraction']:.2f}" if "bw_fraction" in r else ""
        first = f"{r['vs_first']:.3f}" if "vs_first" in r else ""
        print(f"{r['engine']:24} {r.get('variant', ''):26} {r['batch']:>5} {dec:>12} {vs:>6} "
              f"{frac:>7} {pre:>13} {first:>14}")


if __name__ == "__main__":
    main()
