#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Unigram (add-one) and bigram (add-k) baseline perplexity of the demo corpus.

    /usr/bin/python3 datasets/unigram_ppl.py [--tokenizer TOKENIZER_JSON_OR_MODEL_DIR]
        [--train $CORPUS_V2/train.jsonl] [--eval-dir datasets/corpus-v2/eval]
        [--tune datasets/corpus-v2/calib.jsonl] [--bigram-k K] [--max-train-tokens N] [--json]

The defaults are the demo corpus v2 and its tokenizer (datasets/tokenizer-v2). Its train split is not
committed: scripts/train_demo_models.sh rebuilds it into $CORPUS_V2 (default /work/corpus-v2).

Token frequencies are estimated on the train split, tokenized with `moewb tokenize` (the binary in
$MOEWB, else build/app/cli/moewb, else build/bin/moewb). Each document of the train JSONL is tokenized
on its own, as calibration and training do.

  unigram  p(t) = (c_t + 1) / (N + V)                  add-one over the whole vocabulary V
  bigram   p(t | s) = (c_st + k) / (c_s. + k V)          add-k, pairs counted inside documents;
                                                         k is chosen on --tune (the calibration split,
                                                         never the evaluation text) from a fixed grid
                                                         unless --bigram-k is given

V is the tokenizer's vocabulary (highest id + 1), or config.json vocab_size when larger (a model
directory), so both baselines spread mass over the same outcomes as the model's softmax.

Each evaluation file (<eval-dir>/<domain>.txt) is tokenized whole, exactly as `moewb eval --ppl FILE`
does, and every token after the first is scored (the first has no context in `moewb eval` either):
ppl = exp(sum of -ln p / scored tokens). The "all" row pools the files' NLL sums and token counts.
Output: a table (plain text), or with --json one JSON object.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K_GRID = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]


def find_moewb():
    for p in (os.environ.get("MOEWB"), os.path.join(REPO, "build/app/cli/moewb"), os.path.join(REPO, "build/bin/moewb")):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    sys.exit("unigram_ppl.py: no moewb binary: set $MOEWB or build it (cmake --build build --target moewb)")


def vocab_size(tok):
    """Highest token id + 1 of tokenizer.json; config.json vocab_size if tok is a model directory and larger."""
    path = os.path.join(tok, "tokenizer.json") if os.path.isdir(tok) else tok
    with open(path, encoding="utf-8") as f:
        t = json.load(f)
    ids = list(t["model"]["vocab"].values()) + [a["id"] for a in t.get("added_tokens", [])]
    v = max(ids) + 1
    cfg = os.path.join(tok, "config.json")
    if os.path.isdir(tok) and os.path.isfile(cfg):
        with open(cfg, encoding="utf-8") as f:
            v = max(v, int(json.load(f).get("vocab_size", 0)))
    return v


def tokenize(moewb, tok, flag, path):
    """`moewb tokenize TOK --file F` -> one id array; `--jsonl F` -> one id array per line."""
    out = subprocess.run([moewb, "tokenize", tok, flag, path], check=True, capture_output=True).stdout
    if flag == "--file":
        return np.asarray(json.loads(out), dtype=np.int64)
    return [np.asarray(json.loads(line), dtype=np.int64) for line in out.splitlines() if line.strip()]


