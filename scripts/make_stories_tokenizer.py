#!/usr/bin/env python3
"""Converts llama2.c's tokenizer (tok512.bin) into a Hugging Face tokenizer.json.

tok512.bin (llama2.c's tokenizer.py export of a SentencePiece BPE model): int32 max token
length, then per token: float32 score, int32 byte length, UTF-8 bytes. SentencePiece's "▁"
is stored as " ", BOS/EOS as "\\n<s>\\n" / "\\n</s>\\n".

The result is what transformers' LlamaConverter (legacy SentencePiece BPE) builds for a
Llama-2 tokenizer: vocabulary in id order, merges derived from vocabulary and scores the way
SpmConverter does for BPE models (every split of a piece into two pieces of the vocabulary,
ordered by the piece's score), byte fallback, <unk>=0 <s>=1 </s>=2, normalizer
Prepend("▁") + Replace(" ", "▁"), decoder Replace/ByteFallback/Fuse/Strip, and a
post-processor that adds <s>. Needs only the standard library:

    scripts/make_stories_tokenizer.py [--input models/stories260k/tok512.bin]
                                      [--output models/stories260k/tokenizer.json] [--check]

--check (needs `pip install tokenizers`) loads the result with Hugging Face tokenizers and
compares its encodings with a port of llama2.c's own encoder (run.c), and checks that
decoding gives the text back.
"""
import argparse
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECIALS = ["<unk>", "<s>", "</s>"]


def read_llama2c(path):
    data = Path(path).read_bytes()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, pieces = 4, []
    while off < len(data):
        if off + 8 > len(data):
            raise ValueError(f"{path}: truncated at byte {off}")
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        if n < 0 or n > max_len or off + n > len(data):
            raise ValueError(f"{path}: bad token length {n} at byte {off - 4}")
        pieces.append((data[off:off + n].decode("utf-8"), score))
        off += n
    return pieces


def sentencepiece_vocab(pieces):
    """The (piece, score) list with SentencePiece's spellings restored."""
    out = []
    for i, (text, score) in enumerate(pieces):
        if i < len(SPECIALS):
            out.append((SPECIALS[i], 0.0))
        else:
            out.append((text.replace(" ", "\u2581"), score))
    seen = set()
    for p, _ in out:
        if p in seen:
            raise ValueError(f"duplicate piece {p!r}")
        seen.add(p)
    return out


def generate_merges(vocab, vocab_scores):
    """transformers' generate_merges(vocab, vocab_scores) (convert_slow_tokenizer.py)."""
    merges = []
    for merge, score in vocab_scores:
        local = [(merge[:i], merge[i:], score) for i in range(1, len(merge))
                 if merge[:i] in vocab and merge[i:] in vocab]
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)
    return [[a, b] for a, b, _ in merges]


def build(pieces):
    vocab_scores = sentencepiece_vocab(pieces)
    vocab = {p: i for i, (p, _) in enumerate(vocab_scores)}
    # Special tokens are never merged: leave them out of the merge search.
    normal = [(p, s) for p, s in vocab_scores if p not in SPECIALS]
    merges = generate_merges(vocab, normal)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(SPECIALS)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        ]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def llama2c_encode(pieces, text):
    """A port of llama2.c's encode() (run.c): BOS, a dummy-prefix space, one token per
    UTF-8 character (bytes + 3 when unknown), then merge the best-scoring pair until none."""
    vocab = {t: i for i, (t, _) in enumerate(pieces)}
    scores = [s for _, s in pieces]
    ids = [1]
    if text:
        ids.append(vocab[" "])
    for ch in text:
        if ch in vocab:
            ids.append(vocab[ch])
        else:
            ids.extend(b + 3 for b in ch.encode("utf-8"))
    while True:
        best, best_i, best_id = -1e10, -1, -1
        for i in range(len(ids) - 1):
            merged = pieces[ids[i]][0] + pieces[ids[i + 1]][0]
            j = vocab.get(merged)
            if j is not None and scores[j] > best:
                best, best_i, best_id = scores[j], i, j
        if best_i < 0:
            return ids
        ids[best_i:best_i + 2] = [best_id]


CHECK_TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her friends.",
    "One day, Tom said: \"Let's go!\" and they ran   to the big tree.",
    "The cat sat on the mat. 12345 apples, 3.14 pies.",
    "Zoë's café — naïve résumé 你好 🙂",
    "  leading spaces and trailing  ",
    "line one\nline two\r\n\ttabbed",
]


def check(path, pieces):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    failures = 0
    for text in CHECK_TEXTS:
        hf = tok.encode(text).ids
        ref = llama2c_encode(pieces, text)
        back = tok.decode(hf, skip_special_tokens=True)
        ok = hf == ref and back == text
        failures += not ok
        print(("ok  " if ok else "BAD ") + repr(text))
        print("     tokens:", tok.encode(text).tokens)
        if hf != ref:
            print("     HF      ", hf, "\n     llama2.c", ref)
        if back != text:
            print("     decoded ", repr(back))
    return failures == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default=ROOT / "models/stories260k/tok512.bin")
    ap.add_argument("--output", default=ROOT / "models/stories260k/tokenizer.json")
    ap.add_argument("--check", action="store_true", help="verify with Hugging Face tokenizers")
    args = ap.parse_args()
    pieces = read_llama2c(args.input)
    tj = build(pieces)
    Path(args.output).write_text(json.dumps(tj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(tj['model']['vocab'])} tokens, {len(tj['model']['merges'])} merges")
    if args.check and not check(args.output, pieces):
        sys.exit(1)


if __name__ == "__main__":
    main()
