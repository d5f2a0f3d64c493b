#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""float64 NumPy reference of expert-balanced Hessians (docs/calibration-coverage.md).

    /usr/bin/python3 tests/reference/reference_balance.py MODEL_DIR IDS_JSON OUT_PREFIX
                     --mode off|next-choices|all-tokens [--min-tokens N]

Runs the unquantized model (reference_forward.Model, float64) on IDS_JSON ([B][T] token ids), and
for every MoE layer and every routed expert computes, from the layer's MoE input x and the router's
softmax probabilities p (over all experts), the Hessians of the expert's gate/up input and of its
down input silu(x Wg^T) * (x Wu^T):
  off           rows routed to it (top-k), weight 1
  next-choices  the routed rows, plus (when fewer than --min-tokens) the rows for which it is choice
                k+1, k+2, ... (argsort of -p, stable), whole ranks, at most min(k, E-k) ranks
  all-tokens    every row, weight p[:, e]
  H = (2 / sum w) sum_t w_t z_t z_t^T.
Writes OUT_PREFIX.bin (little-endian float64 Hessians, back to back) and OUT_PREFIX.json: for each
expert {layer, expert, routed, tokens, weight, gate: [offset, n], down: [offset, n]} (offsets in
doubles; n = in_features).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_forward import Model, silu, softmax, topk_lower_index  # noqa: E402


class CapturingModel(Model):
    """Model whose MoE blocks record their input rows [N, H] per layer."""

    def __init__(self, model_dir):
        self.captured = {}
        super().__init__(model_dir)

    def ffn(self, h, i, routing):
        if self.layer_is_moe(i):
            self.captured[i] = h.reshape(-1, self.H).copy()
        return super().ffn(h, i, routing)


def expert_names(model, i):
    c, a = model.cfg, model.arch
    if a == "mixtral":
        return f"model.layers.{i}.block_sparse_moe", c["num_local_experts"], ("w1", "w3", "w2")
    E = c["n_routed_experts"] if a == "deepseek" else c["num_experts"]
    return f"model.layers.{i}.mlp", E, ("gate_proj", "up_proj", "down_proj")


def row_weights(p, k, mode, min_tokens):
    """[N, E] weight of each row in each expert's Hessians."""
    N, E = p.shape
    order = np.argsort(-p, axis=-1, kind="stable")
    routed = np.zeros((N, E))
    np.put_along_axis(routed, order[:, :k], 1.0, axis=-1)
    if mode == "off":
        return routed, routed
    if mode == "all-tokens":
        return routed, p.copy()
    m = max(0, min(k, E - k))
    w = routed.copy()
    for e in range(E):
        have = int(routed[:, e].sum())
        r = 0
        while have < min_tokens and r < m:
            have += int((order[:, k + r] == e).sum())
            r += 1
        if r:
            w[(order[:, k:k + r] == e).any(axis=1), e] = 1.0
    return routed, w


def hessian(z, w):
    s = w.sum()
    if s <= 0:
        return np.zeros((z.shape[1], z.shape[1]))
    return 2.0 / s * (z * w[:, None]).T @ z


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("ids_file")
    ap.add_argument("out_prefix")
    ap.add_argument("--mode", choices=["off", "next-choices", "all-tokens"], required=True)
    ap.add_argument("--min-tokens", type=int, default=32)
    a = ap.parse_args(argv)
    with open(a.ids_file, "r", encoding="utf-8") as f:
        ids = np.array(json.load(f), dtype=np.int64)
    model = CapturingModel(a.model_dir)
    model.captured = {}
    model.forward(ids)
    k = model.cfg["num_experts_per_tok"]
    chunks, index, offset = [], [], 0
    for i in sorted(model.captured):
        x = model.captured[i]
        prefix, E, (g, u, d) = expert_names(model, i)
        p = softmax(x @ model.w[f"{prefix}.gate.weight"].T, axis=-1)
        assert topk_lower_index(p, k).shape == (x.shape[0], k)
        routed, w = row_weights(p, k, a.mode, a.min_tokens)
        for e in range(E):
            ex = f"{prefix}.experts.{e}"
            act = silu(x @ model.w[f"{ex}.{g}.weight"].T) * (x @ model.w[f"{ex}.{u}.weight"].T)
            entry = {"layer": i, "expert": e, "routed": int(routed[:, e].sum()),
                     "tokens": int((w[:, e] > 0).sum()) if a.mode != "all-tokens" else int(x.shape[0]),
                     "weight": float(w[:, e].sum())}
            for key, z in (("gate", x), ("down", act)):
                h = hessian(z, w[:, e])
                chunks.append(h.ravel())
                entry[key] = [offset, int(h.shape[0])]
                offset += h.size
            index.append(entry)
    np.concatenate(chunks).astype("<f8").tofile(a.out_prefix + ".bin")
    with open(a.out_prefix + ".json", "w", encoding="utf-8") as f:
        json.dump({"mode": a.mode, "min_tokens": a.min_tokens, "experts": index}, f)


if __name__ == "__main__":
    main()
