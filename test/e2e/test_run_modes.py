"""qlc-run's perplexity and sampling modes, checked against the logits it dumps."""
import numpy as np

from conftest import DEMO_MODEL, FIXTURES, run, run_ok


def test_perplexity_equals_the_dumped_logits(artifact_cache, tmp_path):
    art = artifact_cache(DEMO_MODEL)
    ids = (FIXTURES / "stories260k" / "ref" / "tokens_317.txt").read_text().split()
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(" ".join(ids))
    out = run_ok("qlc-run", art, "--perplexity-tokens", ids_file, "--ctx", "100").stdout
    last = out.strip().splitlines()[-1]
    assert last.startswith("perplexity: ") and last.endswith(" tokens")
    value, n = float(last.split()[1]), int(last.split()[3])
    # Windows of 100, 100, 100 and 17 tokens; each scores all but its first token.
    assert n == 99 * 3 + 16
    nll = []
    for b in range(0, len(ids), 100):
        window = ids[b:b + 100]
        npy = tmp_path / f"w{b}.npy"
        run_ok("qlc-run", art, "--tokens", " ".join(window), "--dump-logits", npy)
        logits = np.load(npy).astype(np.float64)
        lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        targets = np.array(window[1:], dtype=np.int64)
        nll.extend(lse[:-1] - logits[np.arange(len(targets)), targets])
    assert len(nll) == n
    assert abs(value - np.exp(np.mean(nll))) <= 1e-4 * value


def test_perplexity_max_chunks_and_errors(artifact_cache, tmp_path):
    art = artifact_cache(DEMO_MODEL)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(" ".join(str(i % 500) for i in range(1000)))
    out = run_ok("qlc-run", art, "--perplexity-tokens", ids_file, "--ctx", "128",
                 "--max-chunks", "2").stdout
    assert out.strip().splitlines()[-1].endswith("over 254 tokens")
    ids_file.write_text("5")
    p = run("qlc-run", art, "--perplexity-tokens", ids_file)
    assert p.returncode == 2 and "at least 2 tokens" in p.stderr
    p = run("qlc-run", art, "--perplexity-tokens", tmp_path / "missing.txt")
    assert p.returncode == 2 and "missing.txt" in p.stderr


def test_sampling_is_seeded_and_in_range(artifact_cache):
    art = artifact_cache(DEMO_MODEL)
    args = ["--tokens", "1 403 407", "-n", "30", "--temperature", "0.9", "--top-k", "50",
            "--top-p", "0.9", "--min-p", "0.02", "--repetition-penalty", "1.1"]
    a = run_ok("qlc-run", art, *args, "--seed", "7").stdout.split()
    b = run_ok("qlc-run", art, *args, "--seed", "7").stdout.split()
    c = run_ok("qlc-run", art, *args, "--seed", "8").stdout.split()
    assert a == b
    assert a != c
    assert all(0 <= int(t) < 512 for t in a + c)
    p = run("qlc-run", art, "--tokens", "1", "-n", "3", "--top-p", "0")
    assert p.returncode == 2 and "--top-p" in p.stderr


def test_artifact_named_without_a_directory(artifact_cache, tmp_path):
    """A bare file name is the file in the current directory, not a library-path search."""
    import shutil
    import subprocess
    from conftest import tool
    shutil.copy(artifact_cache(DEMO_MODEL), tmp_path / "model.so")
    from pathlib import Path
    p = subprocess.run([str(Path(tool("qlc-run")).resolve()), "model.so", "--tokens", "1 403", "-n", "3"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.split()) >= 1
