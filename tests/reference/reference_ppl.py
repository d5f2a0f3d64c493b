#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference perplexity with the Hugging Face strided sliding-window method (float64 NumPy forward).

    /usr/bin/python3 tests/reference/reference_ppl.py MODEL_DIR IDS_JSON --ctx C --stride S [--windows]

IDS_JSON: a JSON array of token ids (one token stream, "the file").  A JSON array of arrays is also
accepted: each inner array is an independent stream and the sums below are added over streams.

Output (stdout): {"nll_sum": <float, natural log>, "tokens": <int>, "ppl": exp(nll_sum / tokens)}
(--windows adds "windows": [[begin, end, scored], ...]).

Window convention (exactly the HF "Perplexity of fixed-length models" loop, with an exact token count):
    N = len(ids); prev_end = 0
    for begin in range(0, N, S):
        end = min(begin + C, N)
        trg_len = end - prev_end            # tokens not scored by an earlier window
        run the model on ids[begin:end] (positions restart at 0 in every window)
        score the window's last trg_len tokens: for every global position p in [end - trg_len, end)
            with p > begin, add -log softmax(logits[p - 1 - begin])[ids[p]]
        prev_end = end
        if end == N: break
  * The first token of a window has no prediction inside that window, so it is never scored there
    (HF label shift).  Hence with 1 <= S < C every token except ids[0] is scored exactly once
    (tokens == N - 1).  With S == C (non-overlapping windows) the first token of every window is
    skipped as in HF: tokens == N - ceil(N / C).  S > C is rejected (it would skip tokens).
  * nll is summed exactly over scored tokens (not HF's approximate trg_len-weighted mean).
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_forward import Model, log_softmax  # noqa: E402


def stream_nll(model, ids, ctx, stride, windows=None):
    ids = np.asarray(ids, dtype=np.int64)
    N = len(ids)
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, N, stride):
        end = min(begin + ctx, N)
        trg_len = end - prev_end
        first = max(end - trg_len, begin + 1)
        if first < end:
            logits = model.forward(ids[None, begin:end])[0]  # [end-begin, V]
            lp = log_softmax(logits[first - 1 - begin:end - 1 - begin], axis=-1)
            tgt = ids[first:end]
            nll -= float(lp[np.arange(len(tgt)), tgt].sum())
            count += end - first
        if windows is not None:
            windows.append([begin, end, max(0, end - first)])
        prev_end = end
        if end == N:
            break
    return nll, count


def perplexity(model, streams, ctx, stride, windows=None):
    if ctx < 1 or stride < 1 or stride > ctx:
        raise ValueError("need 1 <= stride <= ctx")
    nll, count = 0.0, 0
    for s in streams:
        a, b = stream_nll(model, s, ctx, stride, windows)
        nll += a
        count += b
    ppl = math.exp(nll / count) if count else float("nan")
    return {"nll_sum": nll, "tokens": count, "ppl": ppl}


def main(argv=None):
    ap = argparse.ArgumentParser(description="HF strided-window perplexity (reference)")
    ap.add_argument("model_dir")
    ap.add_argument("ids_json")
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--stride", type=int, required=True)
    ap.add_argument("--windows", action="store_true", help="also list [begin, end, scored] per window")
    ap.add_argument("--allow-unused", action="store_true")
    a = ap.parse_args(argv)
    with open(a.ids_json, "r", encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise SystemExit("IDS_JSON must be a JSON array")
    streams = data if data and all(isinstance(x, list) for x in data) else [data]
    model = Model(a.model_dir, allow_unused=a.allow_unused)
    windows = [] if a.windows else None
    res = perplexity(model, streams, a.ctx, a.stride, windows)
    if windows is not None:
        res["windows"] = windows
    print(json.dumps(res))


if __name__ == "__main__":
    main()
