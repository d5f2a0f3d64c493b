#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Paired comparison of two `moewb eval --kld-ref ... --out X.json` runs on the same text (#26,
docs/export-gguf.md): Δ = pooled mean KLD of A − that of B over the windows both scored, with a
percentile bootstrap 95 % interval over the windows (2,000 resamples, NumPy seed 0), as
docs/evaluation.md describes for the pipeline.

    scripts/paired_kld.py A.eval.json B.eval.json      # prints: Δ [lo, hi] rel % (windows)
"""
import json
import sys

import numpy as np


def windows(path):
    x = json.load(open(path))["perplexity"][0]
    if "window_kld" not in x:
        sys.exit(f"{path}: no window_kld (run moewb eval with --kld-ref and --out)")
    return np.array(x["window_kld"], float), np.array(x["window_tokens"], float)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, wa = windows(sys.argv[1])
    b, wb = windows(sys.argv[2])
    if len(a) != len(b) or not (wa == wb).all():
        sys.exit(f"{sys.argv[1]}, {sys.argv[2]}: not the same windows")
    idx = np.random.default_rng(0).integers(0, len(a), size=(2000, len(a)))
    tokens = wa[idx].sum(1)
    d = a[idx].sum(1) / tokens - b[idx].sum(1) / tokens
    diff = (a.sum() - b.sum()) / wa.sum()
    lo, hi = np.quantile(d, [0.025, 0.975])
    print(f"{diff:+.6f} [{lo:+.6f}, {hi:+.6f}] {100 * diff / (b.sum() / wa.sum()):+.1f} % ({len(a)} windows)")


if __name__ == "__main__":
    main()
