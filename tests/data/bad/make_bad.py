#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the malformed-input corpus of tests/data/bad/ (issue #13).

Every file (or model directory) here is broken in exactly one way; MANIFEST.json says how each one
is opened by tst_bad_inputs and which words the one-line error must contain. The files are
committed; rerun this script (/usr/bin/python3 tests/data/bad/make_bad.py) after changing it.
Deterministic: fixed seeds, no timestamps.
"""
import json
import os
import shutil
import struct
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FUZZ = os.path.join(REPO, "tests", "fuzz")


def out(*parts):
    p = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---------------------------------------------------------------------------------------- safetensors
DT = {"F32": (np.float32, 4), "BF16": (None, 2), "F16": (np.float16, 2), "I32": (np.int32, 4)}


def safetensors_bytes(tensors, header_extra=None, raw_header=None):
    """tensors: list of (name, dtype, shape, bytes). Returns the file bytes (8-aligned header)."""
    header, blobs, off = {}, [], 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if header_extra:
        header.update(header_extra)
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32(a):
    return np.asarray(a, dtype=np.float32).tobytes()


def make_safetensors():
    rng = np.random.default_rng(1)
    w = f32(rng.standard_normal((4, 4)))
    good = [("w", "F32", (4, 4), w)]
    full = safetensors_bytes(good)
    write(out("safetensors", "truncated.safetensors"), full[:-10])
    write(out("safetensors", "empty.safetensors"), b"")
    write(out("safetensors", "header_length_huge.safetensors"), struct.pack("<Q", 1 << 62) + full[8:])
    write(out("safetensors", "header_length_beyond_file.safetensors"), struct.pack("<Q", 4096) + full[8:])
    write(out("safetensors", "header_not_json.safetensors"), safetensors_bytes([], raw_header=b"{\"w\": [1, 2,"))
    write(out("safetensors", "unknown_dtype.safetensors"), safetensors_bytes([("w", "Q7", (4, 4), w)]))
    write(out("safetensors", "shape_size_mismatch.safetensors"), safetensors_bytes([("w", "F32", (4, 5), w)]))
    # two tensors whose byte ranges overlap
    h = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
         "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
    write(out("safetensors", "overlapping_offsets.safetensors"),
          safetensors_bytes([], raw_header=json.dumps(h).encode()) + f32(np.zeros(6)))
    h = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}
    write(out("safetensors", "reversed_offsets.safetensors"),
          safetensors_bytes([], raw_header=json.dumps(h).encode()) + f32(np.zeros(4)))
    raw = b'{"w\xff\xfe":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}'
    write(out("safetensors", "invalid_utf8_name.safetensors"), safetensors_bytes([], raw_header=raw) + w)
    deep = b'{"__metadata__":{"x":' + b"[" * 20000 + b"]" * 20000 + b"}}"
    write(out("safetensors", "deeply_nested_header.safetensors"), safetensors_bytes([], raw_header=deep))
    h = {"w": {"dtype": "F32", "shape": [-4, 4], "data_offsets": [0, 64]}}
    write(out("safetensors", "negative_shape.safetensors"), safetensors_bytes([], raw_header=json.dumps(h).encode()) + w)


# ---------------------------------------------------------------------------------------- config.json
def base_config():
    return {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "vocab_size": 32,
            "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 4, "hidden_act": "silu", "max_position_embeddings": 64,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "num_local_experts": 4, "num_experts_per_tok": 2,
            "tie_word_embeddings": False, "torch_dtype": "float32"}


def make_configs():
    c = base_config()
    write(out("config", "truncated.json"), json.dumps(c)[:70])
    x = dict(c, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    write(out("config", "unknown_architecture.json"), json.dumps(x))
    x = dict(c)
    del x["hidden_size"]
    write(out("config", "missing_hidden_size.json"), json.dumps(x))
    write(out("config", "negative_experts.json"), json.dumps(dict(c, num_local_experts=-1)))
    write(out("config", "top_k_above_experts.json"), json.dumps(dict(c, num_experts_per_tok=9)))
    write(out("config", "wrong_type.json"), json.dumps(dict(c, hidden_size="big")))
    write(out("config", "invalid_utf8.json"), json.dumps(c).replace('"mixtral"', '"mix\udcfftral"', 1)
          .encode("utf-8", "surrogateescape"))
    write(out("config", "deeply_nested.json"), '{"model_type":' + "[" * 20000 + "]" * 20000 + "}")
    write(out("config", "heads_do_not_divide.json"), json.dumps(dict(c, num_attention_heads=3, num_key_value_heads=2)))


# ---------------------------------------------------------------------------------------- plan
def make_plans():
    base = {"format": "moewb-plan", "version": 1,
            "defaults": {"bits": 4, "group_size": 128, "sym": True, "method": "gptq"}}
    write(out("plan", "truncated.json"), json.dumps(base)[:30])
    write(out("plan", "invalid_regex.json"), json.dumps(dict(base, rules=[{"match": "model.layers.(", "bits": 8}])))
    write(out("plan", "unknown_key.json"), json.dumps(dict(base, defualts={"bits": 3})))
    write(out("plan", "bits_5.json"), json.dumps(dict(base, defaults={"bits": 5})))
    write(out("plan", "group_size_100.json"), json.dumps(dict(base, defaults={"bits": 4, "group_size": 100})))
    write(out("plan", "future_version.json"), json.dumps(dict(base, version=99)))
    write(out("plan", "deeply_nested.json"), '{"format":"moewb-plan","version":1,"rules":' + "[" * 20000 + "]" * 20000 + "}")
    write(out("plan", "not_an_object.json"), "[1, 2, 3]")
    write(out("plan", "invalid_utf8.json"), b'{"format":"moewb-plan","version":1,"rules":[{"match":"\xff\xfe","bits":8}]}')


# ---------------------------------------------------------------------------------------- tokenizer.json
def make_tokenizers():
    vocab = {"a": 0, "b": 1, "ab": 2}
    tok = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
           "post_processor": None, "decoder": None,
           "model": {"type": "BPE", "vocab": vocab, "merges": ["a b"], "unk_token": None}}
    write(out("tokenizer", "truncated.json"), json.dumps(tok)[:60])
    t = json.loads(json.dumps(tok))
    t["model"]["type"] = "Foo"
    write(out("tokenizer", "unknown_model_type.json"), json.dumps(t))
    t = json.loads(json.dumps(tok))
    t["model"]["merges"] = ["a c"]
    write(out("tokenizer", "merge_of_unknown_token.json"), json.dumps(t))
    write(out("tokenizer", "invalid_utf8.json"), json.dumps(tok).replace('"ab"', '"a\udcff"', 1)
          .encode("utf-8", "surrogateescape"))
    write(out("tokenizer", "deeply_nested.json"), json.dumps(tok)[:-1] + ', "extra": ' + "[" * 20000 + "]" * 20000 + "}")
    t = json.loads(json.dumps(tok))
    t["model"]["vocab"] = {"a": 0, "b": 0, "ab": 2}
    write(out("tokenizer", "duplicate_id.json"), json.dumps(t))


# ---------------------------------------------------------------------------------------- stats.h5
def make_stats():
    src = os.path.join(FUZZ, "corpus", "fuzz_stats", "tiny.h5")
    good = open(src, "rb").read()
    write(out("stats", "not_hdf5.h5"), b"this is not an HDF5 file\n" * 4)
    write(out("stats", "truncated.h5"), good[: len(good) // 2])
    p = out("stats", "missing_dataset.h5")
    shutil.copyfile(src, p)
    with h5py.File(p, "r+") as f:
        victim = None
        def find(name, obj):
            nonlocal victim
            if victim is None and isinstance(obj, h5py.Dataset) and name.endswith("counts"):
                victim = name
        f.visititems(find)
        assert victim, "tiny.h5 has no *counts dataset"
        del f[victim]
    print("stats/missing_dataset.h5: removed", victim)
    p = out("stats", "wrong_dataset_type.h5")
    shutil.copyfile(src, p)
    with h5py.File(p, "r+") as f:
        victim = None
        def find2(name, obj):
            nonlocal victim
            if victim is None and isinstance(obj, h5py.Dataset) and obj.dtype.kind in "iu" and obj.ndim >= 1:
                victim = name
        f.visititems(find2)
        data = f[victim][...]
        del f[victim]
        f.create_dataset(victim, data=data.astype(np.float32) + 0.5)
    print("stats/wrong_dataset_type.h5: float", victim)
    v1 = os.path.join(FUZZ, "regress", "fuzz_stats", "fuzz_stats-crash-994c46fcbf12377933578493e5e7936864a1c472")
    shutil.copyfile(v1, out("stats", "format_version_1.h5"))


# ---------------------------------------------------------------------------------------- GGUF
# ggml type id: (name, values per block, bytes per block, byte offsets of the fp16 scale fields)
GGML_BLOCKS = {
    6: ("Q5_0", 32, 22, [0]), 7: ("Q5_1", 32, 24, [0, 2]), 10: ("Q2_K", 256, 84, [80, 82]),
    11: ("Q3_K", 256, 110, [108]), 12: ("Q4_K", 256, 144, [0, 2]), 13: ("Q5_K", 256, 176, [0, 2]),
    14: ("Q6_K", 256, 210, [208]), 20: ("IQ4_NL", 32, 18, [0]),
}


def gguf_bytes(tensors, kv=(("general.name", "blocks"),)):
    """A GGUF v3 file with string metadata kv and tensors [(name, ne, ggml type, data)], alignment 32."""
    def gstr(v):
        b = v.encode()
        return struct.pack("<Q", len(b)) + b

    def pad(n):
        return (32 - n % 32) % 32

    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, v in kv:
        head += gstr(k) + struct.pack("<I", 8) + gstr(v)
    data, off = b"", 0
    for name, ne, typ, blob in tensors:
        head += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", e) for e in ne)
        head += struct.pack("<IQ", typ, off)
        data += blob + b"\0" * pad(len(blob))
        off = len(data)
    return head + b"\0" * pad(len(head)) + data


def ggml_blocks(typ, count, rng, scale_override=None):
    """count random blocks of ggml type typ whose fp16 scale fields hold finite values (block 0: 0)."""
    _, _, size, fields = GGML_BLOCKS[typ]
    raw = rng.integers(0, 256, size=(count, size), dtype=np.uint8)
    for b in range(count):
        for off in fields:
            v = 0.0 if b == 0 else float(rng.uniform(-2.0, 2.0) * 2.0 ** -int(rng.integers(0, 10)))
            raw[b, off:off + 2] = np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)
    if scale_override:
        block, field, half_bits = scale_override
        raw[block, fields[field]:fields[field] + 2] = np.frombuffer(struct.pack("<H", half_bits), dtype=np.uint8)
    return raw.tobytes()


def make_gguf_blocks():
    """The fuzz seed with one two-row tensor of each block type moewb decodes beyond the first GGUF
    export's (tests/fuzz/corpus/fuzz_gguf/blocks.gguf), and malformed variants of it."""
    rng = np.random.default_rng(26)
    tensors = []
    for typ, (name, block, _size, _f) in GGML_BLOCKS.items():
        tensors.append((f"blk.0.{name.lower()}.weight", [block, 2], typ, ggml_blocks(typ, 2, rng)))
    good = gguf_bytes(tensors)
    write(os.path.join(FUZZ, "corpus", "fuzz_gguf", "blocks.gguf"), good)
    write(out("gguf", "kquant_truncated.gguf"), good[: len(good) - 100])
    # a Q4_K tensor whose rows (128 values) are not whole 256-value super-blocks
    write(out("gguf", "kquant_row_width.gguf"),
          gguf_bytes([("blk.0.ffn_down.weight", [128, 2], 12, ggml_blocks(12, 1, rng))]))
    # the second Q6_K super-block's d is NaN (0x7E00); an IQ4_NL block's d is +inf (0x7C00)
    write(out("gguf", "kquant_nan_scale.gguf"),
          gguf_bytes([("blk.0.ffn_up.weight", [256, 2], 14, ggml_blocks(14, 2, rng, (1, 0, 0x7E00)))]))
    write(out("gguf", "iq4nl_inf_scale.gguf"),
          gguf_bytes([("blk.0.attn_q.weight", [64, 1], 20, ggml_blocks(20, 2, rng, (0, 0, 0x7C00)))]))


