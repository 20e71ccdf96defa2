"""GPTQ and AWQ end to end (`qlc compile --quant gptq-w4|gptq-w8|awq-w4|awq-w8`):
calibration on text, the compiled artifacts run, and their perplexity is no worse than
round-to-nearest's at the same group size.

stories260k was trained on TinyStories; its calibration and evaluation texts are stories
sampled from the float model itself with different seeds (so they are disjoint and of
the kind of text the model knows).
"""
import pytest

from conftest import DEMO_MODEL, FIXTURES, run, run_ok


def perplexity(artifact, text_file):
    out = run_ok("qlc-run", artifact, "--perplexity", text_file, "--ctx", "256").stdout
    last = out.strip().splitlines()[-1]
    assert last.startswith("perplexity: "), out
    return float(last.split()[1])


@pytest.fixture(scope="module")
def story_texts(artifact_cache, tmp_path_factory):
    """(calibration text, evaluation text), sampled from the float stories260k."""
    art = artifact_cache(DEMO_MODEL)
    d = tmp_path_factory.mktemp("stories")

    def sample(seeds):
        stories = []
        for seed in seeds:
            out = run_ok("qlc-run", art, "--prompt", "Once upon a time", "-n", "200",
                         "--temperature", "1.0", "--seed", seed).stdout
            stories.append(out.strip())
        return "\n\n".join(stories) + "\n"

    calib, evaluation = d / "calib.txt", d / "eval.txt"
    calib.write_text(sample(range(1, 25)))
    evaluation.write_text(sample(range(1000, 1016)))
    return calib, evaluation


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, story_texts):
    d = tmp_path_factory.mktemp("gptq")
    cache = {}

    def get(quant, *extra):
        key = (quant,) + extra
        if key not in cache:
            out = d / f"{'-'.join(key).replace('--', '')}.so"
            args = ["compile", DEMO_MODEL, "-o", out, "--quant", quant, "--group-size", "32",
                    *extra]
            if quant.startswith(("gptq", "awq")):
                args += ["--calib", story_texts[0], "--calib-samples", "32",
                         "--calib-seqlen", "128"]
            p = run_ok("qlc", *args)
            cache[key] = (out, p.stderr)
        return cache[key]

    return get


@pytest.mark.parametrize("extra", [(), ("--act-order",)])
def test_gptq_w4_perplexity_is_no_worse_than_rtn(compiled, story_texts, extra):
    gptq, log = compiled("gptq-w4", *extra)
    rtn, _ = compiled("rtn-w4")
    f32, _ = compiled("none")
    p_gptq, p_rtn, p_f32 = (perplexity(a, story_texts[1]) for a in (gptq, rtn, f32))
    print(f"stories260k g32 perplexity: f32 {p_f32:.4f} rtn-w4 {p_rtn:.4f} "
          f"gptq-w4{' act-order' if extra else ''} {p_gptq:.4f}")
    assert p_gptq <= p_rtn
    assert p_gptq < 2 * p_f32
    # One progress line per decoder layer, with an ETA, and the time of each stage.
    blocks = [line for line in log.splitlines() if "qlc: gptq: block" in line]
    assert len(blocks) == 5 and "ETA" in blocks[-1] and "block 5/5" in blocks[-1]
    assert "forward" in log and "hessians" in log and "calibrating on 32 x 128 tokens" in log


def test_gptq_w8_is_close_to_float(compiled, story_texts):
    gptq, _ = compiled("gptq-w8")
    f32, _ = compiled("none")
    p8, p32 = perplexity(gptq, story_texts[1]), perplexity(f32, story_texts[1])
    assert abs(p8 - p32) <= 0.01 * p32


def test_gptq_names_its_tensors_and_runs_the_int_kernels(compiled):
    art, _ = compiled("gptq-w4", "--act-order")
    out = run_ok("qlc", "inspect", art).stdout
    assert ".gptq4ag32o.qweight" in out
    assert "model.layers.0.mlp.down_proj.weight.gptq4ag32o" in out


