#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent reader for stats.h5 (docs/stats-schema.md), used by tst_stats_h5.

  read_stats.py read FILE           print the file's contents as JSON (NaN -> null)
  read_stats.py mutate FILE ACTION  damage FILE in place the way a newer or broken writer would

Reads with plain h5py, not through moewb, so the test checks the documented layout rather than the
C++ reader agreeing with the C++ writer.
"""
import json
import math
import sys

import h5py
import numpy as np


def clean(v):
    """numpy values and arrays -> JSON-able Python values, NaN -> None."""
    if isinstance(v, np.ndarray):
        return [clean(x) for x in v.tolist()] if v.ndim else clean(v.item())
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def strings(ds):
    return [s for s in ds.asstr()[()]]


def read(path):
    out = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: clean(v) for k, v in f.attrs.items()}
        d = f["data"]
        out["data"] = {k: strings(d[k]) if d[k].dtype.kind == "O" else clean(d[k][()]) for k in d}
        layers = []
        for i in range(int(f.attrs["num_layers"])):
            g = f["layers"][str(i)]
            layer = {"attrs": {k: clean(v) for k, v in g.attrs.items()}}
            for k in g:
                layer[k] = {"shape": list(g[k].shape), "data": clean(g[k][()])}
            layers.append(layer)
        out["layers"] = layers
        lin = f["linears"]
        out["linears_attrs"] = {k: clean(v) for k, v in lin.attrs.items()}
        rows = []
        names = strings(lin["name"])
        roles = strings(lin["role"])
        absmax = lin["act_absmax"][()]
        sqmean = lin["act_sqmean"][()]
        for r, name in enumerate(names):
            off = int(lin["act_offset"][r])
            n = int(lin["act_channels"][r])
            rows.append({
                "name": name,
                "role": roles[r],
                "layer": int(lin["layer"][r]),
                "expert": int(lin["expert"][r]),
                "in_features": int(lin["in_features"][r]),
                "out_features": int(lin["out_features"][r]),
                "tokens": int(lin["tokens"][r]),
                "outlier_score": clean(lin["outlier_score"][r]),
                "outlier_column": int(lin["outlier_column"][r]),
                "act_absmax": clean(absmax[off:off + n]),
                "act_sqmean": clean(sqmean[off:off + n]),
            })
        out["linears"] = rows
    print(json.dumps(out))


def mutate(path, action):
    with h5py.File(path, "r+") as f:
        if action == "version99":
            f.attrs["format_version"] = np.int64(99)
        elif action == "version3":
            f.attrs["format_version"] = np.int64(3)
        elif action == "vlenstrings":
            # a version-2 file must not hold variable-length strings
            names = [x.decode() for x in f["linears/name"][()]]
            del f["linears/name"]
            f.create_dataset("linears/name", data=names, dtype=h5py.string_dtype())
        elif action == "asv1":
            # what moewb wrote before format_version 2: every string variable-length
            f.attrs["format_version"] = np.int64(1)

            def convert(name, obj):
                for k, v in list(obj.attrs.items()):
                    if isinstance(v, (bytes, np.bytes_)):
                        obj.attrs.create(k, v.decode(), dtype=h5py.string_dtype())
                if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "S":
                    vals = [x.decode() for x in obj[()]]
                    parent, leaf = obj.parent, name.rsplit("/", 1)[-1]
                    del parent[leaf]
                    parent.create_dataset(leaf, data=vals, dtype=h5py.string_dtype(), shape=(len(vals),))
            for k, v in list(f.attrs.items()):
                if isinstance(v, (bytes, np.bytes_)):
                    f.attrs.create(k, v.decode(), dtype=h5py.string_dtype())
            names = []
            f.visit(names.append)
            for n in names:
                convert(n, f[n])
        elif action == "version0":
            f.attrs["format_version"] = np.int64(0)
        elif action == "noversion":
            del f.attrs["format_version"]
        elif action == "deldataset":
            del f["layers/1/coactivation"]
        elif action == "delgroup":
            del f["layers/2"]
        elif action == "delattr":
            del f["layers/1"].attrs["num_experts"]
        elif action == "badshape":
            e = f["layers/1/expert_tokens"].shape[0]
            del f["layers/1/expert_tokens"]
            f["layers/1/expert_tokens"] = np.zeros(e - 1, dtype=np.int64)
        elif action == "badtype":
            n = f["linears/tokens"].shape[0]
            del f["linears/tokens"]
            f.create_dataset("linears/tokens", data=["x"] * n, dtype=h5py.string_dtype())
        elif action == "badoffset":
            off = f["linears/act_offset"][()]
            off[-1] = f["linears/act_absmax"].shape[0]
            f["linears/act_offset"][...] = off
        else:
            raise SystemExit("unknown action " + action)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "read":
        read(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "mutate":
        mutate(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