# ggml type id: (name, values per block, bytes per block, fp16 scale fields) of the pre-K types
LEGACY_BLOCKS = {2: ("Q4_0", 32, 18, [0]), 3: ("Q4_1", 32, 20, [0, 2]), 8: ("Q8_0", 32, 34, [0])}
# fp16 bit patterns at the edges of the finite range: 0, -0, the smallest subnormal, the largest
# subnormal, the smallest normal, 1, the largest finite, its negative
EDGE_HALVES = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0xFBFF]


def make_gguf_seeds():
    """tests/fuzz/corpus/fuzz_gguf/kquants_stacked.gguf: every block type moewb decodes as stacked
    expert tensors (ne = [2 blocks, 2 rows, 2 experts], and one 4-D), their fp16 scale fields at the
    edges of the finite range (EDGE_HALVES) so the dequantizers' products reach subnormals and
    65504² magnitudes; F16, BF16 and F32 tensors beside them."""
    rng = np.random.default_rng(261)
    tensors = []
    edge = 0
    for typ, (name, block, size, fields) in sorted({**GGML_BLOCKS, **LEGACY_BLOCKS}.items()):
        raw = rng.integers(0, 256, size=(8, size), dtype=np.uint8)
        for b in range(8):
            for off in fields:
                raw[b, off:off + 2] = np.frombuffer(struct.pack("<H", EDGE_HALVES[edge % 8]), dtype=np.uint8)
                edge += 1
        tensors.append((f"blk.0.ffn_up_exps.{name.lower()}.weight", [2 * block, 2, 2], typ, raw.tobytes()))
    # a 4-D Q6_K tensor: ne = [256, 1, 2, 2]
    tensors.append(("blk.1.ffn_down_exps.q6_k.weight", [256, 1, 2, 2], 14, ggml_blocks(14, 4, rng)))
    halves = np.array(EDGE_HALVES * 4, dtype=np.uint16)
    tensors.append(("blk.1.attn_q.f16.weight", [8, 2, 2], 1, halves.tobytes()))
    bf16 = np.array([0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0x7F7F, 0xFF7F] * 4, dtype=np.uint16)
    tensors.append(("blk.1.attn_k.bf16.weight", [8, 2, 2], 30, bf16.tobytes()))
    tensors.append(("blk.1.attn_v.f32.weight", [4, 2, 2, 2], 0,
                    rng.standard_normal(32).astype(np.float32).tobytes()))
    write(os.path.join(FUZZ, "corpus", "fuzz_gguf", "kquants_stacked.gguf"),
          gguf_bytes(tensors, kv=(("general.name", "kquants_stacked"), ("general.architecture", "llama"))))


