#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Minimal safetensors reader/writer (struct + json + numpy only), written from docs/formats.md section 1.

Part of the independent Python reference for moewb (tests/reference/); shares no code with the C++ engine.

Representation
--------------
* ``load(path)`` returns ``(tensors, dtypes, metadata)``: ``tensors`` maps name -> numpy array
  (native little-endian), ``dtypes`` maps name -> safetensors dtype string, ``metadata`` is the
  ``__metadata__`` dict or None.  BF16 tensors come back as ``uint16`` arrays holding the raw bit
  patterns (``dtypes[name] == "BF16"``); use ``bf16_to_f32`` / ``to_float`` to get values.
* ``save(path, tensors, dtypes=None, metadata=None)`` writes the reference layout (docs/formats.md section 1.2):
  8-byte LE header length, compact JSON header with ``__metadata__`` first (default ``{"format":"pt"}``),
  header padded with spaces to a multiple of 8, tensors sorted by dtype alignment descending then
  name ascending (byte-wise), contiguous offsets.  The dtype of each tensor follows its numpy dtype;
  pass ``dtypes={name: "BF16"}`` for uint16 arrays that hold bf16 bit patterns, or pass a
  ``BF16`` instance as the value.
* ``bf16_from_f32`` rounds float32 -> bf16 bits with round-to-nearest-even (NaN -> quiet NaN with the
  same sign, overflow rounds to +-inf like torch); ``bf16_to_f32`` shifts the 16 bits into the high half.
