#!/usr/bin/env python3
"""A straightforward numpy GPTQ, and the small reference results qlc's C++ GPTQ is tested on.

The algorithm is the paper's (Frantar et al., 2022, Algorithm 1) as the authors' gptq.py
(`GPTQ.fasterquant`) and AutoGPTQ run it: dead columns, dampening by a fraction of the
mean diagonal, the upper Cholesky factor of the inverse Hessian, lazy batch updates of
`blocksize` columns, groups whose parameters are found when their first column comes up
(from the weight as the previous blocks' updates left it), act-order with static groups.
The quantizer is AutoGPTQ's min/max quantizer with qlc's storage rounding: the scale is
rounded to f16 first and the integers are computed with the rounded scale
(passes/QuantUtil.cpp, groupScaleZero), in float32 as it does.

    python3 scripts/gptq_reference.py test/fixtures/gptq    # rewrites the fixtures

Writes W.npy [24, 72] float32, H.npy [72, 72] float64 (= X^T X, one dead feature) and
per case <case>.codes.npy (uint8 [24, 72], natural column order), <case>.scales.npy
(float32, the f16 values, [24, groups]), <case>.zeros.npy (uint8 [24, groups]) plus
cases.json with the parameters and the output errors of GPTQ and RTN.
"""
import json
import sys
from pathlib import Path

import numpy as np


def find_params(x, bits, sym):
    """Per-row scale and zero of x [rows, len] (QuantUtil's groupScaleZero, vectorized)."""
    x = x.astype(np.float32)
    maxq = np.float32(2 ** bits - 1)
    lo = np.minimum(x.min(1), np.float32(0))
    hi = np.maximum(x.max(1), np.float32(0))
    if sym:
        m = np.maximum(np.abs(lo), hi)
        lo, hi = -m, m
    both = (lo == 0) & (hi == 0)
    lo = np.where(both, np.float32(-1), lo)
    hi = np.where(both, np.float32(1), hi)
    scale = ((hi - lo) / maxq).astype(np.float16).astype(np.float32)
    scale = np.where(scale == 0, np.float32(2.0 ** -24), scale)
    if sym:
        zero = np.full_like(scale, (maxq + 1) // 2)
    else:
        zero = np.clip(np.round(-lo / scale), 0, maxq).astype(np.float32)
    return scale.astype(np.float64), zero.astype(np.float64)


def quantize(w, scale, zero, maxq):
    q = np.clip(np.round(w / scale) + zero, 0, maxq)
    return q, scale * (q - zero)


def gptq(W, H, bits=4, group_size=-1, sym=False, percdamp=0.01, blocksize=128,
         actorder=False, static_groups=False):
    """Returns (codes [n, k], scales [n, G], zeros [n, G]) in natural column order."""
    W = W.astype(np.float64).copy()
    H = H.astype(np.float64).copy()
    n, k = W.shape
    maxq = 2 ** bits - 1
    gs = k if group_size <= 0 or group_size > k else group_size
    G = (k + gs - 1) // gs
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    scales = np.zeros((n, G))
    zeros = np.zeros((n, G))
    codes = np.zeros((n, k))
    if gs == k:
        fixed = [find_params(W, bits, sym)]
    elif static_groups:
        fixed = [find_params(W[:, i:i + gs], bits, sym) for i in range(0, k, gs)]
    perm = np.arange(k)
    if actorder:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
    damp = percdamp * np.mean(np.diag(H))
    H[np.arange(k), np.arange(k)] += damp
    L = np.linalg.cholesky(H)
    Linv = np.linalg.inv(L)
    Hinv = np.linalg.cholesky(Linv.T @ Linv).T  # upper Cholesky factor of H^-1
    params = None
    for i1 in range(0, k, blocksize):
        i2 = min(i1 + blocksize, k)
        count = i2 - i1
        W1 = W[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            j = i1 + i
            nat = perm[j]
            if gs == k:
                params = fixed[0]
            elif static_groups:
                params = fixed[nat // gs]
            elif j % gs == 0:
                params = find_params(W[:, j:j + gs], bits, sym)
            scales[:, nat // gs], zeros[:, nat // gs] = params
            w = W1[:, i]
            d = Hinv1[i, i]
            c, q = quantize(w, params[0], params[1], maxq)
            codes[:, nat] = c
            err1 = (w - q) / d
            W1[:, i:] -= np.outer(err1, Hinv1[i, i:])
            Err1[:, i] = err1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return codes.astype(np.uint8), scales.astype(np.float32), zeros.astype(np.uint8)


def rtn(W, bits, group_size, sym):
    n, k = W.shape
    gs = k if group_size <= 0 or group_size > k else group_size
    Q = np.zeros_like(W, dtype=np.float64)
    for b in range(0, k, gs):
        s, z = find_params(W[:, b:b + gs], bits, sym)
        Q[:, b:b + gs] = quantize(W[:, b:b + gs], s[:, None], z[:, None], 2 ** bits - 1)[1]
    return Q


def dequant(codes, scales, zeros, group_size):
    k = codes.shape[1]
    gs = k if group_size <= 0 or group_size > k else group_size
    g = np.arange(k) // gs
    return (codes.astype(np.float64) - zeros[:, g]) * scales[:, g].astype(np.float64)


def out_err(W, Q, X):
    return float(np.linalg.norm(X @ (W.astype(np.float64) - Q).T))


CASES = {
    "g32_asym_b20": dict(bits=4, group_size=32, sym=False, blocksize=20),
    "g32_sym_actorder_static_b16": dict(bits=4, group_size=32, sym=True, blocksize=16,
                                        actorder=True, static_groups=True),
    "pc_asym_actorder": dict(bits=4, group_size=0, sym=False, blocksize=128, actorder=True),
    "w8_g32_asym": dict(bits=8, group_size=32, sym=False, blocksize=128),
}


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    n, k, t = 24, 72, 256
    # Correlated features of unequal scale, as activations are; feature 5 never fires.
    X = rng.standard_normal((t, k)) @ (np.eye(k) + 0.3 * rng.standard_normal((k, k)))
    X *= np.exp(rng.standard_normal(k))
    X[:, 5] = 0
    H = X.T @ X
    W = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    np.save(out / "W.npy", W)
    np.save(out / "H.npy", H)
    summary = {}
    for name, c in CASES.items():
        codes, scales, zeros = gptq(W, H, **c)
        np.save(out / f"{name}.codes.npy", codes)
        np.save(out / f"{name}.scales.npy", scales)
        np.save(out / f"{name}.zeros.npy", zeros)
        e_gptq = out_err(W, dequant(codes, scales, zeros, c["group_size"]), X)
        e_rtn = out_err(W, rtn(W, c["bits"], c["group_size"], c["sym"]), X)
        summary[name] = dict(c, gptq_error=e_gptq, rtn_error=e_rtn)
        print(f"{name:30s} |WX-QX|: gptq {e_gptq:.5f}  rtn {e_rtn:.5f}")
    (out / "cases.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/gptq")
