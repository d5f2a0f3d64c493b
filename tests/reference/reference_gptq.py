#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent float64 reference of GPTQ (Frantar et al. 2022, Algorithm 1) and of RTN.

Written from the paper's algorithm and the grid of docs/algorithms.md §3.1; shares no code with the C++
engine. GPTQ here is the plain column-by-column form: no lazy batching, H⁻¹ formed explicitly,
its upper Cholesky factor U (H⁻¹ = UᵀU) taken, and after quantizing column i every later column
j is updated with w_j -= (w_i − q_i) / U_ii · U_ij.

Usage:
  reference_gptq.py IN.safetensors OUT.safetensors
      IN holds, per case, "<case>.w" [out, in] and "<case>.h" [in, in] (h only for GPTQ) and the
      metadata key "cases": a JSON list of {"name", "method": "gptq"|"rtn", "bits", "group",
      "sym", "act_order", "static_groups", "damp"}. OUT gets per case "<case>.q" (I32, original
      column order), ".scales" / ".zeros" (F64 [out, groups]), ".g_idx" (I32), ".dequant" (F64),
      ".margin" (F64 [out, in]: distance of w/scale from the nearest rounding tie k + ½ when the code
      was chosen), ".zmargin" (F64 [out, groups]: the same for -xmin/scale of an asym zero point, 1
      for sym), and for GPTQ ".loss" (F64 [1], ½ Σ err²) and ".damp" (F64 [1], damping used).
  reference_gptq.py --selftest
      Checks the reference against hand-computed values and identities; exits non-zero on failure.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402


def tie_margin(t):
    """Distance of t from the nearest half-integer (where round() changes its result)."""
    return np.abs(t - np.floor(t) - 0.5)


