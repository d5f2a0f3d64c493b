#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Input of tests/reference/ggml_quant_rmse.cpp: every linear of MODEL_DIR that STATS (stats.h5)
observed, as f32 rows with its act_sqmean as the importance.
Usage: ggml_quant_rmse_rows.py MODEL_DIR STATS OUT.bin
Per tensor: u32 name length, name, i64 rows, i64 cols, f32[rows*cols], f32[cols]."""
import json, struct, sys
import numpy as np, h5py

model, stats, out = sys.argv[1:4]
raw = open(model + "/model.safetensors", "rb").read()
hl = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + hl]); base = 8 + hl
def tensor(name):
    m = hdr[name]; a, b = m["data_offsets"]; buf = raw[base + a: base + b]
    if m["dtype"] == "BF16":
        v = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif m["dtype"] == "F32":
        v = np.frombuffer(buf, np.float32)
    else:
        raise SystemExit(m["dtype"])
    return v.reshape(m["shape"])
n = 0
with h5py.File(stats, "r") as f, open(out, "wb") as o:
    L = f["linears"]
    names = [x.decode() if isinstance(x, bytes) else x for x in L["name"][()]]
    off = L["act_offset"][()]; ch = L["act_channels"][()]; sq = L["act_sqmean"][()]
    for i, nm in enumerate(names):
        if ch[i] == 0 or nm + ".weight" not in hdr:
            continue
        w = tensor(nm + ".weight").astype(np.float32)
        imp = sq[off[i]: off[i] + ch[i]].astype(np.float32)
        assert w.shape[1] == imp.size, (nm, w.shape, imp.size)
        b = nm.encode()
        o.write(struct.pack("<I", len(b)) + b + struct.pack("<qq", *w.shape))
        o.write(np.ascontiguousarray(w).tobytes()); o.write(imp.tobytes()); n += 1
print(out, n, "tensors")