# fuzz/fuzz_ggml_quant.cpp's type order (byte 0 of an input)
QUANT_FUZZ_TYPES = ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k",
                    "q6_k", "iq4_nl"]


def make_quant_seeds():
    """tests/fuzz/corpus/fuzz_ggml_quant/: per type one 256-value Gaussian row with an importance
    vector (gamma-distributed, as act_sq_mean is), and for the quantized types rows the encoders
    treat specially: zeros, one outlier, values near the fp16 subnormal range, a constant row,
    a zero importance."""
    rng = np.random.default_rng(2626)
    d = os.path.join(FUZZ, "corpus", "fuzz_ggml_quant")
    os.makedirs(d, exist_ok=True)

    def seed(name, typ, row, imp=None):
        head = bytes([QUANT_FUZZ_TYPES.index(typ), 1 if imp is not None else 0])
        body = np.asarray(row, np.float32).tobytes() + (b"" if imp is None else np.asarray(imp, np.float32).tobytes())
        write(os.path.join(d, name), head + body)

    for typ in QUANT_FUZZ_TYPES:
        seed(f"{typ}_gauss_imp", typ, rng.standard_normal(256) * 0.05, rng.gamma(0.5, 2.0, 256))
    outlier = rng.standard_normal(256) * 0.02
    outlier[77] = 3.0
    specials = {"zeros": np.zeros(256), "outlier": outlier, "tiny": rng.standard_normal(256) * 1e-6,
                "constant": np.full(256, -0.125)}
    for i, typ in enumerate(["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "q4_1", "q5_0"]):
        kind = list(specials)[i % 4]
        seed(f"{typ}_{kind}", typ, specials[kind])
    imp = rng.gamma(0.5, 2.0, 256)
    imp[:128] = 0.0
    seed("q3_k_half_zero_imp", "q3_k", rng.standard_normal(256) * 0.05, imp)


def make_gguf():
    good = open(os.path.join(FUZZ, "corpus", "fuzz_gguf", "tiny.gguf"), "rb").read()
    write(out("gguf", "bad_magic.gguf"), b"GGML" + good[4:])
    write(out("gguf", "truncated.gguf"), good[: len(good) // 2])
    write(out("gguf", "version_99.gguf"), good[:4] + struct.pack("<I", 99) + good[8:])
    # header claiming 2^40 tensors
    write(out("gguf", "huge_tensor_count.gguf"), good[:8] + struct.pack("<Q", 1 << 40) + good[16:])


# ---------------------------------------------------------------------------------------- model dirs
def model_tensors(cfg, rng):
    H, I, V, E = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["num_local_experts"]
    D = cfg["head_dim"]
    nq, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    t = {"model.embed_tokens.weight": rng.standard_normal((V, H)) * 0.5}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}"
        t[p + ".input_layernorm.weight"] = np.ones(H)
        t[p + ".post_attention_layernorm.weight"] = np.ones(H)
        t[p + ".self_attn.q_proj.weight"] = rng.standard_normal((nq * D, H)) * 0.3
        t[p + ".self_attn.k_proj.weight"] = rng.standard_normal((nkv * D, H)) * 0.3
        t[p + ".self_attn.v_proj.weight"] = rng.standard_normal((nkv * D, H)) * 0.3
        t[p + ".self_attn.o_proj.weight"] = rng.standard_normal((H, nq * D)) * 0.3
        t[p + ".block_sparse_moe.gate.weight"] = rng.standard_normal((E, H)) * 0.3
        for e in range(E):
            q = f"{p}.block_sparse_moe.experts.{e}"
            t[q + ".w1.weight"] = rng.standard_normal((I, H)) * 0.3
            t[q + ".w2.weight"] = rng.standard_normal((H, I)) * 0.3
            t[q + ".w3.weight"] = rng.standard_normal((I, H)) * 0.3
    t["model.norm.weight"] = np.ones(H)
    t["lm_head.weight"] = rng.standard_normal((V, H)) * 0.3
    return {k: np.asarray(v, dtype=np.float32) for k, v in t.items()}


def write_model(name, cfg, tensors, dtypes=None, files=None):
    d = out("model", name, "config.json")
    d = os.path.dirname(d)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    if cfg is not None:
        write(os.path.join(d, "config.json"), json.dumps(cfg, indent=1))
    dtypes = dtypes or {}
    entries = []
    for k in sorted(tensors):
        a = tensors[k]
        dt = dtypes.get(k, "F32")
        data = a.astype(np.int32).tobytes() if dt == "I32" else a.astype(np.float32).tobytes()
        entries.append((k, dt, a.shape, data))
    if files is None:
        write(os.path.join(d, "model.safetensors"), safetensors_bytes(entries))
    else:
        files(d, entries)


def make_models():
    cfg = base_config()
    good = model_tensors(cfg, np.random.default_rng(7))
    t = dict(good)
    del t["model.layers.1.block_sparse_moe.experts.2.w3.weight"]
    write_model("missing_tensor", cfg, t)
    write_model("wrong_dtype", cfg, good, dtypes={"model.layers.0.self_attn.k_proj.weight": "I32"})
    t = dict(good)
    t["model.layers.0.self_attn.q_proj.weight"] = good["model.layers.0.self_attn.q_proj.weight"][:, :6]
    write_model("wrong_shape", cfg, t)
    t = dict(good)
    w = good["model.layers.1.block_sparse_moe.experts.0.w1.weight"].copy()
    w[3, 2] = np.nan
    t["model.layers.1.block_sparse_moe.experts.0.w1.weight"] = w
    write_model("nan_weight", cfg, t)
    t = dict(good)
    w = good["model.layers.0.self_attn.v_proj.weight"].copy()
    w[0, 0] = np.inf
    w[1, 1] = -np.inf
    t["model.layers.0.self_attn.v_proj.weight"] = w
    write_model("inf_weight", cfg, t)
    # finite weights whose products overflow fp32: every routed expert's down projection in layer 0
    t = dict(good)
    for e in range(cfg["num_local_experts"]):
        k = f"model.layers.0.block_sparse_moe.experts.{e}.w2.weight"
        t[k] = np.full_like(good[k], 3e38)
    write_model("overflowing_activations", cfg, t)
    write_model("no_config", None, good)

    def sharded_missing(d, entries):
        half = len(entries) // 2
        index = {"metadata": {"total_size": 0}, "weight_map": {}}
        for i, (k, *_rest) in enumerate(entries):
            index["weight_map"][k] = "model-00001-of-00002.safetensors" if i < half else "model-00002-of-00002.safetensors"
        write(os.path.join(d, "model-00001-of-00002.safetensors"), safetensors_bytes(entries[:half]))
        write(os.path.join(d, "model.safetensors.index.json"), json.dumps(index, indent=1))
    write_model("missing_shard", cfg, good, files=sharded_missing)

    def truncated_shard(d, entries):
        b = safetensors_bytes(entries)
        write(os.path.join(d, "model.safetensors"), b[: len(b) - 100])
    write_model("truncated_weights", cfg, good, files=truncated_shard)


def main():
    make_safetensors()
    make_configs()
    make_plans()
    make_tokenizers()
    make_stats()
    make_gguf()
    make_gguf_blocks()
    make_gguf_seeds()
    make_quant_seeds()
    make_models()
    return 0


if __name__ == "__main__":
    sys.exit(main())
