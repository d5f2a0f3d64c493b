#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent float64 reference of SparseGPT (Frantar & Alistarh 2023), as moewb defines its masks.

Written from the paper's algorithm; shares no code with the C++ engine. Plain column-by-column
form: H damped, H⁻¹ formed explicitly, its upper Cholesky factor U (H⁻¹ = UᵀU); after column i
every later column j gets w_j -= (w_i − v_i) / U_ii · U_ij (no lazy batching). Masks (docs/pruning.md):
unstructured: at the first column of every block of B columns each row prunes, among the block's
columns, floor(D·i2/k) − floor(D·i1/k) weights with the smallest w²/U_jj² (D = round(s·k) per row;
ties to the lower column); N:M: at the first column of every group of M, the M − N smallest of the
group's current weights. Quantization (bits < 16): at the first column of every group of G, the grid
of docs/algorithms.md §3.1 from the group's current weights not yet marked pruned; a pruned weight is 0.

Usage: reference_sparsegpt.py IN.json OUT.bin
  IN: {"w": [[...]], "h": [[...]], "sparsity": s, "n": N, "m": M (0 = unstructured), "block": B,
       "bits": b (16 = none), "group": G, "sym": bool, "damp": d}
  OUT: float64 [out, in] little-endian, the pruned (and dequantized) weight.
"""
import json
import sys

import numpy as np


def grid(lo, hi, bits, sym):
    maxq = 2 ** bits - 1
    xmin = np.minimum(lo, 0.0)
    xmax = np.maximum(hi, 0.0)
    if sym:
        xmax = np.maximum(-xmin, xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = np.where(both0, -1.0, xmin)
    xmax = np.where(both0, 1.0, xmax)
    scale = (xmax - xmin) / maxq
    zero = np.full_like(scale, 2.0 ** (bits - 1)) if sym else np.round(-xmin / scale)
    return scale, zero


def sparsegpt(w, h, sparsity, n_keep, m, block, bits, group, sym, damp):
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    rows, k = w.shape
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * np.mean(np.diag(h)) * np.eye(k)
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper, H⁻¹ = UᵀU
    mask = np.zeros((rows, k), dtype=bool)
    out = np.zeros_like(w)
    total = int(np.floor(sparsity * k + 0.5)) if m == 0 else 0
    g = k if group <= 0 or group > k else group
    maxq = 2 ** bits - 1
    scale = zero = None
    for i in range(k):
        if m == 0 and i % block == 0:
            i2 = min(i + block, k)
            drop = total * i2 // k - total * i // k
            if drop > 0:
                sal = w[:, i:i2] ** 2 / np.diag(u)[i:i2] ** 2
                order = np.argsort(sal, axis=1, kind="stable")[:, :drop]
                for r in range(rows):
                    mask[r, i + order[r]] = True
        if m > 0 and i % m == 0:
            sal = w[:, i:i + m] ** 2 / np.diag(u)[i:i + m] ** 2
            order = np.argsort(sal, axis=1, kind="stable")[:, :m - n_keep]
            for r in range(rows):
                mask[r, i + order[r]] = True
        if bits < 16 and i % g == 0:
            cols = w[:, i:i + g]
            live = ~mask[:, i:i + g]
            lo = np.where(live, cols, np.inf).min(axis=1)
            hi = np.where(live, cols, -np.inf).max(axis=1)
            lo = np.where(np.isfinite(lo), lo, 0.0)
            hi = np.where(np.isfinite(hi), hi, 0.0)
            scale, zero = grid(lo, hi, bits, sym)
        x = w[:, i]
        if bits < 16:
            q = np.clip(np.round(x / scale) + zero, 0, maxq)
            v = np.where(mask[:, i], 0.0, scale * (q - zero))
        else:
            v = np.where(mask[:, i], 0.0, x)
        out[:, i] = v
        err = (x - v) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    out = sparsegpt(np.array(spec["w"]), np.array(spec["h"]), spec["sparsity"], spec["n"], spec["m"],
                    spec["block"], spec["bits"], spec["group"], spec["sym"], spec["damp"])
    out.astype("<f8").tofile(sys.argv[2])


if __name__ == "__main__":
    main()