* ``load_model_dir(dir)`` reads ``model.safetensors`` or a sharded ``model.safetensors.index.json`` set.
"""
import json
import os
import struct

import numpy as np

MAX_HEADER_SIZE = 100_000_000

# enum Dtype order (increasing alignment), docs/formats.md section 1.4; bits per element.
DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "C64", "F64", "I64", "U64"]
DTYPE_RANK = {d: i for i, d in enumerate(DTYPE_ORDER)}
DTYPE_BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
              "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
              "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
              "I64": 64, "U64": 64}
# numpy storage type per dtype (8-bit floats are kept as raw uint8 bytes).
NP_OF = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "F8_E5M2": np.uint8, "F8_E4M3": np.uint8,
         "F8_E8M0": np.uint8, "F8_E4M3FNUZ": np.uint8, "F8_E5M2FNUZ": np.uint8, "I16": np.int16,
         "U16": np.uint16, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "U32": np.uint32,
         "F32": np.float32, "C64": np.complex64, "F64": np.float64, "I64": np.int64, "U64": np.uint64}
DTYPE_OF_NP = {np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8",
               np.dtype(np.int16): "I16", np.dtype(np.uint16): "U16", np.dtype(np.float16): "F16",
               np.dtype(np.int32): "I32", np.dtype(np.uint32): "U32", np.dtype(np.float32): "F32",
               np.dtype(np.complex64): "C64", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
               np.dtype(np.uint64): "U64"}


class SafetensorsError(ValueError):
    pass


class BF16:
    """Wraps a uint16 array of bf16 bit patterns so ``save`` tags it as BF16."""

    def __init__(self, bits):
        self.bits = np.asarray(bits, dtype=np.uint16)

    @classmethod
    def from_float(cls, x):
        return cls(bf16_from_f32(x))


# ----------------------------------------------------------------------------- bf16 conversion
def bf16_from_f32(x):
    """float32 (or anything castable) -> uint16 bf16 bits, round-to-nearest-even."""
    f = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    u = f.view(np.uint32).astype(np.uint64)
    lsb = (u >> np.uint64(16)) & np.uint64(1)
    rounded = ((u + np.uint64(0x7FFF) + lsb) >> np.uint64(16)) & np.uint64(0xFFFF)
    nan = np.isnan(f)
    if nan.any():
        sign = (u >> np.uint64(16)) & np.uint64(0x8000)
        rounded = np.where(nan, sign | np.uint64(0x7FC0), rounded)
    return rounded.astype(np.uint16).reshape(f.shape)


def bf16_to_f32(bits):
    """uint16 bf16 bits -> float32 (exact)."""
    b = np.ascontiguousarray(np.asarray(bits, dtype=np.uint16))
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32).reshape(b.shape)


def to_float(array, dtype, out=np.float64):
    """Array as loaded + its safetensors dtype string -> floating array of type ``out``."""
    if dtype == "BF16":
        return bf16_to_f32(array).astype(out)
    if dtype in ("F16", "F32", "F64"):
        return np.asarray(array).astype(out)
    raise SafetensorsError(f"dtype {dtype} is not a float dtype this reference converts")


# ----------------------------------------------------------------------------- reading
def read_header(buf):
    """Parse and validate the header (docs/formats.md section 1.3). Returns (N, header dict)."""
    if len(buf) < 8:
        raise SafetensorsError("HeaderTooSmall")
    (n,) = struct.unpack_from("<Q", buf, 0)
    if n > MAX_HEADER_SIZE:
        raise SafetensorsError("HeaderTooLarge")
    if 8 + n > len(buf):
        raise SafetensorsError("InvalidHeaderLength")
    try:
        text = bytes(buf[8:8 + n]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafetensorsError("InvalidHeader") from e

    def no_dupes(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise SafetensorsError(f"InvalidHeaderDeserialization: duplicate key {k!r}")
            d[k] = v
        return d

    try:
        header = json.loads(text, object_pairs_hook=no_dupes)
    except json.JSONDecodeError as e:
        raise SafetensorsError("InvalidHeaderDeserialization") from e
    if not isinstance(header, dict):
        raise SafetensorsError("InvalidHeaderDeserialization")
    meta = header.get("__metadata__")
    if meta is not None and (not isinstance(meta, dict)
                             or not all(isinstance(v, str) for v in meta.values())):
        raise SafetensorsError("InvalidHeaderDeserialization: metadata values must be strings")
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if (not isinstance(info, dict) or info.get("dtype") not in DTYPE_BITS
                or not isinstance(info.get("shape"), list) or not isinstance(info.get("data_offsets"), list)
                or len(info["data_offsets"]) != 2):
            raise SafetensorsError(f"InvalidHeaderDeserialization: {name}")
        entries.append((tuple(info["data_offsets"]), name, info))
    entries.sort(key=lambda e: e[0])
    pos = 0
    for (begin, end), name, info in entries:
        if begin != pos or end < begin:
            raise SafetensorsError(f"InvalidOffset({name})")
        nelem = 1
        for d in info["shape"]:
            nelem *= int(d)
        bits = nelem * DTYPE_BITS[info["dtype"]]
        if bits % 8:
            raise SafetensorsError("MisalignedSlice")
        if end - begin != bits // 8:
            raise SafetensorsError(f"TensorInvalidInfo({name})")
        pos = end
    if 8 + n + pos != len(buf):
        raise SafetensorsError("MetadataIncompleteBuffer")
    return n, header


def loads(buf):
    n, header = read_header(buf)
    base = 8 + n
    tensors, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in NP_OF:
            raise SafetensorsError(f"dtype {dt} not supported by this reader")
        begin, end = info["data_offsets"]
        raw = bytes(buf[base + begin:base + end])  # copy: handles unaligned offsets
        arr = np.frombuffer(raw, dtype=np.dtype(NP_OF[dt]).newbyteorder("<")).astype(NP_OF[dt])
        tensors[name] = arr.reshape([int(d) for d in info["shape"]])
        dtypes[name] = dt
    return tensors, dtypes, header.get("__metadata__")


def load(path):
    with open(path, "rb") as f:
        return loads(f.read())


def load_model_dir(model_dir):
    """All tensors of a HF model dir (single file or sharded). Returns (tensors, dtypes)."""
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        t, d, _ = load(single)
        return t, d
    if os.path.exists(index):
        with open(index, "r", encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        tensors, dtypes = {}, {}
        for shard in sorted(set(weight_map.values())):
            t, d, _ = load(os.path.join(model_dir, shard))
            tensors.update(t)
            dtypes.update(d)
        return tensors, dtypes
    raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in {model_dir}")


# ----------------------------------------------------------------------------- writing
def _normalize(name, value, dtypes):
    if isinstance(value, BF16):
        return "BF16", value.bits
    arr = np.asarray(value)
    want = (dtypes or {}).get(name)
    if want == "BF16":
        if arr.dtype != np.uint16:
            raise SafetensorsError(f"{name}: BF16 tensors must be given as uint16 bit patterns")
        return "BF16", arr
    dt = DTYPE_OF_NP.get(arr.dtype)
    if dt is None:
        raise SafetensorsError(f"{name}: unsupported numpy dtype {arr.dtype}")
    if want is not None and want != dt:
        raise SafetensorsError(f"{name}: dtype override {want} does not match numpy dtype {arr.dtype}")
    return dt, arr


def dumps(tensors, dtypes=None, metadata=None):
    """Serialize to bytes in the reference layout."""
    if metadata is None:
        metadata = {"format": "pt"}
    items = []
    for name, value in tensors.items():
        if name == "__metadata__":
            raise SafetensorsError("tensor may not be called __metadata__")
        dt, arr = _normalize(name, value, dtypes)
        le = np.ascontiguousarray(arr, dtype=np.dtype(arr.dtype).newbyteorder("<"))
        items.append((dt, name, list(arr.shape), le.tobytes()))
    # dtype alignment descending, then name ascending byte-wise
    items.sort(key=lambda it: (-DTYPE_RANK[it[0]], it[1].encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    pos = 0
    for dt, name, shape, data in items:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [pos, pos + len(data)]}
        pos += len(data)
    hbytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    if len(hbytes) > MAX_HEADER_SIZE:
        raise SafetensorsError("HeaderTooLarge")
    return b"".join([struct.pack("<Q", len(hbytes)), hbytes] + [it[3] for it in items])


def save(path, tensors, dtypes=None, metadata=None):
    data = dumps(tensors, dtypes, metadata)
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    import sys
    for p in sys.argv[1:]:
        t, d, m = load(p)
        print(f"{p}: metadata={m}")
        for k in t:
            print(f"  {k}: {d[k]} {list(t[k].shape)}")
