#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Perplexity over the chunks llama-perplexity scores (float64 NumPy reference forward).

    /usr/bin/python3 tests/reference/llama_chunk_ppl.py MODEL_DIR IDS_JSON --ctx C [--chunks K]

IDS_JSON: a JSON array of token ids (the text as `moewb tokenize` gives it).
llama-perplexity (without --ppl-stride) cuts the tokens into N // C non-overlapping chunks of C
tokens, runs each chunk from position 0 and scores only the second half: the predictions of the
tokens at chunk positions C/2 + 1 ... C - 1 (C/2 - 1 tokens per chunk). --chunks K keeps the first
K chunks (llama-perplexity's --chunks). Output: {"chunks", "tokens", "nll_sum", "ppl"}.
Used for the llama.cpp comparison in docs/export-gguf.md; not part of ctest.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_forward import Model, log_softmax  # noqa: E402


def chunk_ppl(model, ids, ctx, max_chunks=None):
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids) // ctx
    if max_chunks is not None:
        n = min(n, max_chunks)
    first = ctx // 2
    nll, count = 0.0, 0
    for c in range(n):
        chunk = ids[c * ctx:(c + 1) * ctx]
        logits = model.forward(chunk[None, :])[0]
        lp = log_softmax(logits[first:ctx - 1], axis=-1)
        tgt = chunk[first + 1:ctx]
        nll -= float(lp[np.arange(len(tgt)), tgt].sum())
        count += len(tgt)
    return {"chunks": n, "tokens": count, "nll_sum": nll, "ppl": math.exp(nll / count) if count else float("nan")}


def main(argv=None):
    ap = argparse.ArgumentParser(description="llama-perplexity's chunks, reference forward")
    ap.add_argument("model_dir")
    ap.add_argument("ids_json")
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--chunks", type=int, default=None)
    a = ap.parse_args(argv)
    with open(a.ids_json, "r", encoding="utf-8") as f:
        ids = json.load(f)
    print(json.dumps(chunk_ppl(Model(a.model_dir), ids, a.ctx, a.chunks)))


if __name__ == "__main__":
    main()