def find_params(x, bits, sym, with_margin=False):
    """Grid of each row of x [out, g]: docs/algorithms.md §3.1."""
    maxq = 2 ** bits - 1
    xmin = np.minimum(x.min(axis=1), 0.0)
    xmax = np.maximum(x.max(axis=1), 0.0)
    if sym:
        xmax = np.maximum(np.abs(xmin), xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
    both = (xmin == 0) & (xmax == 0)
    xmin = np.where(both, -1.0, xmin)
    xmax = np.where(both, 1.0, xmax)
    scale = (xmax - xmin) / maxq
    if sym:
        zero = np.full_like(scale, (maxq + 1) / 2)
        zmargin = np.ones_like(scale)
    else:
        zero = np.round(-xmin / scale)  # numpy rounds half to even, as torch does
        zmargin = tie_margin(-xmin / scale)
    return (scale, zero, zmargin) if with_margin else (scale, zero)


def quantize(x, scale, zero, bits):
    return np.clip(np.round(x / scale) + zero, 0, 2 ** bits - 1)


def group_len(group, k):
    return k if group <= 0 or group > k else group


def rtn(w, bits, group, sym):
    w = np.asarray(w, dtype=np.float64)
    n, k = w.shape
    g = group_len(group, k)
    ng = -(-k // g)
    scales = np.zeros((n, ng))
    zeros = np.zeros((n, ng))
    zmargin = np.zeros((n, ng))
    q = np.zeros((n, k))
    for gi in range(ng):
        cols = slice(gi * g, min(k, gi * g + g))
        scales[:, gi], zeros[:, gi], zmargin[:, gi] = find_params(w[:, cols], bits, sym, True)
        q[:, cols] = quantize(w[:, cols], scales[:, gi:gi + 1], zeros[:, gi:gi + 1], bits)
    g_idx = np.arange(k) // g
    deq = scales[:, g_idx] * (q - zeros[:, g_idx])
    return dict(q=q.astype(np.int32), scales=scales, zeros=zeros, g_idx=g_idx.astype(np.int32), dequant=deq,
                margin=tie_margin(w / scales[:, g_idx]), zmargin=zmargin)


def hinv_upper(h, damp):
    """Damping λ = damp · mean(diag H), raised x10 (from at least 1 %) while Cholesky fails; returns
    (U with (H + λI)⁻¹ = UᵀU, the damping fraction used)."""
    k = h.shape[0]
    mean = np.mean(np.diag(h))
    pct = damp
    while True:
        hd = h + pct * mean * np.eye(k)
        try:
            np.linalg.cholesky(hd)  # positive definite?
            hinv = np.linalg.inv(hd)
            hinv = (hinv + hinv.T) / 2
            return np.linalg.cholesky(hinv).T, pct
        except np.linalg.LinAlgError:
            if pct >= 100:
                raise
            pct = max(pct * 10, 0.01)


def gptq(w, h, bits, group, sym, act_order=False, static_groups=False, damp=0.01):
    w = np.array(w, dtype=np.float64)
    h = np.array(h, dtype=np.float64)
    n, k = w.shape
    g = group_len(group, k)
    ng = -(-k // g)
    # Dead inputs (never active): H_ii = 1, weights zeroed.
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    scales = np.zeros((n, ng))
    zeros = np.zeros((n, ng))
    zmargin = np.zeros((n, ng))
    if static_groups:  # grids from the unpermuted weight, before any update
        for gi in range(ng):
            scales[:, gi], zeros[:, gi], zmargin[:, gi] = find_params(w[:, gi * g:gi * g + g], bits, sym, True)
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    w = w[:, perm]
    h = h[np.ix_(perm, perm)]
    u, pct = hinv_upper(h, damp)

    codes = np.zeros((n, k))
    margin = np.zeros((n, k))
    loss = 0.0
    for i in range(k):
        if static_groups:
            gi = perm[i] // g
        else:
            gi = i // g
            if i % g == 0:  # a group starts: its grid from the current (updated) weights
                scales[:, gi], zeros[:, gi], zmargin[:, gi] = find_params(w[:, i:i + g], bits, sym, True)
        q = quantize(w[:, i], scales[:, gi], zeros[:, gi], bits)
        margin[:, i] = tie_margin(w[:, i] / scales[:, gi])
        deq = scales[:, gi] * (q - zeros[:, gi])
        err = (w[:, i] - deq) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
        codes[:, i] = q
        loss += 0.5 * float(np.sum(err ** 2))

    invperm = np.argsort(perm)
    codes = codes[:, invperm]
    margin = margin[:, invperm]
    if act_order and not static_groups:
        g_idx = invperm // g  # the group of the column's position in quantization order
    else:
        g_idx = np.arange(k) // g
    deq = scales[:, g_idx] * (codes - zeros[:, g_idx])
    return dict(q=codes.astype(np.int32), scales=scales, zeros=zeros, g_idx=g_idx.astype(np.int32),
                dequant=deq, loss=np.array([loss]), damp=np.array([pct]), margin=margin, zmargin=zmargin)


def run_file(inp, out):
    tensors, _, meta = st.load(inp)
    cases = json.loads(meta["cases"])
    result = {}
    for c in cases:
        name = c["name"]
        w = tensors[name + ".w"]
        if c.get("method", "gptq") == "rtn":
            r = rtn(w, c["bits"], c["group"], c["sym"])
        else:
            r = gptq(w, tensors[name + ".h"], c["bits"], c["group"], c["sym"], c.get("act_order", False),
                     c.get("static_groups", False), c.get("damp", 0.01))
        for key, v in r.items():
            result[name + "." + key] = np.ascontiguousarray(v)
    st.save(out, result)


def selftest():
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    # Hand case (see tst_gptq.cpp handComputed): w = [0.3, 0.28, 1.0, -0.5], 2-bit asym, one group:
    # grid xmin -0.5, xmax 1.0 → scale 0.5, zero 1. H couples columns 0 and 1 ([[2,1],[1,2]]): GPTQ
    # moves (w0 - q0) / 2 = -0.1 onto w1, which then rounds down; RTN rounds it up.
    w = np.array([[0.3, 0.28, 1.0, -0.5]])
    h = np.array([[2.0, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    r = gptq(w, h, 2, -1, False, damp=0.0)
    check(r["q"].tolist() == [[2, 1, 3, 0]], f"hand gptq codes {r['q']}")
    check(np.allclose(r["dequant"], [[0.5, 0.0, 1.0, -0.5]]), "hand gptq dequant")
    check(abs(r["loss"][0] - 0.0624) < 1e-12, f"hand gptq loss {r['loss']}")
    check(rtn(w, 2, -1, False)["q"].tolist() == [[2, 2, 3, 0]], "hand rtn codes")

    rng = np.random.default_rng(0)
    for act, static in ((False, False), (True, False), (True, True)):
        k, n = 48, 7
        x = rng.standard_normal((200, k)) @ rng.standard_normal((k, k))
        x[:, 5] = 0  # a dead input
        h = 2 / 200 * x.T @ x
        w = rng.standard_normal((n, k))
        r = gptq(w, h, 3, 16, False, act, static, damp=0.01)
        wz = w.copy()
        wz[:, 5] = 0
        hd = h.copy()
        hd[5, 5] = 1
        hd += 0.01 * np.mean(np.diag(hd)) * np.eye(k)
        d = wz - r["dequant"]
        # ½ Σ err² equals ½ tr((W − Q) H_damped (W − Q)ᵀ) (W − Q = Err · U).
        check(abs(r["loss"][0] - 0.5 * np.trace(d @ hd @ d.T)) < 1e-9 * r["loss"][0], f"loss identity {act} {static}")
        check(np.all(r["q"][:, 5] == (r["zeros"][np.arange(n), r["g_idx"][5]])), "dead column → zero code")
        # GPTQ beats RTN on the (undamped) objective.
        rr = rtn(w, 3, 16, False)
        e_g = np.trace((w - r["dequant"]) @ h @ (w - r["dequant"]).T)
        e_r = np.trace((w - rr["dequant"]) @ h @ (w - rr["dequant"]).T)
        check(e_g < e_r, f"gptq {e_g} < rtn {e_r}")
    # H = identity: GPTQ is RTN.
    w = rng.standard_normal((5, 40))
    for bits in (2, 3, 4, 8):
        for sym in (True, False):
            check(np.array_equal(gptq(w, np.eye(40), bits, 16, sym)["q"], rtn(w, bits, 16, sym)["q"]),
                  f"identity H {bits} {sym}")
    for f in failures:
        print("FAIL:", f)
    print("reference_gptq selftest:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--selftest":
        sys.exit(selftest())
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    run_file(sys.argv[1], sys.argv[2])
