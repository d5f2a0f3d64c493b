#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""NumPy reference for tst_calibrate: statistics computed in float64 from the activations the C++
forward dumped (DumpObserver) and the model's own weights.

    calib_reference.py MODEL_DIR DUMP_DIR     prints JSON {"linears": {...}, "layers": {...}}

Definitions follow docs/stats-schema.md and engine/calib/observers.h; they are written here from
the documentation, not from the C++ code.
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import safetensors_np as st  # noqa: E402


def load(dump, entry):
    a = np.fromfile(os.path.join(dump, entry["file"]), dtype="<f4").astype(np.float64)
    return a.reshape(entry["rows"], entry["cols"])


def outlier(w):
    a = np.abs(w.astype(np.float32)).astype(np.float64)
    mean = a.mean(axis=0)
    mx = a.max(axis=0)
    ok = mean > 0
    r = np.where(ok, mx / np.where(ok, mean, 1.0), -np.inf)
    j = int(np.argmax(r))
    return float(r[j]), j


def silu(x):
    return x / (1.0 + np.exp(-x))


def main():
    model_dir, dump = sys.argv[1], sys.argv[2]
    tensors, _ = st.load_model_dir(model_dir)
    manifest = json.load(open(os.path.join(dump, "manifest.json")))
    out = {"linears": {}, "layers": {}}
    for name, e in manifest.items():
        if e["kind"] != "linear":
            continue
        x = load(dump, e)
        score, col = outlier(tensors[name + ".weight"])
        out["linears"][name] = {"tokens": x.shape[0], "absmax": np.abs(x).max(axis=0).tolist(),
                                "sqmean": (x * x).mean(axis=0).tolist(), "outlier": score,
                                "outlier_column": col}
    layers = sorted({int(k.split(".")[0]) for k in manifest if re.match(r"^\d+\.", k)})
    for l in layers:
        r = {}
        for part, key in ((0, "cos_attn"), (1, "cos_mlp"), (2, "cos_whole")):
            a = load(dump, manifest[f"{l}.{part}.in"])
            b = load(dump, manifest[f"{l}.{part}.out"])
            cos = (a * b).sum(1) / np.maximum(np.sqrt((a * a).sum(1) * (b * b).sum(1)), 1e-8)
            r[key] = float(cos.mean())
        if f"logits.{l}" in manifest:
            z = load(dump, manifest[f"logits.{l}"])
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            r["entropy"] = float((-(p * np.log(p)).sum(1)).mean())
            r["prob_mass"] = p.sum(0).tolist()
            x = load(dump, manifest[f"moe.{l}"])
            pat = re.compile(rf"^model\.layers\.{l}\..*\.experts\.(\d+)\.(\w+)\.weight$")
            experts = {}
            for n, w in tensors.items():
                m = pat.match(n)
                if m:
                    experts.setdefault(int(m.group(1)), {})[m.group(2)] = w.astype(np.float64)
            ys = []
            for e in sorted(experts):
                w = experts[e]
                g, u, d = (w["w1"], w["w3"], w["w2"]) if "w1" in w else (w["gate_proj"], w["up_proj"], w["down_proj"])
                ys.append((silu(x @ g.T) * (x @ u.T)) @ d.T)
            y = np.stack(ys)                         # [E, N, H]
            yc = (y - y.mean(axis=1, keepdims=True)).reshape(len(ys), -1)
            cov = yc @ yc.T
            sd = np.sqrt(np.diag(cov))
            r["correlation"] = (cov / np.outer(sd, sd)).tolist()
        out["layers"][str(l)] = r
    print(json.dumps(out))


if __name__ == "__main__":
    main()