class Baselines:
    def __init__(self, docs, v):
        self.v = v
        ids = np.concatenate(docs) if docs else np.zeros(0, np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= v):
            sys.exit(f"unigram_ppl.py: token id {int(ids.max())} outside the vocabulary of {v}")
        self.n = int(ids.size)
        self.uni = np.bincount(ids, minlength=v).astype(np.float64)
        # Bigram keys s*V + t for consecutive tokens inside each document.
        keys = np.concatenate([d[:-1] * v + d[1:] for d in docs if d.size > 1]) if docs else np.zeros(0, np.int64)
        self.pair_keys, self.pair_counts = np.unique(keys, return_counts=True)
        self.ctx = np.bincount(keys // v, minlength=v).astype(np.float64)  # c_s. (s as a predecessor)

    def unigram_nll(self, ids):
        """sum over ids[1:] of -ln p(t)."""
        p = (self.uni[ids[1:]] + 1.0) / (self.n + self.v)
        return float(-np.log(p).sum())

    def bigram_nll(self, ids, k):
        """sum over ids[1:] of -ln p(t | previous token)."""
        s, t = ids[:-1], ids[1:]
        keys = s * self.v + t
        pos = np.searchsorted(self.pair_keys, keys)
        pos = np.minimum(pos, max(len(self.pair_keys) - 1, 0))
        c = np.where(self.pair_keys[pos] == keys, self.pair_counts[pos], 0) if len(self.pair_keys) else np.zeros(len(keys))
        p = (c + k) / (self.ctx[s] + k * self.v)
        return float(-np.log(p).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=os.path.join(REPO, "datasets/tokenizer-v2/tokenizer.json"),
                    help="tokenizer.json or a model directory holding one (default: the demo tokenizer)")
    ap.add_argument("--train", default=os.path.join(os.environ.get("CORPUS_V2", "/work/corpus-v2"), "train.jsonl"))
    ap.add_argument("--eval-dir", default=os.path.join(REPO, "datasets/corpus-v2/eval"))
    ap.add_argument("--tune", default=os.path.join(REPO, "datasets/corpus-v2/calib.jsonl"),
                    help="JSONL on which the bigram k is chosen (default: the calibration split)")
    ap.add_argument("--bigram-k", type=float, default=None, help="fixed add-k constant (skips tuning)")
    ap.add_argument("--max-train-tokens", type=int, default=0,
                    help="use only the first N train tokens (whole documents; 0 = all)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = ap.parse_args()

    moewb = find_moewb()
    v = vocab_size(a.tokenizer)
    docs = tokenize(moewb, a.tokenizer, "--jsonl", a.train)
    if a.max_train_tokens > 0:
        kept, n = [], 0
        for d in docs:
            if n >= a.max_train_tokens:
                break
            kept.append(d)
            n += d.size
        docs = kept
    model = Baselines(docs, v)

    if a.bigram_k is not None:
        k, tuned = a.bigram_k, None
    else:
        tune_docs = [d for d in tokenize(moewb, a.tokenizer, "--jsonl", a.tune) if d.size > 1]
        n_tune = sum(d.size - 1 for d in tune_docs)
        tuned = {kk: math.exp(sum(model.bigram_nll(d, kk) for d in tune_docs) / n_tune) for kk in K_GRID}
        k = min(K_GRID, key=lambda kk: tuned[kk])

    names = sorted(f[:-4] for f in os.listdir(a.eval_dir) if f.endswith(".txt"))
    if not names:
        sys.exit(f"unigram_ppl.py: no *.txt in {a.eval_dir}")
    rows, tot_n, tot_u, tot_b = [], 0, 0.0, 0.0
    for name in names:
        ids = tokenize(moewb, a.tokenizer, "--file", os.path.join(a.eval_dir, name + ".txt"))
        n = int(ids.size) - 1
        if n <= 0:
            continue
        u, b = model.unigram_nll(ids), model.bigram_nll(ids, k)
        rows.append({"domain": name, "tokens": n, "unigram_nll": u, "bigram_nll": b,
                     "unigram_ppl": math.exp(u / n), "bigram_ppl": math.exp(b / n)})
        tot_n, tot_u, tot_b = tot_n + n, tot_u + u, tot_b + b
    rows.append({"domain": "all", "tokens": tot_n, "unigram_nll": tot_u, "bigram_nll": tot_b,
                 "unigram_ppl": math.exp(tot_u / tot_n), "bigram_ppl": math.exp(tot_b / tot_n)})

    if a.json:
        print(json.dumps({"tokenizer": a.tokenizer, "vocab_size": v, "train": a.train, "train_tokens": model.n,
                          "train_documents": len(docs), "bigram_k": k,
                          "bigram_k_tuning": None if tuned is None else {"file": a.tune, "ppl": {str(kk): p for kk, p in tuned.items()}},
                          "rows": rows}, indent=2))
        return
    print(f"baselines from {model.n} train tokens ({len(docs)} documents) of {a.train}, vocab {v}")
    print(f"unigram: add-one; bigram: add-k, k = {k:g}"
          + ("" if tuned is None else f" (chosen on {os.path.basename(a.tune)} from {', '.join(f'{x:g}' for x in K_GRID)})"))
    print(f"{'domain':<12} {'tokens':>8} {'unigram ppl':>12} {'bigram ppl':>11}")
    for r in rows:
        print(f"{r['domain']:<12} {r['tokens']:>8} {r['unigram_ppl']:>12.2f} {r['bigram_ppl']:>11.2f}")


if __name__ == "__main__":
    main()
