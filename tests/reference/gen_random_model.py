#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write a small random Hugging Face-layout checkpoint (config.json, model.safetensors, tokenizer.json).

    /usr/bin/python3 tests/reference/gen_random_model.py ARCH OUT_DIR [--seed S] [--dtype f32|bf16|f16]
                     [--layers N] [--tiny] [--tied] [--norm-topk-prob true|false]
                     [--experts E] [--top-k K]

ARCH in {mixtral, qwen2_moe, qwen3_moe, deepseek, olmoe, llama, mistral, qwen2}.
Tensor names and config keys follow docs/formats.md section 2 (per-expert 2-D tensors, hub layout).
Deterministic: all values come from numpy Generator(PCG64(seed)), drawn in a fixed order, so the
same arguments give byte-identical files.

Dimensions (default / --tiny):
  hidden 64 / 32, heads 4, kv heads 2 (GQA), head_dim 16 / 8 (qwen3_moe: 24 / 12, explicitly != hidden/heads),
  layers 3 / 2, vocab 300 (tokenizer uses ids 0..296).
  mixtral   8 experts / 4, top-2, expert width (intermediate_size) 96 / 48
  qwen2_moe 12 routed / 6, top-4 / 2, moe width 32 / 16, shared width 96 / 48, dense width 128 / 64,
            mlp_only_layers [1] (layer 1 is dense), norm_topk_prob false, q/k/v bias
  qwen3_moe 8 experts / 4, top-3 / 2, moe width 48 / 24, norm_topk_prob true, per-head q/k norm [head_dim]
  deepseek  12 routed / 6, top-4 / 2, 2 shared (one MLP 2*moe width), moe width 32 / 16, dense width 128 / 64,
            first_k_dense_replace 1 (layer 0 dense), moe_layer_freq 1, norm_topk_prob false
  olmoe     8 experts / 4, top-2, expert width 48 / 24, q_norm [hidden], k_norm [kv_heads*head_dim],
            clip_qkv 2.0 (about 5% of q/k/v values get clipped)
  llama / mistral / qwen2: dense width 128 / 64; qwen2 has q/k/v bias; mistral sliding_window 4096 (inactive)
Value scales: embeddings N(0, 0.3^2); linear weights N(0, 1/in) (router, q/k/v/gate/up), o/down N(0, 0.5^2/in),
lm_head N(0, 4/hidden); norms 1 + N(0, 0.1^2); biases N(0, 0.3^2). Activations stay O(1), router logits
have std ~1 so routing is spread over all experts and exact probability ties have probability ~0.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

