#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Golden dequantization of ggml blocks by an independent implementation: llama.cpp's gguf-py
(NumPy; gguf-py/gguf/quants.py). gguf-py is not a dependency of moewb: point MOEWB_GGUF_PY (or
--gguf-py) at a llama.cpp checkout's gguf-py/ folder to use it. Only its quants.py, constants.py
and lazy.py are loaded (its package __init__ wants sentencepiece and more).

  gguf_quant_golden.py make OUT.json [--gguf-py DIR]
      random blocks of every type moewb decodes (seeded; fp16 scale fields set to finite values)
      and gguf-py's float32 values for them: tests/data/gguf/quant_golden.json
  gguf_quant_golden.py dequant TYPE [--gguf-py DIR]   (stdin: raw blocks, stdout: raw float32)
      gguf-py's dequantization of any blocks, for tst_gguf_kquants' live check
  gguf_quant_golden.py available [--gguf-py DIR]      exit 0 when gguf-py can be loaded, else 3
"""
import importlib
import json
import os
import sys
import types

import numpy as np

# ggml type id, block size, bytes per block, byte offsets of the fp16 scale fields
TYPES = {
    "Q4_0": (2, 32, 18, [0]),
    "Q4_1": (3, 32, 20, [0, 2]),
    "Q5_0": (6, 32, 22, [0]),
    "Q5_1": (7, 32, 24, [0, 2]),
    "Q8_0": (8, 32, 34, [0]),
    "Q2_K": (10, 256, 84, [80, 82]),
    "Q3_K": (11, 256, 110, [108]),
    "Q4_K": (12, 256, 144, [0, 2]),
    "Q5_K": (13, 256, 176, [0, 2]),
    "Q6_K": (14, 256, 210, [208]),
    "IQ4_NL": (20, 32, 18, [0]),
}
BLOCKS_PER_TYPE = 6


def gguf_py_dir(argv):
    if "--gguf-py" in argv:
        return argv[argv.index("--gguf-py") + 1]
    return os.environ.get("MOEWB_GGUF_PY", "")


def load_quants(root):
    """gguf.quants from root/gguf/ without running the package's __init__."""
    pkg_dir = os.path.join(root, "gguf")
    if not root or not os.path.isfile(os.path.join(pkg_dir, "quants.py")):
        return None
    pkg = types.ModuleType("gguf")
    pkg.__path__ = [pkg_dir]
    sys.modules["gguf"] = pkg
    try:
        return importlib.import_module("gguf.quants")
    except Exception as e:  # an incompatible gguf-py counts as absent
        print(f"gguf-py at {root} cannot be loaded: {e}", file=sys.stderr)
        return None


def dequantize(q, name, raw):
    tid, block, size, _ = TYPES[name]
    qtype = q.GGMLQuantizationType(tid)
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, size)
    return np.asarray(q.dequantize(blocks, qtype), dtype=np.float32).reshape(-1)


def random_blocks(name, rng):
    _, _, size, scales = TYPES[name]
    raw = rng.integers(0, 256, size=(BLOCKS_PER_TYPE, size), dtype=np.uint8)
    for b in range(BLOCKS_PER_TYPE):
        for k, off in enumerate(scales):
            # finite fp16 scales of both signs and a range of magnitudes; the first block's scales
            # are 0 (a zero super-block), the second's negative zero
            v = [0.0, -0.0][b] if b < 2 else float(rng.choice([-1, 1]) * 2.0 ** rng.integers(-14, 4) * rng.uniform(1, 2))
            raw[b, off:off + 2] = np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)
    return raw.tobytes()


def make(out, q):
    rng = np.random.default_rng(26)
    golden = {
        "about": "random ggml blocks and their float32 values as decoded by llama.cpp's gguf-py "
                 "(tests/reference/gguf_quant_golden.py make); hex strings, little-endian",
        "types": {},
    }
    for name in TYPES:
        raw = random_blocks(name, rng)
        vals = dequantize(q, name, raw)
        golden["types"][name] = {"blocks": raw.hex(), "values_f32": vals.astype("<f4").tobytes().hex()}
    with open(out, "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")
    print(out, len(TYPES), "types")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    q = load_quants(gguf_py_dir(argv))
    if argv[1] == "available":
        return 0 if q is not None else 3
    if q is None:
        print("gguf-py not found: set MOEWB_GGUF_PY or pass --gguf-py DIR", file=sys.stderr)
        return 3
    if argv[1] == "make":
        make(argv[2], q)
        return 0
    if argv[1] == "dequant":
        vals = dequantize(q, argv[2], sys.stdin.buffer.read())
        sys.stdout.buffer.write(vals.astype("<f4").tobytes())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
