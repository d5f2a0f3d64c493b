#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write an OLMoE-1B-7B-shaped random checkpoint, streaming: one safetensors shard per decoder layer.

    /usr/bin/python3 scripts/gen_full_model.py OUT_DIR [--layers N] [--seed S] [--tokenizer TOKENIZER_JSON]

Shape (allenai/OLMoE-1B-7B-0924's published config.json): 16 layers, hidden 2048, 16 heads (no GQA, head_dim
128), q_norm / k_norm over the whole projection [2048], 64 experts of width 1024, top-8, norm_topk_prob false,
vocabulary 50304, untied lm_head, rope_theta 10000, rms_norm_eps 1e-5: 6.92 B parameters, 13.8 GB in bf16.
--layers N keeps the width and writes N layers (1 layer: 0.63 B parameters, 1.25 GB).

Memory: one tensor at a time (the largest, the embedding, is 50304 x 2048 = 0.4 GB in f32); every tensor is
written as soon as it is drawn, so the full model needs < 1.5 GB of RAM. Each tensor has its own random stream
(PCG64 seeded by (seed, crc32(name))), so an N-layer model's first layers equal the 16-layer model's.

Values (realistic scale: activations O(1) in every layer):
  embed_tokens N(0, 0.3^2), except channel 0, which is the constant C = 8 for every token;
  q/k/v, gate/up, router N(0, 1/fan_in); o_proj, down_proj N(0, 0.5^2/fan_in) with row 0 scaled by 0.1
  (so the residual stream keeps channel 0 near C in every layer); lm_head N(0, 4/hidden);
  norms 1 + N(0, 0.1^2), except input_layernorm[0] = 0.1 (attention sees channel 0 only mildly).
Router skew: channel 0 is a massive-activation channel (as in trained LLMs): after post_attention_layernorm it
is x0 ~ C / rms(h) (about 23 in layer 0) for every token, so the router's column 0, set to b_e / x0(layer 0),
adds a per-expert bias b_e ~ N(0, 0.5^2) to the logits, against the token-dependent part of std ~0.86.
Top-8 of 64 then routes unevenly: in a Monte-Carlo of the layer-0 logits (seed 0) the most-used expert gets
3.4x its fair share (8/64 of the tokens), the median one 0.71x, the least-used 0.04x (10th/90th percentile
0.17x / 2.3x); deeper layers, whose residual has grown, are flatter. The generator prints the expected shares of layer 0.
"""
import argparse
import json
import os
import shutil
import sys
import zlib

import numpy as np

CONFIG = {
    "architectures": ["OlmoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "clip_qkv": None,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 1024,
    "max_position_embeddings": 4096, "model_type": "olmoe", "norm_topk_prob": False, "num_attention_heads": 16,
    "num_experts": 64, "num_experts_per_tok": 8, "num_hidden_layers": 16, "num_key_value_heads": 16,
    "output_router_logits": False, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
    "router_aux_loss_coef": 0.01, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 50304,
}
C0 = 8.0           # channel 0 of every embedding
EMB_STD = 0.3
BIAS_STD = 0.5     # per-expert router bias, in logit units


def die(msg):
    print(f"gen_full_model.py: {msg}", file=sys.stderr)
    sys.exit(1)


def bf16_bytes(x):
    """float32 array -> bf16 bytes, round to nearest even (no NaNs occur here)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    u = u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
    return (u >> np.uint32(16)).astype(np.uint16).tobytes()


def rng_for(seed, name):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())])))


def layer0_x0():
    """Channel 0 after the layer-0 RMSNorm (weight 1): C / rms of an embedding row."""
    H = CONFIG["hidden_size"]
    return C0 / np.sqrt((C0 ** 2 + (H - 1) * EMB_STD ** 2) / H)


class Tensor:
    def __init__(self, name, shape, make):
        self.name, self.shape, self.make = name, shape, make

    @property
    def nbytes(self):
        return 2 * int(np.prod(self.shape))