ARCHS = ["mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "olmoe", "llama", "mistral", "qwen2"]
CLASS_NAME = {"mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
              "qwen3_moe": "Qwen3MoeForCausalLM", "deepseek": "DeepseekForCausalLM",
              "olmoe": "OlmoeForCausalLM", "llama": "LlamaForCausalLM",
              "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}
TORCH_DTYPE = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}
VOCAB_SIZE = 300
EOS_ID = 296  # "<|endoftext|>" in the generated tokenizer (256 bytes + 40 merges)


# ----------------------------------------------------------------------------- tokenizer
def byte_level_alphabet():
    """The 256 byte-level symbols in GPT-2 order: printable bytes keep their code point, the other
    68 bytes (0x00-0x20, 0x7F-0xA0, 0xAD) get U+0100, U+0101, ... in increasing byte order.
    Returns a list of (byte, char) with the printable bytes first (that order defines ids 0..255)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    keep_set = set(keep)
    pairs = [(b, chr(b)) for b in keep]
    n = 0
    for b in range(256):
        if b not in keep_set:
            pairs.append((b, chr(0x100 + n)))
            n += 1
    return pairs


# Hand-picked merges of frequent English pairs (Ġ = space). Order = rank.
MERGES = [
    ("Ġ", "t"), ("Ġ", "a"), ("h", "e"), ("i", "n"), ("r", "e"), ("o", "n"), ("Ġt", "he"), ("e", "r"),
    ("Ġ", "s"), ("a", "t"), ("Ġ", "w"), ("Ġ", "o"), ("e", "n"), ("Ġ", "c"), ("i", "t"), ("i", "s"),
    ("a", "n"), ("o", "r"), ("e", "s"), ("Ġ", "b"), ("e", "d"), ("Ġ", "f"), ("in", "g"), ("Ġ", "p"),
    ("o", "u"), ("Ġa", "n"), ("a", "l"), ("a", "r"), ("Ġt", "o"), ("Ġ", "m"), ("Ġo", "f"), ("Ġ", "in"),
    ("Ġ", "d"), ("Ġ", "h"), ("Ġan", "d"), ("i", "c"), ("a", "s"), ("l", "e"), ("Ġt", "h"), ("i", "on"),
]


def make_tokenizer():
    vocab = {}
    for i, (_, ch) in enumerate(byte_level_alphabet()):
        vocab[ch] = i
    merges = []
    for a, b in MERGES:
        assert a in vocab and b in vocab and a + b not in vocab, (a, b)
        vocab[a + b] = len(vocab)
        merges.append([a, b])
    assert len(vocab) == EOS_ID
    vocab["<|endoftext|>"] = EOS_ID
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": EOS_ID, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": dict(byte_level),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": True},
        "decoder": dict(byte_level),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


# ----------------------------------------------------------------------------- config
def make_config(arch, tiny, layers, dtype, tied, norm_topk_override, experts=None, top_k=None):
    H = 32 if tiny else 64
    hd = 8 if tiny else 16
    nh, nkv = 4, 2
    L = layers if layers is not None else (2 if tiny else 3)
    s = (lambda x: x // 2) if tiny else (lambda x: x)
    c = {
        "architectures": [CLASS_NAME[arch]],
        "model_type": arch,
        "hidden_size": H,
        "num_hidden_layers": L,
        "num_attention_heads": nh,
        "num_key_value_heads": nkv,
        "hidden_act": "silu",
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": 4096,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_dropout": 0.0,
        "bos_token_id": EOS_ID,
        "eos_token_id": EOS_ID,
        "tie_word_embeddings": bool(tied),
        "torch_dtype": TORCH_DTYPE[dtype],
        "use_cache": True,
    }
    if arch == "mixtral":
        c.update(intermediate_size=s(96), num_local_experts=4 if tiny else 8, num_experts_per_tok=2,
                 rope_theta=1000000.0, sliding_window=None, router_aux_loss_coef=0.02,
                 router_jitter_noise=0.0, output_router_logits=False)
    elif arch == "qwen2_moe":
        c.update(intermediate_size=s(128), moe_intermediate_size=s(32), shared_expert_intermediate_size=s(96),
                 num_experts=6 if tiny else 12, num_experts_per_tok=2 if tiny else 4, norm_topk_prob=False,
                 decoder_sparse_step=1, mlp_only_layers=[1], rms_norm_eps=1e-6, rope_theta=1000000.0,
                 use_sliding_window=False, sliding_window=4096, max_window_layers=L,
                 router_aux_loss_coef=0.001, output_router_logits=False)
    elif arch == "qwen3_moe":
        c.update(head_dim=12 if tiny else 24, intermediate_size=s(128), moe_intermediate_size=s(48),
                 num_experts=4 if tiny else 8, num_experts_per_tok=2 if tiny else 3, norm_topk_prob=True,
                 decoder_sparse_step=1, mlp_only_layers=[], attention_bias=False, rms_norm_eps=1e-6,
                 rope_theta=1000000.0, use_sliding_window=False, sliding_window=None, max_window_layers=L,
                 router_aux_loss_coef=0.001, output_router_logits=False)
    elif arch == "deepseek":
        c.update(auto_map={"AutoConfig": "configuration_deepseek.DeepseekConfig",
                           "AutoModel": "modeling_deepseek.DeepseekModel",
                           "AutoModelForCausalLM": "modeling_deepseek.DeepseekForCausalLM"},
                 intermediate_size=s(128), moe_intermediate_size=s(32), n_routed_experts=6 if tiny else 12,
                 n_shared_experts=2, num_experts_per_tok=2 if tiny else 4, first_k_dense_replace=1,
                 moe_layer_freq=1, norm_topk_prob=False, scoring_func="softmax", aux_loss_alpha=0.001,
                 seq_aux=True, attention_bias=False, pretraining_tp=1, rms_norm_eps=1e-6)
    elif arch == "olmoe":
        c.update(intermediate_size=s(48), num_experts=4 if tiny else 8, num_experts_per_tok=2,
                 norm_topk_prob=False, clip_qkv=2.0, attention_bias=False, pad_token_id=1,
                 router_aux_loss_coef=0.01, output_router_logits=False)
        del c["bos_token_id"]
    elif arch == "llama":
        c.update(intermediate_size=s(128), attention_bias=False, mlp_bias=False, pretraining_tp=1)
    elif arch == "mistral":
        c.update(intermediate_size=s(128), sliding_window=4096)
    elif arch == "qwen2":
        c.update(intermediate_size=s(128), rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False,
                 sliding_window=4096, max_window_layers=L)
    else:
        raise ValueError(arch)
    if experts is not None or top_k is not None:
        if arch not in ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "olmoe"):
            raise ValueError(f"--experts/--top-k do not apply to {arch}")
        key = {"mixtral": "num_local_experts", "deepseek": "n_routed_experts"}.get(arch, "num_experts")
        if experts is not None:
            c[key] = experts
        if top_k is not None:
            c["num_experts_per_tok"] = top_k
        if not 1 <= c["num_experts_per_tok"] <= c[key]:
            raise ValueError("--top-k must be in [1, experts]")
    if norm_topk_override is not None:
        if arch not in ("qwen2_moe", "qwen3_moe", "deepseek", "olmoe"):
            raise ValueError(f"--norm-topk-prob does not apply to {arch}")
        c["norm_topk_prob"] = norm_topk_override
    return dict(sorted(c.items()))


def head_dim_of(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def layer_kind(c, i):
    """'moe' or 'dense' for layer i (docs/formats.md §2.3)."""
    t = c["model_type"]
    if t in ("mixtral", "olmoe"):
        return "moe"
    if t in ("qwen2_moe", "qwen3_moe"):
        ok = (i not in c.get("mlp_only_layers", []) and c["num_experts"] > 0
              and (i + 1) % c.get("decoder_sparse_step", 1) == 0)
        return "moe" if ok else "dense"
    if t == "deepseek":
        ok = (c.get("n_routed_experts") is not None and i >= c.get("first_k_dense_replace", 0)
              and i % c.get("moe_layer_freq", 1) == 0)
        return "moe" if ok else "dense"
    return "dense"


# ----------------------------------------------------------------------------- weights
def make_weights(c, rng):
    """Ordered dict name -> float32 array. Draw order is fixed (insertion order)."""
    t = c["model_type"]
    H, V = c["hidden_size"], c["vocab_size"]
    nh, nkv, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim_of(c)
    w = {}

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def linear(name, out_f, in_f, scale=1.0):
        w[name] = normal((out_f, in_f), scale / np.sqrt(in_f))

    def norm(name, n):
        w[name] = (1.0 + rng.standard_normal(n) * 0.1).astype(np.float32)

    def mlp(prefix, width, names=("gate_proj", "up_proj", "down_proj")):
        g, u, d = names
        linear(f"{prefix}.{g}.weight", width, H)
        linear(f"{prefix}.{u}.weight", width, H)
        linear(f"{prefix}.{d}.weight", H, width, 0.5)

    w["model.embed_tokens.weight"] = normal((V, H), 0.3)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        norm(f"{p}.input_layernorm.weight", H)
        a = f"{p}.self_attn"
        linear(f"{a}.q_proj.weight", nh * hd, H)
        linear(f"{a}.k_proj.weight", nkv * hd, H)
        linear(f"{a}.v_proj.weight", nkv * hd, H)
        if t in ("qwen2", "qwen2_moe"):
            for x, n in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                w[f"{a}.{x}_proj.bias"] = normal((n,), 0.3)
        linear(f"{a}.o_proj.weight", H, nh * hd, 0.5)
        if t == "qwen3_moe":
            norm(f"{a}.q_norm.weight", hd)
            norm(f"{a}.k_norm.weight", hd)
        if t == "olmoe":
            norm(f"{a}.q_norm.weight", nh * hd)
            norm(f"{a}.k_norm.weight", nkv * hd)
        norm(f"{p}.post_attention_layernorm.weight", H)
        if layer_kind(c, i) == "dense":
            mlp(f"{p}.mlp", c["intermediate_size"])
        elif t == "mixtral":
            m = f"{p}.block_sparse_moe"
            linear(f"{m}.gate.weight", c["num_local_experts"], H)
            for j in range(c["num_local_experts"]):
                mlp(f"{m}.experts.{j}", c["intermediate_size"], ("w1", "w3", "w2"))
        else:
            m = f"{p}.mlp"
            E = c["n_routed_experts"] if t == "deepseek" else c["num_experts"]
            width = c["intermediate_size"] if t == "olmoe" else c["moe_intermediate_size"]
            linear(f"{m}.gate.weight", E, H)
            for j in range(E):
                mlp(f"{m}.experts.{j}", width)
            if t == "qwen2_moe":
                mlp(f"{m}.shared_expert", c["shared_expert_intermediate_size"])
                linear(f"{m}.shared_expert_gate.weight", 1, H)
            if t == "deepseek":
                mlp(f"{m}.shared_experts", c["moe_intermediate_size"] * c["n_shared_experts"])
    norm("model.norm.weight", H)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = normal((V, H), 2.0 / np.sqrt(H))
    return w


def write_model_dir(out_dir, config, weights, dtype, tokenizer=None):
    """Write config.json + model.safetensors (+ tokenizer.json) for float32 ``weights``."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    if dtype == "bf16":
        tensors = {k: st.BF16.from_float(v) for k, v in weights.items()}
    elif dtype == "f16":
        tensors = {k: v.astype(np.float16) for k, v in weights.items()}
    else:
        tensors = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    st.save(os.path.join(out_dir, "model.safetensors"), tensors)
    if tokenizer is not None:
        with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer, f, indent=2, ensure_ascii=False)
            f.write("\n")


