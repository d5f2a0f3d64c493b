#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Independent NumPy GGUF v3 reader and dequantizer, written from docs/export-gguf.md ("Format
reference"), not from moewb's C++.

    gguf_reference.py info FILE                  JSON: header, metadata, tensor infos, sha256 of each tensor
                                                 dequantized to little-endian float32
    gguf_reference.py to-hf FILE MODEL_DIR OUT   undo the export: dequantize, unstack experts, undo the llama
                                                 q/k RoPE row permutation, rename to HF names; writes
                                                 OUT/model.safetensors (float32) + MODEL_DIR's config/tokenizer
    gguf_reference.py from-hf MODEL_DIR OUT      an F32 GGUF of a float32 HF model as llama.cpp's converter names and
                                                 lays it out (llama for Mixtral, qwen2moe, qwen3moe, olmoe, deepseek;
                                                 q/k rows permuted for llama and deepseek, experts stacked)
    gguf_reference.py compare DIR_A DIR_B        JSON per tensor of DIR_A: max |a-b|, bit-equal, equal after
                                                 rounding both to bfloat16; plus names missing on either side

Checks done while reading (each a one-line error): magic, version 2/3, truncation, value types, duplicate keys
and tensors, alignment, tensor offsets contiguous in info order (ggml's rule), ne[0] divisible by the block size.
"""
import hashlib
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

# ggml_type id -> (name, block elements, block bytes)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
         7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84),
         11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
         15: ("Q8_K", 256, 292), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
         28: ("F64", 1, 8), 30: ("BF16", 1, 2)}
# value_type id -> (name, struct format or None)
VTYPES = {0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"), 4: ("u32", "<I"), 5: ("i32", "<i"),
          6: ("f32", "<f"), 7: ("bool", "<B"), 8: ("str", None), 9: ("arr", None), 10: ("u64", "<Q"),
          11: ("i64", "<q"), 12: ("f64", "<d")}


class GgufError(Exception):
    pass


class Reader:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0

    def take(self, n, what):
        if self.pos + n > len(self.buf):
            raise GgufError(f"{self.path}: truncated at byte {self.pos} reading {what}")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def scalar(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what):
        n = self.scalar("<Q", what)
        return self.take(n, what).decode("utf-8")

    def value(self, vt, key, depth=0):
        if vt not in VTYPES:
            raise GgufError(f"{self.path}: metadata {key}: unknown value type {vt}")
        name, fmt = VTYPES[vt]
        if name == "str":
            return self.string(key)
        if name == "arr":
            if depth:
                raise GgufError(f"{self.path}: metadata {key}: nested array")
            et = self.scalar("<I", key)
            n = self.scalar("<Q", key)
            return {"type": VTYPES.get(et, ("?",))[0], "items": [self.value(et, key, 1) for _ in range(n)]}
        v = self.scalar(fmt, key)
        if name == "bool":
            if v > 1:
                raise GgufError(f"{self.path}: metadata {key}: bool {v}")
            return bool(v)
        return v


def align_up(x, a):
    return (x + a - 1) // a * a


def parse(path):
    r = Reader(path)
    magic = r.scalar("<I", "magic")
    if magic != 0x46554747:
        raise GgufError(f"{path}: bad magic {magic:#x}")
    version = r.scalar("<I", "version")
    if version not in (2, 3):
        raise GgufError(f"{path}: unsupported version {version}")
    n_tensors = r.scalar("<Q", "tensor count")
    n_kv = r.scalar("<Q", "kv count")
    kv = {}
    for _ in range(n_kv):
        key = r.string("key")
        if key in kv:
            raise GgufError(f"{path}: duplicate key {key}")
        vt = r.scalar("<I", "value type")
        kv[key] = {"type": VTYPES.get(vt, ("?",))[0], "value": r.value(vt, key)}
    alignment = 32
    if "general.alignment" in kv:
        if kv["general.alignment"]["type"] != "u32" or kv["general.alignment"]["value"] % 8:
            raise GgufError(f"{path}: bad general.alignment")
        alignment = kv["general.alignment"]["value"]
    tensors = []
    for _ in range(n_tensors):
        name = r.string("tensor name")
        nd = r.scalar("<I", "n_dims")
        if not 1 <= nd <= 4:
            raise GgufError(f"{path}: {name}: n_dims {nd}")
        ne = [r.scalar("<Q", "ne") for _ in range(nd)]
        ty = r.scalar("<I", "type")
        if ty not in TYPES:
            raise GgufError(f"{path}: {name}: unknown type {ty}")
        off = r.scalar("<Q", "offset")
        tname, blck, tsize = TYPES[ty]
        if ne[0] % blck:
            raise GgufError(f"{path}: {name}: ne[0] {ne[0]} not a multiple of {blck}")
        nbytes = ne[0] // blck * tsize * int(np.prod(ne[1:], dtype=np.int64))
        if any(t["name"] == name for t in tensors):
            raise GgufError(f"{path}: duplicate tensor {name}")
        tensors.append({"name": name, "ne": ne, "type": tname, "offset": off, "nbytes": nbytes})
    data_offset = align_up(r.pos, alignment)
    expected = 0
    for t in tensors:
        if t["offset"] != expected:
            raise GgufError(f"{path}: tensor {t['name']} has offset {t['offset']}, expected {expected}")
        if data_offset + t["offset"] + t["nbytes"] > len(r.buf):
            raise GgufError(f"{path}: truncated: tensor {t['name']}")
        expected = align_up(t["offset"] + t["nbytes"], alignment)
    # padding between tensors and after the infos must be zero
    if any(r.buf[r.pos:data_offset]):
        raise GgufError(f"{path}: non-zero padding before the data section")
    return {"version": version, "alignment": alignment, "data_offset": data_offset, "kv": kv,
            "tensors": tensors, "buf": r.buf, "file_size": len(r.buf)}


def dequantize(g, t):
    raw = np.frombuffer(g["buf"], dtype=np.uint8, count=t["nbytes"], offset=g["data_offset"] + t["offset"])
    ty = t["type"]
    if ty == "F32":
        y = raw.view("<f4").copy()
    elif ty == "F16":
        y = raw.view("<f2").astype(np.float32)
    elif ty == "BF16":
        y = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif ty == "Q8_0":
        b = raw.reshape(-1, 34)
        d = b[:, :2].copy().view("<f2").astype(np.float32)
        q = b[:, 2:].copy().view(np.int8).astype(np.float32)
        y = (q * d).reshape(-1)
    elif ty == "Q4_0":
        b = raw.reshape(-1, 18)
        d = b[:, :2].copy().view("<f2").astype(np.float32)
        qs = b[:, 2:]
        q = np.concatenate([(qs & 0x0F).astype(np.float32) - 8, (qs >> 4).astype(np.float32) - 8], axis=1)
        y = (q * d).reshape(-1)
    elif ty == "Q4_1":
        b = raw.reshape(-1, 20)
        d = b[:, :2].copy().view("<f2").astype(np.float32)
        m = b[:, 2:4].copy().view("<f2").astype(np.float32)
        qs = b[:, 4:]
        q = np.concatenate([(qs & 0x0F).astype(np.float32), (qs >> 4).astype(np.float32)], axis=1)
        y = (q * d + m).reshape(-1)
    else:
        raise GgufError(f"cannot dequantize {ty}")
    return y.astype(np.float32).reshape(list(reversed(t["ne"])))


def cmd_info(path):
    g = parse(path)
    out = {k: g[k] for k in ("version", "alignment", "data_offset", "kv", "file_size")}
    out["tensors"] = []
    for t in g["tensors"]:
        e = dict(t)
        y = dequantize(g, t)
        e["sha256"] = hashlib.sha256(np.ascontiguousarray(y, dtype="<f4").tobytes()).hexdigest()
        out["tensors"].append(e)
    json.dump(out, sys.stdout)


def unpermute(w, n_head):
    """Inverse of the q/k row permutation (docs/export-gguf.md): rows (head, j, 2) -> (head, 2, j)."""
    rows = w.shape[0]
    rest = w.shape[1:]
    return w.reshape(n_head, rows // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(w.shape)


def cmd_to_hf(path, model_dir, out_dir):
    g = parse(path)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    arch = g["kv"]["general.architecture"]["value"]
    llama = arch == "llama"
    heads = g["kv"][f"{arch}.attention.head_count"]["value"]
    kv_heads = g["kv"][f"{arch}.attention.head_count_kv"]["value"]
    n_exp = g["kv"][f"{arch}.expert_count"]["value"]
    mix = cfg.get("model_type") == "mixtral"
    out = {}
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
                 "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
                 "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
                 "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias",
                 "attn_v.bias": "self_attn.v_proj.bias",
                 "ffn_gate_inp.weight": "block_sparse_moe.gate.weight" if mix else "mlp.gate.weight",
                 "ffn_gate_inp_shexp.weight": "mlp.shared_expert_gate.weight",
                 "ffn_gate_shexp.weight": "mlp.shared_expert.gate_proj.weight",
                 "ffn_up_shexp.weight": "mlp.shared_expert.up_proj.weight",
                 "ffn_down_shexp.weight": "mlp.shared_expert.down_proj.weight",
                 "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
                 "ffn_down.weight": "mlp.down_proj.weight"}
    stacked = {"ffn_gate_exps.weight": "w1" if mix else "gate_proj", "ffn_up_exps.weight": "w3" if mix else "up_proj",
               "ffn_down_exps.weight": "w2" if mix else "down_proj"}
    for t in g["tensors"]:
        w = dequantize(g, t)
        n = t["name"]
        if n in names:
            out[names[n]] = w
            continue
        _, layer, rest = n.split(".", 2)
        p = f"model.layers.{layer}."
        if rest in stacked:
            assert w.shape[0] == n_exp
            mid = "block_sparse_moe.experts" if mix else "mlp.experts"
            for e in range(n_exp):
                out[f"{p}{mid}.{e}.{stacked[rest]}.weight"] = w[e]
            continue
        if llama and rest in ("attn_q.weight", "attn_q.bias"):
            w = unpermute(w, heads)
        if llama and rest in ("attn_k.weight", "attn_k.bias"):
            w = unpermute(w, kv_heads)
        if rest == "ffn_gate_inp_shexp.weight":
            w = w.reshape(1, -1)
        out[p + per_layer[rest]] = w
    if cfg.get("tie_word_embeddings"):
        out.pop("lm_head.weight", None)
    os.makedirs(out_dir, exist_ok=True)
    st.save(os.path.join(out_dir, "model.safetensors"), {k: np.ascontiguousarray(v) for k, v in out.items()})
    for f in ("config.json", "tokenizer.json"):
        if os.path.exists(os.path.join(model_dir, f)):
            shutil.copy(os.path.join(model_dir, f), os.path.join(out_dir, f))


# HF model_type -> (general.architecture, q/k rows permuted)
FROM_HF_ARCH = {"mixtral": ("llama", True), "qwen2_moe": ("qwen2moe", False), "qwen3_moe": ("qwen3moe", False),
                "olmoe": ("olmoe", False), "deepseek": ("deepseek", True)}


def from_hf_keys(cfg, arch):
    """(key, gguf value type id, value) in llama.cpp's names (gguf-py constants.py Keys.LLM / Keys.Attention)."""
    u32, f32 = 4, 6
    heads = cfg["num_attention_heads"]
    kv = [("context_length", u32, cfg["max_position_embeddings"]), ("embedding_length", u32, cfg["hidden_size"]),
          ("block_count", u32, cfg["num_hidden_layers"]), ("feed_forward_length", u32, cfg["intermediate_size"]),
          ("attention.head_count", u32, heads), ("attention.head_count_kv", u32, cfg.get("num_key_value_heads", heads)),
          ("attention.layer_norm_rms_epsilon", f32, cfg["rms_norm_eps"]), ("rope.freq_base", f32, cfg["rope_theta"]),
          ("expert_count", u32, cfg.get("num_local_experts", cfg.get("num_experts", cfg.get("n_routed_experts")))),
          ("expert_used_count", u32, cfg["num_experts_per_tok"])]
    if "moe_intermediate_size" in cfg:
        kv.append(("expert_feed_forward_length", u32, cfg["moe_intermediate_size"]))
    if arch == "qwen2moe":
        kv.append(("expert_shared_feed_forward_length", u32, cfg["shared_expert_intermediate_size"]))
    if "head_dim" in cfg:
        kv += [("attention.key_length", u32, cfg["head_dim"]), ("attention.value_length", u32, cfg["head_dim"])]
    if arch == "olmoe" and cfg.get("clip_qkv"):
        kv.append(("attention.clamp_kqv", f32, cfg["clip_qkv"]))
    if arch == "deepseek":
        kv += [("leading_dense_block_count", u32, cfg["first_k_dense_replace"]),
               ("expert_shared_count", u32, cfg["n_shared_experts"])]
    return [(f"{arch}.{k}", t, v) for k, t, v in kv]


def from_hf_tensors(cfg, weights, permuted):
    """GGUF name -> float32 array (PyTorch order), in HF name order, experts stacked per layer and role."""
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    sub = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
           "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
           "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "block_sparse_moe.gate": "ffn_gate_inp",
           "mlp.gate": "ffn_gate_inp", "mlp.shared_expert_gate": "ffn_gate_inp_shexp",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for s_ in ("shared_expert", "shared_experts"):
        for r in ("gate", "up", "down"):
            sub[f"mlp.{s_}.{r}_proj"] = f"ffn_{r}_shexp"
    role = {"w1": "gate", "w3": "up", "w2": "down", "gate_proj": "gate", "up_proj": "up", "down_proj": "down"}
    out, experts = {}, {}
    for name in weights:
        w = weights[name]
        if name in top:
            out[top[name]] = w
            continue
        parts = name.split(".")
        layer, body, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
        if ".experts." in name:
            e, r = int(parts[-3]), role[parts[-2]]
            key = f"blk.{layer}.ffn_{r}_exps.weight"
            experts.setdefault(key, {})[e] = w
            out.setdefault(key, None)
            continue
        if permuted and body == "self_attn.q_proj":
            w = permute(w, heads)
        if permuted and body == "self_attn.k_proj":
            w = permute(w, kv_heads)
        if body == "mlp.shared_expert_gate":
            w = w.reshape(-1)
        out[f"blk.{layer}.{sub[body]}.{kind}"] = w
    for key, by in experts.items():
        out[key] = np.stack([by[e] for e in sorted(by)])
    return out


def permute(w, n_head):
    """convert_hf_to_gguf.py's q/k permutation: rows (head, 2, j) -> (head, j, 2)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def cmd_from_hf(model_dir, out_path):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    arch, permuted = FROM_HF_ARCH[cfg["model_type"]]
    raw, dtypes = st.load_model_dir(model_dir)
    weights = {k: st.to_float(raw[k], dtypes[k], out=np.float32) for k in sorted(raw)}
    tensors = from_hf_tensors(cfg, weights, permuted)
    kv = [("general.architecture", 8, arch), ("general.alignment", 4, 32)] + from_hf_keys(cfg, arch)
    head = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(kv))
    for k, t, v in kv:
        head += gguf_string(k) + struct.pack("<I", t)
        head += gguf_string(v) if t == 8 else struct.pack("<I" if t == 4 else "<f", v)
    offset, blobs = 0, []
    for name, w in tensors.items():
        head += gguf_string(name) + struct.pack("<I", w.ndim) + b"".join(struct.pack("<Q", n) for n in w.shape[::-1])
        head += struct.pack("<IQ", 0, offset)
        blob = np.ascontiguousarray(w, dtype="<f4").tobytes()
        blob += b"\0" * (align_up(len(blob), 32) - len(blob))
        blobs.append(blob)
        offset += len(blob)
    head += b"\0" * (align_up(len(head), 32) - len(head))
    with open(out_path, "wb") as f:
        f.write(head + b"".join(blobs))


def cmd_compare(a_dir, b_dir):
    a, ad = st.load_model_dir(a_dir)
    b, bd = st.load_model_dir(b_dir)
    res = {"missing_in_b": sorted(set(a) - set(b)), "missing_in_a": sorted(set(b) - set(a)), "tensors": {}}
    for k in sorted(set(a) & set(b)):
        x = st.to_float(a[k], ad[k], out=np.float32)
        y = st.to_float(b[k], bd[k], out=np.float32)
        x = x.reshape(-1)
        y = y.reshape(-1)
        xb = st.bf16_to_f32(st.bf16_from_f32(x))
        yb = st.bf16_to_f32(st.bf16_from_f32(y))
        res["tensors"][k] = {"shape_equal": bool(x.shape == y.shape),
                             "max_abs": float(np.max(np.abs(x - y))) if x.shape == y.shape else None,
                             "max_ref": float(np.max(np.abs(y))),
                             "equal": bool(x.shape == y.shape and np.array_equal(x, y)),
                             "equal_bf16": bool(x.shape == y.shape and np.array_equal(xb, yb))}
    json.dump(res, sys.stdout)


def main():
    try:
        if len(sys.argv) == 3 and sys.argv[1] == "info":
            cmd_info(sys.argv[2])
        elif len(sys.argv) == 5 and sys.argv[1] == "to-hf":
            cmd_to_hf(*sys.argv[2:])
        elif len(sys.argv) == 4 and sys.argv[1] == "from-hf":
            cmd_from_hf(*sys.argv[2:])
        elif len(sys.argv) == 4 and sys.argv[1] == "compare":
            cmd_compare(*sys.argv[2:])
        else:
            sys.exit(__doc__)
    except GgufError as e:
        print(f"gguf_reference: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
