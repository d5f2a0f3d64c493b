#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fails on an include that goes against the engine's layering (docs/architecture.md).

Every file under engine/ belongs to one unit: the folder under engine/ (sources, internal headers)
or under engine/include/moewb/ (public headers). A unit may include itself and the units listed
for it in ALLOWED. The app may include every engine unit; app/gui never includes app/cli; widgets
include the engine's public headers only (moewb/...; they never include torch; CMake links widgets
against the torch-free moewb_io alone), and no engine file includes Qt.
Usage: check_layers.py [REPO_ROOT]   (exit 1 and one line per violation when any)."""
import os
import re
import sys

FORMATS = ["core", "safetensors", "hfconfig", "tokenizer", "stats", "plan", "gguf", "gptq"]
ALLOWED = {
    "core": [],
    "safetensors": ["core"],
    "hfconfig": ["core"],
    "tokenizer": ["core"],
    "stats": ["core"],
    "gguf": ["core"],
    "plan": ["core", "hfconfig"],
    "gptq": ["core", "hfconfig", "plan"],
    "dist": ["core"],
    "model": FORMATS,
    "score": FORMATS,
    "calib": FORMATS + ["dist", "model", "score"],
    "quant": FORMATS + ["dist", "model", "calib"],
    "alloc": FORMATS + ["dist", "model", "score", "calib", "quant"],
    "export": FORMATS + ["dist", "model", "calib", "quant"],
    "trim": FORMATS + ["model", "calib"],
    "eval": FORMATS + ["model"],
    "train": FORMATS + ["model", "calib"],
}
ALLOWED["workflow"] = sorted(set(sum(ALLOWED.values(), [])) | set(ALLOWED))
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
SOURCE = (".cpp", ".h", ".hpp", ".cc")


def unit_of_engine_path(rel):
    """engine/<unit>/... or engine/include/moewb/<unit>/... -> unit."""
    parts = rel.split("/")
    if parts[:3] == ["engine", "include", "moewb"]:
        return parts[3] if len(parts) > 4 else None
    return parts[1] if len(parts) > 2 else None


def included_unit(inc):
    """"moewb/<unit>/x.h" or "<unit>/x.h" (internal) -> unit, else None."""
    parts = inc.split("/")
    if parts[0] == "moewb" and len(parts) > 2:
        return parts[1]
    if len(parts) > 1 and parts[0] in ALLOWED:
        return parts[0]
    return None


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1)


def walk(root, top):
    for d, _, files in os.walk(os.path.join(root, top)):
        for name in sorted(files):
            if name.endswith(SOURCE):
                full = os.path.join(d, name)
                yield full, os.path.relpath(full, root).replace(os.sep, "/")


def check(root):
    bad = []
    for full, rel in walk(root, "engine"):
        unit = unit_of_engine_path(rel)
        if unit not in ALLOWED:
            bad.append(f"{rel}: not in a known unit ({unit})")
            continue
        for n, inc in includes(full):
            if inc.startswith(("Q", "qt")) and not inc.startswith("queue"):
                bad.append(f"{rel}:{n}: engine includes Qt <{inc}>")
            target = included_unit(inc)
            if target and target != unit and target not in ALLOWED[unit]:
                bad.append(f"{rel}:{n}: unit '{unit}' may not include '{inc}' (unit '{target}')")
    for full, rel in walk(root, "app/gui"):
        for n, inc in includes(full):
            if "cli/" in inc:
                bad.append(f"{rel}:{n}: the GUI includes the CLI's '{inc}'")
    for full, rel in walk(root, "widgets"):
        for n, inc in includes(full):
            if inc.startswith(("torch/", "ATen/", "c10/")):
                bad.append(f"{rel}:{n}: widgets never include torch ('{inc}')")
    return bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    bad = check(os.path.abspath(root))
    for line in bad:
        print(line)
    print(f"check_layers: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
