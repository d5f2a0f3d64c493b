#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference KL divergence of a model from a reference model (float64 NumPy forward).

    /usr/bin/python3 tests/reference/reference_kld.py REF_DIR MODEL_DIR IDS_JSON --ctx C --stride S

Over exactly the positions perplexity scores (the windows of reference_ppl.py), for every scored
position t: KL_t = sum_v p_ref(v|t) (log p_ref(v|t) - log p_model(v|t)) in nats, and whether
argmax p_ref == argmax p_model. Output (stdout, JSON):
  {"kld": mean KL_t, "kld_p99": 99th percentile of KL_t (numpy.percentile, linear),
   "same_top": share of positions with the same argmax, "tokens": scored positions,
   "window_kld": [sum of KL_t per window with scored positions], "ppl": model perplexity}
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_forward import Model, log_softmax  # noqa: E402


def scored_log_probs(model, ids, begin, first, end):
    logits = model.forward(ids[None, begin:end])[0]
    return log_softmax(logits[first - 1 - begin:end - 1 - begin], axis=-1)


def kld(ref, model, ids, ctx, stride):
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    step = min(stride, ctx - 1)
    per_token, window_kld, same, nll = [], [], 0, 0.0
    prev_end = 0
    for begin in range(0, n, step):
        end = min(begin + ctx, n)
        first = max(begin + 1, prev_end)
        if first < end:
            lp_ref = scored_log_probs(ref, ids, begin, first, end)
            lp = scored_log_probs(model, ids, begin, first, end)
            kl = (np.exp(lp_ref) * (lp_ref - lp)).sum(axis=-1)
            per_token.extend(kl.tolist())
            window_kld.append(float(kl.sum()))
            same += int((lp_ref.argmax(axis=-1) == lp.argmax(axis=-1)).sum())
            tgt = ids[first:end]
            nll -= float(lp[np.arange(len(tgt)), tgt].sum())
        prev_end = end
        if end == n:
            break
    t = len(per_token)
    return {"kld": float(np.mean(per_token)), "kld_p99": float(np.percentile(per_token, 99)),
            "same_top": same / t, "tokens": t, "window_kld": window_kld, "ppl": math.exp(nll / t)}


def main(argv=None):
    ap = argparse.ArgumentParser(description="KL divergence against a reference model (reference)")
    ap.add_argument("ref_dir")
    ap.add_argument("model_dir")
    ap.add_argument("ids_json")
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--stride", type=int, required=True)
    a = ap.parse_args(argv)
    with open(a.ids_json, "r", encoding="utf-8") as f:
        ids = json.load(f)
    print(json.dumps(kld(Model(a.ref_dir), Model(a.model_dir), ids, a.ctx, a.stride)))


if __name__ == "__main__":
    main()
