#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The input rows of tests/data/gguf/ggml_quant_golden.bin (see ggml_quant_golden.c), on stdout:
per row u32 n, f32 x[n], f32 importance[n]. Real rows of the demo Mixtral (bf16 weights of two
experts and an attention projection, importance = their stats.h5 act_sqmean) and synthetic rows
(Gaussian, heavy-tailed, one outlier, constant, all zero, tiny), seeded."""
import json
import os
import struct
import sys

import h5py
import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(REPO, "datasets", "models", "moewb-mixtral-8e-v2")
STATS = os.path.join(REPO, "datasets", "stats", "moewb-mixtral-8e-v2.stats.h5")


def weight_rows(name, rows):
    raw = open(os.path.join(MODEL, "model.safetensors"), "rb").read()
    hl = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + hl])[name + ".weight"]
    a, b = meta["data_offsets"]
    assert meta["dtype"] == "BF16"
    w = (np.frombuffer(raw[8 + hl + a: 8 + hl + b], np.uint16).astype(np.uint32) << 16).view(np.float32)
    return w.reshape(meta["shape"])[rows]


def importance(name):
    with h5py.File(STATS, "r") as f:
        L = f["linears"]
        names = [x.decode() if isinstance(x, bytes) else x for x in L["name"][()]]
        i = names.index(name)
        o, c = int(L["act_offset"][i]), int(L["act_channels"][i])
        return L["act_sqmean"][o:o + c].astype(np.float32)


def main():
    rows = []
    for name, picks in [("model.layers.1.block_sparse_moe.experts.3.w1", [0, 5]),
                        ("model.layers.0.block_sparse_moe.experts.6.w3", [17]),
                        ("model.layers.0.self_attn.q_proj", [3])]:
        imp = importance(name)
        for r in weight_rows(name, picks):
            rows.append((r, imp))
    rng = np.random.default_rng(2026)
    imp512 = rng.lognormal(0.0, 1.5, 512).astype(np.float32)
    outlier = rng.normal(0, 0.02, 512).astype(np.float32)
    outlier[77] = 3.0
    rows += [
        (rng.normal(0, 1, 512), imp512),
        (rng.standard_t(3, 512) * 0.05, imp512),
        (outlier, imp512),
        (np.full(256, 0.75), imp512[:256]),
        (np.zeros(256), imp512[:256]),
        (rng.normal(0, 1e-9, 256), imp512[:256]),
    ]
    out = sys.stdout.buffer
    for x, imp in rows:
        x = np.asarray(x, np.float32)
        out.write(struct.pack("<I", x.size) + x.tobytes() + np.asarray(imp, np.float32).tobytes())


if __name__ == "__main__":
    main()
