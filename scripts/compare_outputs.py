#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Compares two output trees of moewb runs file by file (scripts/check_identical.sh).

Files must be byte-identical, except for what records when or how long a run took: JSON keys
'created' and 'seconds' / '*_seconds', and the HDF5 attribute 'created' (stats.h5). JSON files are
compared after dropping those keys; HDF5 files dataset by dataset and attribute by attribute; GGUF
files (tests/reference/gguf_reference.py) by every tensor's bytes and every metadata value, the
embedded plan (moewb.plan) compared as JSON.
--added KEY,KEY...: keys (JSON) and column headers (the printed tables, '*.table') that the new
build adds on purpose are ignored where the old build's output lacks them; everything the old
build wrote must still be there and equal.
Prints one line per difference and a summary; exit 1 when any.

    compare_outputs.py OLD_DIR NEW_DIR [--added kld,kld_p99,...]"""
import json
import os
import sys

import numpy as np

VOLATILE = {"created", "seconds"}


def volatile(key):
    return key in VOLATILE or key.endswith("_seconds")


def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if not volatile(k)}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


ADDED = set()


def drop_added(old, new):
    """new without the ADDED keys that old does not have (recursively, lists element by element)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: drop_added(old.get(k), v) for k, v in new.items() if k in old or k not in ADDED}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [drop_added(o, n) for o, n in zip(old, new)]
    return new


def same_json(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        old, new = strip(json.load(fa)), strip(json.load(fb))
        return old == drop_added(old, new)


def table_columns(path):
    """A markdown table as {header: [cells]}, ADDED headers (by prefix) removed."""
    with open(path, encoding="utf-8") as f:
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in f if line.startswith("|")]
    if not rows:
        return {}
    header, body = rows[0], [r for r in rows[2:]]
    keep = [i for i, h in enumerate(header) if not any(h.startswith(a) for a in ADDED)]
    return {header[i]: [r[i] if i < len(r) else None for r in body] for i in keep}


def same_table(a, b):
    old, new = table_columns(a), table_columns(b)
    return all(new.get(h) == v for h, v in old.items())


def h5_items(path):
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                if k != "created":
                    out[f"{name}@{k}"] = np.asarray(v).tobytes() if not isinstance(v, (str, bytes)) else v
            if isinstance(obj, h5py.Dataset):
                out[name] = np.asarray(obj[()]).tobytes()
        for k, v in f.attrs.items():
            if k != "created":
                out[f"/@{k}"] = np.asarray(v).tobytes() if not isinstance(v, (str, bytes)) else v
        f.visititems(visit)
    return out


def gguf_items(path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
    import gguf_reference
    g = gguf_reference.parse(path)
    kv = {k: v for k, v in g["kv"].items() if k != "moewb.plan"}
    plan = strip(json.loads(g["kv"]["moewb.plan"]["value"])) if "moewb.plan" in g["kv"] else None
    data = bytes(g["buf"][g["data_offset"]:])
    return kv, plan, [(t["name"], t["ne"], t["type"], t["offset"]) for t in g["tensors"]], data


def same_file(a, b):
    if a.endswith(".table"):
        return same_table(a, b)
    if a.endswith(".json"):
        return same_json(a, b)
    if a.endswith(".gguf"):
        return gguf_items(a) == gguf_items(b)
    if a.endswith(".h5"):
        return h5_items(a) == h5_items(b)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def files(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def main(a, b):
    fa, fb = files(a), files(b)
    bad = [f"only in {a}: {p}" for p in sorted(fa - fb)] + [f"only in {b}: {p}" for p in sorted(fb - fa)]
    for p in sorted(fa & fb):
        if not same_file(os.path.join(a, p), os.path.join(b, p)):
            bad.append(f"differs: {p}")
    for line in bad:
        print(line)
    print(f"compare_outputs: {len(fa & fb)} files compared, {len(bad)} difference(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--added" in args:
        i = args.index("--added")
        ADDED.update(k for k in args[i + 1].split(",") if k)
        del args[i:i + 2]
    sys.exit(main(args[0], args[1]))
