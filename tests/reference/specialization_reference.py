#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent NumPy computation of the routing specialization metrics of `moewb stats specialization`.

    /usr/bin/python3 tests/reference/specialization_reference.py STATS.h5

Reads /layers/<i>/domain_tokens with h5py and prints JSON shaped like the CLI's --json output
(layers[].{layer, tokens, mutual_info_bits, normalized_mi, domain_entropy_bits, expert_entropy_bits,
domains[].{tokens, share, entropy_bits, topk_share, top_expert, top_expert_lift}}). Written from the
definitions, by a different route than the C++ code: MI = H(D) + H(E) - H(D, E) over the joint
P(d, e) = n_de / N of routed (token, slot) choices.
"""
import json
import math
import sys

import h5py
import numpy as np


def entropy_bits(p):
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def layer_metrics(n, k):
    n = n.astype(np.float64)
    joint = n / n.sum()
    pd, pe = joint.sum(axis=1), joint.sum(axis=0)
    hd, he, hde = entropy_bits(pd), entropy_bits(pe), entropy_bits(joint.ravel())
    mi = hd + he - hde
    out = {"tokens": int(round(n.sum() / k)), "domain_entropy_bits": hd, "expert_entropy_bits": he,
           "mutual_info_bits": mi, "normalized_mi": mi / hd if hd > 0 else None, "domains": []}
    for d in range(n.shape[0]):
        row = n[d]
        if row.sum() == 0:
            out["domains"].append({"tokens": 0, "share": 0.0, "entropy_bits": None, "topk_share": None,
                                   "top_expert": -1, "top_expert_lift": None})
            continue
        cond = row / row.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.where(row > 0, cond / pe, -np.inf)
        best = int(np.argmax(lift))  # first index on ties
        out["domains"].append({"tokens": int(round(row.sum() / k)), "share": float(pd[d]),
                               "entropy_bits": entropy_bits(cond),
                               "topk_share": float(np.sort(cond)[::-1][:k].sum()),
                               "top_expert": best, "top_expert_lift": float(lift[best])})
    return out


def main():
    with h5py.File(sys.argv[1], "r") as f:
        assert f.attrs["format_version"] in (1, 2)
        domains = [s.decode() if isinstance(s, bytes) else s for s in f["data/domains"][()]]
        layers = []
        for i in range(int(f.attrs["num_layers"])):
            g = f["layers"][str(i)]
            if not g.attrs["is_moe"]:
                continue
            m = layer_metrics(g["domain_tokens"][()], int(g.attrs["top_k"]))
            m["layer"] = i
            layers.append(m)
    mi = [l["mutual_info_bits"] for l in layers]
    print(json.dumps({"domains": domains, "layers": layers,
                      "mean": {"mutual_info_bits": float(np.mean(mi))}}, default=nan_to_none))


if __name__ == "__main__":
    main()