def tensors_of_layer(c, i, seed):
    H, I, E = c["hidden_size"], c["intermediate_size"], c["num_experts"]
    p = f"model.layers.{i}"
    out = []

    def linear(name, o, n, scale=1.0, row0=1.0):
        def make():
            w = rng_for(seed, name).standard_normal((o, n), dtype=np.float32) * np.float32(scale / np.sqrt(n))
            w[0] *= np.float32(row0)
            return w
        out.append(Tensor(name, (o, n), make))

    def norm(name, n, first=None):
        def make():
            w = 1.0 + rng_for(seed, name).standard_normal(n, dtype=np.float32) * np.float32(0.1)
            if first is not None:
                w[0] = first
            return w
        out.append(Tensor(name, (n,), make))

    def router(name):
        def make():
            r = rng_for(seed, name)
            w = r.standard_normal((E, H), dtype=np.float32) * np.float32(1 / np.sqrt(H))
            w[:, 0] = r.standard_normal(E, dtype=np.float32) * np.float32(BIAS_STD / layer0_x0())
            return w
        out.append(Tensor(name, (E, H), make))

    norm(f"{p}.input_layernorm.weight", H, first=0.1)
    a = f"{p}.self_attn"
    for x in "qkv":
        linear(f"{a}.{x}_proj.weight", H, H)
    linear(f"{a}.o_proj.weight", H, H, 0.5, 0.1)
    norm(f"{a}.q_norm.weight", H)
    norm(f"{a}.k_norm.weight", H)
    norm(f"{p}.post_attention_layernorm.weight", H)
    router(f"{p}.mlp.gate.weight")
    for j in range(E):
        e = f"{p}.mlp.experts.{j}"
        linear(f"{e}.gate_proj.weight", I, H)
        linear(f"{e}.up_proj.weight", I, H)
        linear(f"{e}.down_proj.weight", H, I, 0.5, 0.1)
    return out


def tensors_outer(c, seed):
    H, V = c["hidden_size"], c["vocab_size"]

    def embed():
        w = rng_for(seed, "model.embed_tokens.weight").standard_normal((V, H), dtype=np.float32) * np.float32(EMB_STD)
        w[:, 0] = C0
        return w

    def head():
        return rng_for(seed, "lm_head.weight").standard_normal((V, H), dtype=np.float32) * np.float32(2 / np.sqrt(H))

    def fnorm():
        return 1.0 + rng_for(seed, "model.norm.weight").standard_normal(H, dtype=np.float32) * np.float32(0.1)

    return [Tensor("model.embed_tokens.weight", (V, H), embed), Tensor("model.norm.weight", (H,), fnorm),
            Tensor("lm_head.weight", (V, H), head)]


def write_shard(path, tensors):
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for t in tensors:
        header[t.name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + t.nbytes]}
        off += t.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(len(h).to_bytes(8, "little"))
            f.write(h)
            for t in tensors:
                f.write(bf16_bytes(t.make()))
        os.replace(tmp, path)
    except OSError as e:
        die(f"{path}: {e.strerror}")
    return off


def routing_shares(seed, n=20000):
    """Expected share of the top-8 slots per expert in layer 0 (Monte-Carlo of logit = noise + bias)."""
    c = CONFIG
    E, K = c["num_experts"], c["num_experts_per_tok"]
    r = rng_for(seed, "model.layers.0.mlp.gate.weight")
    r.standard_normal((E, c["hidden_size"]), dtype=np.float32)
    b = r.standard_normal(E, dtype=np.float32) * np.float32(BIAS_STD)
    noise_std = EMB_STD / np.sqrt((C0 ** 2 + (c["hidden_size"] - 1) * EMB_STD ** 2) / c["hidden_size"])
    logits = np.random.default_rng(0).standard_normal((n, E)) * noise_std + b
    top = np.argpartition(-logits, K, axis=1)[:, :K]
    return np.bincount(top.ravel(), minlength=E) / (n * K)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json to copy (ids must be < 50304)")
    ap.add_argument("--eos-id", type=int, default=None, help="eos_token_id of config.json")
    a = ap.parse_args(argv)
    if a.layers < 1:
        die("--layers must be >= 1")
    c = dict(CONFIG, num_hidden_layers=a.layers)
    if a.eos_id is not None:
        c["eos_token_id"] = a.eos_id
    try:
        os.makedirs(a.out_dir, exist_ok=True)
        with open(os.path.join(a.out_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(dict(sorted(c.items())), f, indent=2)
            f.write("\n")
        if a.tokenizer:
            shutil.copyfile(a.tokenizer, os.path.join(a.out_dir, "tokenizer.json"))
    except OSError as e:
        die(f"{e.filename}: {e.strerror}")
    shards = [tensors_outer(c, a.seed)] + [tensors_of_layer(c, i, a.seed) for i in range(a.layers)]
    n = len(shards)
    weight_map, total, params = {}, 0, 0
    for k, ts in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        total += write_shard(os.path.join(a.out_dir, fname), ts)
        for t in ts:
            weight_map[t.name] = fname
            params += int(np.prod(t.shape))
        print(f"{fname}: {len(ts)} tensors", file=sys.stderr, flush=True)
    try:
        with open(os.path.join(a.out_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
            f.write("\n")
    except OSError as e:
        die(f"{e.filename}: {e.strerror}")
    s = np.sort(routing_shares(a.seed)) * c["num_experts"]
    print(f"{params / 1e9:.3f} B parameters, {total / 1e9:.2f} GB bf16; layer-0 expected expert load "
          f"(1 = uniform): max {s[-1]:.2f}, median {np.median(s):.2f}, min {s[0]:.3f}")


if __name__ == "__main__":
    main()