def generate(arch, out_dir, seed=0, dtype="f32", layers=None, tiny=False, tied=False, norm_topk_prob=None,
             experts=None, top_k=None):
    config = make_config(arch, tiny, layers, dtype, tied, norm_topk_prob, experts, top_k)
    rng = np.random.Generator(np.random.PCG64(seed))
    weights = make_weights(config, rng)
    write_model_dir(out_dir, config, weights, dtype, make_tokenizer())
    return config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arch", choices=ARCHS)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=sorted(TORCH_DTYPE), default="f32")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--tiny", action="store_true", help="even smaller dims (hidden 32, 2 layers, fewer experts)")
    ap.add_argument("--tied", action="store_true", help="tie_word_embeddings=true, no lm_head.weight")
    ap.add_argument("--experts", type=int, default=None, help="override the number of routed experts (MoE archs)")
    ap.add_argument("--top-k", type=int, default=None, help="override num_experts_per_tok (MoE archs)")
    ap.add_argument("--norm-topk-prob", choices=["true", "false"], default=None,
                    help="override norm_topk_prob (qwen2_moe/qwen3_moe/deepseek/olmoe)")
    a = ap.parse_args(argv)
    ntp = None if a.norm_topk_prob is None else a.norm_topk_prob == "true"
    generate(a.arch, a.out_dir, a.seed, a.dtype, a.layers, a.tiny, a.tied, ntp, a.experts, a.top_k)


if __name__ == "__main__":
    main()