def test_awq_w4_perplexity_is_no_worse_than_rtn(compiled, story_texts):
    awq, log = compiled("awq-w4")
    rtn, _ = compiled("rtn-w4")
    p_awq, p_rtn = perplexity(awq, story_texts[1]), perplexity(rtn, story_texts[1])
    print(f"stories260k g32 perplexity: rtn-w4 {p_rtn:.4f} awq-w4 {p_awq:.4f}")
    assert p_awq <= p_rtn
    blocks = [line for line in log.splitlines() if "qlc: awq: block" in line]
    assert len(blocks) == 5 and "ETA" in blocks[-1]
    assert "scale search" in log and "clipping search" in log


def test_awq_w8_is_close_to_float(compiled, story_texts):
    # 8 bits hide the rounding, not a wrong fold: the scales moved into the norms and
    # into up_proj must cancel exactly.
    awq, _ = compiled("awq-w8")
    f32, _ = compiled("none")
    p8, p32 = perplexity(awq, story_texts[1]), perplexity(f32, story_texts[1])
    assert abs(p8 - p32) <= 0.01 * p32


def test_awq_folds_scales_into_the_norms(compiled):
    art, _ = compiled("awq-w4")
    out = run_ok("qlc", "inspect", art, "--json").stdout
    assert "model.layers.0.input_layernorm.weight.awq" in out
    assert "model.layers.0.post_attention_layernorm.weight.awq" in out
    assert "model.layers.0.mlp.down_proj.weight.awq4ag32.qweight" in out


def test_awq_refuses_act_order(tmp_path):
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "x.so", "--quant", "awq-w4",
            "--act-order")
    assert p.returncode == 2 and "--act-order" in p.stderr, p.stderr


def test_fixture_without_tokenizer_calibrates_on_token_ids(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(str((i * 37) % 250) for i in range(4000)))
    out = tmp_path / "gqa.so"
    run_ok("qlc", "compile", FIXTURES / "llama-gqa-bf16", "-o", out, "--quant", "gptq-w4",
           "--group-size", "32", "--calib-tokens", ids, "--calib-samples", "8",
           "--calib-seqlen", "64")
    tokens = (FIXTURES / "llama-gqa-bf16" / "ref" / "tokens_17.txt").read_text().strip()
    npy = tmp_path / "l.npy"
    run_ok("qlc-run", out, "--tokens", tokens, "--dump-logits", npy)
    p = run("qlc", "compile", FIXTURES / "llama-gqa-bf16", "-o", out, "--quant", "gptq-w4")
    assert p.returncode == 2 and "--calib-tokens" in p.stderr and "tokenizer" in p.stderr


@pytest.mark.parametrize("args,needle", [
    (["--calib", "/nonexistent/calib.txt"], "--calib /nonexistent/calib.txt: no such file"),
    (["--calib-tokens", "/nonexistent/ids.txt"], "--calib-tokens /nonexistent/ids.txt"),
    (["--calib-samples", "0"], "--calib-samples must be in"),
    (["--calib-samples", "many"], "--calib-samples"),
    (["--calib-seqlen", "1"], "--calib-seqlen must be in"),
    (["--calib-seqlen", "100000"], "--calib-seqlen must be in"),
])
@pytest.mark.parametrize("quant", ["gptq-w4", "awq-w4"])
def test_bad_calibration_input_is_exit_2(tmp_path, args, needle, quant):
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "x.so", "--quant", quant, *args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert needle in lines[-1], p.stderr


def test_calibration_flags_need_a_calibrated_scheme(tmp_path):
    for args in (["--calib-samples", "8"], ["--act-order"]):
        p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "x.so", "--quant", "rtn-w4", *args)
        assert p.returncode == 2 and "gptq-*, awq-*" in p.stderr, p.stderr


def test_bad_calibration_token_ids(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("1 2 x 4")
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "x.so", "--quant", "gptq-w4",
            "--calib-tokens", ids)
    assert p.returncode == 2 and "'x' is not a token id" in p.stderr
    ids.write_text(" ".join(["600"] * 600))  # outside stories260k's 512-token vocabulary
    p = run("qlc", "compile", DEMO_MODEL, "-o", tmp_path / "x.so", "--quant", "gptq-w4",
            "--calib-tokens", ids, "--calib-seqlen", "64")
    assert p.returncode == 2 and "600" in p.stderr, p.stderr


def test_dump_weights_refuses_calibrated_schemes(tmp_path):
    p = run("qlc", "dump-weights", DEMO_MODEL, "--quant", "gptq-w4", "--out", tmp_path)
    assert p.returncode == 2 and "does not calibrate" in p.stderr, p.stderr
