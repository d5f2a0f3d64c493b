#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the golden safetensors files that tests/engine/tst_safetensors.cpp checks.

An independent writer (struct + json + numpy, no `safetensors` package) so the C++ reader and
writer are checked against bytes that moewb did not produce. Run from anywhere:

    /usr/bin/python3 tests/data/safetensors/make_golden.py

Outputs (next to this script, all tiny):
  golden.safetensors            every moewb dtype, laid out exactly like the reference writer
                                (dtype alignment descending, then name; 8-byte space padding;
                                __metadata__ first) so moewb's writer must reproduce it byte for byte
  golden_unaligned.safetensors  another writer's layout: declaration order, odd offsets, header
                                padded to a non-multiple of 8, no __metadata__
  sharded/                      two shards + model.safetensors.index.json; shard 2 also holds a
                                tensor the index does not list

If you change any value here, change the expectations in tst_safetensors.cpp too.
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = "tests/data/safetensors/make_golden.py"

# dtype name -> (alignment rank in the reference enum, numpy dtype or None for BF16)
DTYPES = {
    "BOOL": (0, np.bool_), "U8": (4, np.uint8), "I8": (5, np.int8),
    "I16": (11, np.int16), "U16": (12, np.uint16), "F16": (13, np.float16),
    "BF16": (14, None), "I32": (15, np.int32), "U32": (16, np.uint32),
    "F32": (17, np.float32), "F64": (19, np.float64), "I64": (20, np.int64),
    "U64": (21, np.uint64),
}


def bf16_bytes(values):
    # Chosen values are exact in bfloat16, so truncating the float32 bits is exact too.
    bits = np.asarray(values, dtype=np.float32).view(np.uint32) >> 16
    return bits.astype("<u2").tobytes()


def raw(dtype, values):
    if dtype == "BF16":
        return bf16_bytes(values)
    return np.asarray(values, dtype=np.dtype(DTYPES[dtype][1]).newbyteorder("<")).tobytes()


def tensor(dtype, shape, values):
    data = raw(dtype, values)
    assert len(data) == int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPES[dtype][1] or np.uint16).itemsize
    return {"dtype": dtype, "shape": list(shape), "data": data}


def dump(obj):
    # serde_json compact form; ensure_ascii=False keeps UTF-8 names raw, like the reference.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write(path, entries, metadata=None, order=None, header_order=None, extra_pad=None):
    """entries: name -> tensor(). order: names in data order (default: reference order).
    header_order: names in header order (default: data order).
    extra_pad: None = pad to a multiple of 8 like the reference, else this many spaces."""
    if order is None:
        order = sorted(entries, key=lambda n: (-DTYPES[entries[n]["dtype"]][0], n.encode("utf-8")))
    offsets = {}
    offset = 0
    for name in order:
        offsets[name] = [offset, offset + len(entries[name]["data"])]
        offset += len(entries[name]["data"])
    parts = []
    if metadata is not None:
        parts.append(dump("__metadata__") + ":" + dump(metadata))
    for name in header_order or order:
        t = entries[name]
        # Key order dtype, shape, data_offsets, as the reference serializes its struct.
        parts.append(dump(name) + ":{" + '"dtype":' + dump(t["dtype"]) + ',"shape":' + dump(t["shape"])
                     + ',"data_offsets":' + dump(offsets[name]) + "}")
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (((8 - len(header) % 8) % 8) if extra_pad is None else extra_pad)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for name in order:
            f.write(entries[name]["data"])


def main():
    golden = {
        "t.bool": tensor("BOOL", [4], [True, False, False, True]),
        "t.u8": tensor("U8", [3], [0, 127, 255]),
        "t.i8": tensor("I8", [2], [-128, 127]),
        "t.i16": tensor("I16", [2], [-32768, 12345]),
        "t.u16": tensor("U16", [2], [65535, 1]),
        "t.f16": tensor("F16", [2], [1.5, -2.0]),
        "t.bf16": tensor("BF16", [3], [1.0, -0.5, 3.140625]),
        "t.i32": tensor("I32", [2, 2], [1, -1, 2147483647, -2147483648]),
        "t.u32": tensor("U32", [1], [4000000000]),
        "t.f32": tensor("F32", [2, 3], [0.5, -1.25, 3.0, 100.0, -0.0, 7.75]),
        "t.f64": tensor("F64", [], [2.5]),  # 0-rank scalar
        "t.i64": tensor("I64", [3], [1, -2, 2**40 + 5]),
        "t.u64": tensor("U64", [1], [2**63 + 7]),
        "t.empty": tensor("F32", [0, 4], []),  # zero-size, BEGIN == END
        "a\"quoted\\name": tensor("U8", [1], [42]),  # JSON escaping in names
        "unicodé.w": tensor("F32", [1], [-3.5]),  # raw UTF-8 in names
    }
    write(os.path.join(HERE, "golden.safetensors"), golden,
          metadata={"format": "pt", "generator": GENERATOR})

    unaligned = {
        "x.bytes": tensor("U8", [3], [9, 8, 7]),
        "x.half": tensor("F16", [2], [0.25, -65504.0]),
        "x.float": tensor("F32", [2], [1.0e-3, -42.0]),
        "x.long": tensor("I64", [1], [-9000000000]),
    }
    # Data order bytes(0..3), half(3..7), float(7..15), long(15..23): nothing past the U8 is
    # aligned; the header lists the tensors in reverse and is padded with 5 spaces to 242 bytes.
    order = ["x.bytes", "x.half", "x.float", "x.long"]
    write(os.path.join(HERE, "golden_unaligned.safetensors"), unaligned, order=order,
          header_order=list(reversed(order)), extra_pad=5)

    shard_dir = os.path.join(HERE, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    shard1 = {
        "model.embed_tokens.weight": tensor("BF16", [2, 2], [1.0, 2.0, -1.0, 0.5]),
        "model.layers.0.mlp.gate.weight": tensor("F32", [2], [0.125, -8.0]),
    }
    shard2 = {
        "lm_head.weight": tensor("F16", [2, 2], [0.5, 0.25, -0.125, 4.0]),
        "extra.bias": tensor("I32", [1], [77]),  # in the shard, deliberately absent from the index
    }
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    write(os.path.join(shard_dir, names[0]), shard1, metadata={"format": "pt"})
    write(os.path.join(shard_dir, names[1]), shard2, metadata={"format": "pt"})
    weight_map = {n: names[0] for n in shard1}
    weight_map["lm_head.weight"] = names[1]
    total = sum(len(t["data"]) for t in list(shard1.values()) + list(shard2.values()))
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
