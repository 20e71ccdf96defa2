"""The tokenizer.json qlc synthesizes from GGUF metadata (`qlc gguf-tokenizer`) against the
tokenizer transformers builds from the same file (AutoTokenizer.from_pretrained(...,
gguf_file=...)): the same JSON apart from the post processor, and the same ids for a set of
awkward texts.

The one intended difference: qlc's post processor adds BOS/EOS as the file's
tokenizer.ggml.add_bos_token/add_eos_token say (llama.cpp's behaviour), where transformers
never adds them for a GGUF tokenizer; so with add_bos_token, qlc's ids are transformers'
with BOS in front.

Needs torch, transformers, tokenizers and gguf; skipped without them (run it with an
environment that has them, e.g. `/tmp/venv/bin/python -m pytest test/e2e/test_gguf_tokenizer.py`).
Covers: a SentencePiece llama vocabulary without merges (stories260k: merges derived from
scores), the same without token types, a byte-level BPE llama-3 style one (SmolLM2's
GGUF), and that vocabulary under architecture qwen2 (GGUFQwen2Converter).
"""
import json
import subprocess
import sys

import pytest

from conftest import SOURCE_DIR, run_ok

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")
gguf = pytest.importorskip("gguf")

from test_smollm2 import gguf_file  # noqa: E402,F401  (fixture: the SmolLM2 GGUF)

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "Hello world, this is a test.",
    "  leading spaces,\ttabs\n\nand newlines  ",
    "Ünïcödé — 日本語のテキスト 🤖 emoji",
    "<s>special</s> <|im_start|>user\nHi<|im_end|>",
    "1234567890 3.14159 x^2 + y_1 = z",
    "def f(x):\n    return x ** 2  # comment",
    "",
    " ",
]


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "make_gguf_fixture.py"),
                    "--out", str(out)], check=True)
    return out / "stories260k.gguf"


def rewrite(src, dst, arch=None, drop=(), extra=None):
    """Copies the metadata of `src` (no tensors) into `dst`, renaming the architecture's
    keys to `arch` and leaving out the keys in `drop`."""
    r = gguf.GGUFReader(str(src))
    old = r.fields["general.architecture"].contents()
    arch = arch or old
    w = gguf.GGUFWriter(str(dst), arch=arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", *drop):
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        name = arch + key[len(old):] if key.startswith(old + ".") else key
        w.add_key_value(name, f.contents(), vtype, sub_type=sub)
    for key, (value, vtype) in (extra or {}).items():
        w.add_key_value(key, value, vtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def compare(path):
    ours_text = run_ok("qlc", "gguf-tokenizer", path).stdout
    hf = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    theirs = json.loads(hf.backend_tokenizer.to_str())
    ours = json.loads(ours_text)
    assert list(ours) == list(theirs)
    for key in theirs:
        if key != "post_processor":
            assert ours[key] == theirs[key], key
    fields = gguf.GGUFReader(str(path)).fields
    add_bos = ("tokenizer.ggml.add_bos_token" in fields
               and fields["tokenizer.ggml.add_bos_token"].contents())
    bos = fields["tokenizer.ggml.bos_token_id"].contents() if add_bos else None
    if not add_bos:
        assert ours["post_processor"] == theirs["post_processor"]
    tok = tokenizers.Tokenizer.from_str(ours_text)
    for text in TEXTS:
        plain = hf(text, add_special_tokens=False)["input_ids"]
        assert tok.encode(text, add_special_tokens=False).ids == plain, text
        assert tok.encode(text).ids == ([bos] if add_bos else []) + hf(text)["input_ids"], text
        assert tok.decode(plain, skip_special_tokens=False) == \
            hf.backend_tokenizer.decode(plain, skip_special_tokens=False), text


def test_sentencepiece_vocabulary(stories):
    compare(stories)


def test_sentencepiece_without_token_types(stories, tmp_path):
    compare(rewrite(stories, tmp_path / "notypes.gguf", drop=("tokenizer.ggml.token_type",)))


def test_sentencepiece_without_space_prefix(stories, tmp_path):
    compare(rewrite(stories, tmp_path / "noprefix.gguf", drop=("tokenizer.ggml.add_space_prefix",),
                    extra={"tokenizer.ggml.add_space_prefix": (False, gguf.GGUFValueType.BOOL)}))


def test_byte_level_bpe_vocabulary(gguf_file, tmp_path):
    compare(rewrite(gguf_file, tmp_path / "smollm2-tok.gguf"))


def test_qwen2_converter(gguf_file, tmp_path):
    compare(rewrite(gguf_file, tmp_path / "qwen2-tok.gguf", arch="qwen2"))
