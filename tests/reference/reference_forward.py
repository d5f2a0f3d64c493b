#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference decoder forward (NumPy, float64) for HF checkpoints, written from docs/formats.md section 2.

    /usr/bin/python3 tests/reference/reference_forward.py MODEL_DIR IDS_FILE OUT_FILE
                     [--dump-routing ROUTING_JSON] [--allow-unused]

IDS_FILE : JSON array of arrays of token ids (a batch of equal-length sequences), e.g. [[1,2,3],[4,5,6]]
           (a flat array [1,2,3] is accepted as a batch of one).
OUT_FILE : raw little-endian float32 logits [B, T, V] (C order); sidecar OUT_FILE.json = {"shape": [B, T, V]}.
--dump-routing : JSON {"layers": [{"layer": i, "top_k": k, "num_experts": E, "experts": [B][T][k] ints,
                 "weights": [B][T][k] floats, "probs": [B][T][E] floats}, ...]} for every MoE layer (dense
                 layers are omitted).  "experts" is sorted by probability descending; "weights" are the
                 weights actually applied (after renormalization where the arch does it); "probs" is the full
                 softmax over all experts.

Architectures (config model_type): mixtral, qwen2_moe, qwen3_moe, deepseek, olmoe, llama, mistral, qwen2
(also qwen3 dense = llama + per-head q/k norm).

Conventions (all math in float64 on weights upcast from the stored dtype; no intermediate rounding to the
checkpoint dtype, so compare with a tolerance):
* RMSNorm y = x / sqrt(mean(x^2) + eps) * w, eps = rms_norm_eps (also for q_norm/k_norm).
* Attention: head_dim = config.head_dim or hidden/heads; q/k/v bias added when the tensor exists
  (qwen2/qwen2_moe always have it); o_proj bias if present.  OLMoE: q_norm/k_norm over the whole q / k
  projection, then clamp q, k, v to +-clip_qkv (if set), then RoPE.  Qwen3: RMSNorm over each head's
  vector (q_norm/k_norm [head_dim]) before RoPE.  RoPE rotate_half (NeoX) with inv_freq[k] =
  rope_theta^(-2k/head_dim), positions 0..T-1 for every sequence.  GQA: query head h uses kv head
  h // (heads/kv_heads).  Scores scaled by head_dim^-0.5, causal mask.  mistral/mixtral with a non-null
  sliding_window additionally mask keys with i - j >= sliding_window (HF semantics); qwen2* only if
  use_sliding_window is true (not implemented: raises).
* MLP: down(silu(gate(x)) * up(x)); Mixtral w1 = gate, w3 = up, w2 = down.
* Router: p = softmax(h @ gate^T) over ALL experts; top-k of p.  Ties: the LOWER expert index wins
  (stable sort on -p); the generator makes ties practically impossible.  Renormalize w /= sum(w):
  Mixtral always; qwen2_moe/qwen3_moe/olmoe iff norm_topk_prob; deepseek iff norm_topk_prob and k > 1,
  with + 1e-20 in the denominator.  Qwen2-MoE adds sigmoid(h . shared_expert_gate) * shared_expert(h);
  DeepSeek adds shared_experts(h) (ungated).  Dense layers: qwen2_moe/qwen3_moe layers in
  mlp_only_layers or with (i+1) % decoder_sparse_step != 0; deepseek layers i < first_k_dense_replace or
  i % moe_layer_freq != 0.
* Output: final RMSNorm, logits = x @ lm_head^T, or @ embed_tokens^T when tie_word_embeddings is true
  (default false for all these archs).
* Every tensor in the checkpoint must be consumed (catches naming mismatches) unless --allow-unused.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

SUPPORTED = ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "olmoe", "llama", "mistral", "qwen2", "qwen3")
ARCH_FROM_CLASS = {"MixtralForCausalLM": "mixtral", "Qwen2MoeForCausalLM": "qwen2_moe",
                   "Qwen3MoeForCausalLM": "qwen3_moe", "DeepseekForCausalLM": "deepseek",
                   "OlmoeForCausalLM": "olmoe", "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                   "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def rope_cos_sin(T, head_dim, theta):
    inv_freq = theta ** (-(np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))  # theta^(-2k/d)
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)  # [T, d/2]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [T, d]
    return np.cos(emb), np.sin(emb)


def rotate_half(x):
    d = x.shape[-1] // 2
    return np.concatenate([-x[..., d:], x[..., :d]], axis=-1)


def apply_rope(x, cos, sin):
    """x [B, T, heads, d]; cos/sin [T, d]."""
    return x * cos[None, :, None, :] + rotate_half(x) * sin[None, :, None, :]


def topk_lower_index(p, k):
    """Indices [N, k] of the k largest entries per row, descending; equal values -> lower index first."""
    order = np.argsort(-p, axis=-1, kind="stable")
    return order[:, :k]


class Model:
    def __init__(self, model_dir, allow_unused=False):
        with open(os.path.join(model_dir, "config.json"), "r", encoding="utf-8") as f:
            self.cfg = c = json.load(f)
        arch = c.get("model_type")
        if arch not in SUPPORTED:
            arch = ARCH_FROM_CLASS.get((c.get("architectures") or [None])[0])
        if arch not in SUPPORTED:
            raise ValueError(f"unsupported architecture: model_type={c.get('model_type')!r}")
        self.arch = arch
        raw, dtypes = st.load_model_dir(model_dir)
        self.w = {k: st.to_float(v, dtypes[k]) for k, v in raw.items()}
        self.used = set()
        self.H = c["hidden_size"]
        self.L = c["num_hidden_layers"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads") or self.nh
        self.hd = c.get("head_dim") or self.H // self.nh
        self.eps = c["rms_norm_eps"]
        rp = c.get("rope_parameters") or {}
        self.theta = float(c.get("rope_theta", rp.get("rope_theta", 10000.0)))
        rs = c.get("rope_scaling") or (rp if rp.get("rope_type", "default") != "default" else None)
        if rs and rs.get("rope_type", rs.get("type", "default")) != "default":
            raise NotImplementedError(f"rope_scaling {rs} not supported by the reference")
        self.tied = bool(c.get("tie_word_embeddings", False))
        self.clip_qkv = c.get("clip_qkv") if arch == "olmoe" else None
        self.sliding_window = None
        if arch in ("mistral", "mixtral"):
            self.sliding_window = c.get("sliding_window")
        elif c.get("use_sliding_window"):
            raise NotImplementedError("use_sliding_window=true not supported by the reference")
        if c.get("hidden_act", "silu") != "silu":
            raise NotImplementedError(f"hidden_act {c.get('hidden_act')}")
        if arch == "deepseek" and c.get("scoring_func", "softmax") != "softmax":
            raise NotImplementedError("deepseek scoring_func must be softmax")
        # Validate by touching everything once (tensor presence + shapes) with an empty forward plan.
        self._check_and_mark(allow_unused)

    # ------------------------------------------------------------------ tensors
    def t(self, name, shape=None):
        if name not in self.w:
            raise KeyError(f"missing tensor {name}")
        self.used.add(name)
        x = self.w[name]
        if shape is not None and tuple(x.shape) != tuple(shape):
            raise ValueError(f"{name}: shape {list(x.shape)} != expected {list(shape)}")
        return x

    def opt(self, name, shape=None):
        return self.t(name, shape) if name in self.w else None

    def _check_and_mark(self, allow_unused):
        self.forward(np.zeros((1, 1), dtype=np.int64))
        left = sorted(k for k in self.w if k not in self.used and not k.endswith("rotary_emb.inv_freq"))
        if self.tied and "lm_head.weight" in left:
            left.remove("lm_head.weight")  # HF ties it to embed_tokens anyway
        if left and not allow_unused:
            raise ValueError(f"{len(left)} unused tensors, e.g. {left[:5]}")

    # ------------------------------------------------------------------ structure
    def layer_is_moe(self, i):
        c, a = self.cfg, self.arch
        if a in ("mixtral", "olmoe"):
            return True
        if a in ("qwen2_moe", "qwen3_moe"):
            return (i not in (c.get("mlp_only_layers") or []) and (c.get("num_experts") or 0) > 0
                    and (i + 1) % (c.get("decoder_sparse_step") or 1) == 0)
        if a == "deepseek":
            return (c.get("n_routed_experts") is not None and i >= (c.get("first_k_dense_replace") or 0)
                    and i % (c.get("moe_layer_freq") or 1) == 0)
        return False

    def linear(self, x, prefix, out_f, in_f):
        y = x @ self.t(prefix + ".weight", (out_f, in_f)).T
        b = self.opt(prefix + ".bias", (out_f,))
        return y if b is None else y + b

    def mlp(self, x, prefix, width, names=("gate_proj", "up_proj", "down_proj")):
        g, u, d = names
        return self.linear(silu(self.linear(x, f"{prefix}.{g}", width, self.H))
                           * self.linear(x, f"{prefix}.{u}", width, self.H), f"{prefix}.{d}", self.H, width)

    # ------------------------------------------------------------------ blocks
    def attention(self, h, i, cos, sin, stats):
        B, T, H = h.shape
        nh, nkv, hd, a = self.nh, self.nkv, self.hd, self.arch
        p = f"model.layers.{i}.self_attn"
        q = self.linear(h, f"{p}.q_proj", nh * hd, H)
        k = self.linear(h, f"{p}.k_proj", nkv * hd, H)
        v = self.linear(h, f"{p}.v_proj", nkv * hd, H)
        if a == "olmoe":
            q = rms_norm(q, self.t(f"{p}.q_norm.weight", (nh * hd,)), self.eps)
            k = rms_norm(k, self.t(f"{p}.k_norm.weight", (nkv * hd,)), self.eps)
        if self.clip_qkv is not None:
            cl = float(self.clip_qkv)
            if stats is not None:
                stats["clip_count"] = stats.get("clip_count", 0) + int(
                    sum(np.count_nonzero(np.abs(z) > cl) for z in (q, k, v)))
                stats["clip_total"] = stats.get("clip_total", 0) + q.size + k.size + v.size
            q, k, v = (np.clip(z, -cl, cl) for z in (q, k, v))
        q = q.reshape(B, T, nh, hd)
        k = k.reshape(B, T, nkv, hd)
        v = v.reshape(B, T, nkv, hd)
        if a in ("qwen3_moe", "qwen3"):
            q = rms_norm(q, self.t(f"{p}.q_norm.weight", (hd,)), self.eps)
            k = rms_norm(k, self.t(f"{p}.k_norm.weight", (hd,)), self.eps)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        group = nh // nkv
        kv_of_head = np.arange(nh) // group
        k = k[:, :, kv_of_head, :]  # [B, T, nh, hd]
        v = v[:, :, kv_of_head, :]
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) * hd ** -0.5
        qi = np.arange(T)[:, None]
        kj = np.arange(T)[None, :]
        allowed = kj <= qi
        if self.sliding_window is not None:
            allowed &= (qi - kj) < int(self.sliding_window)
        scores = np.where(allowed[None, None], scores, -np.inf)
        probs = softmax(scores, axis=-1)
        out = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, T, nh * hd)
        return self.linear(out, f"{p}.o_proj", H, nh * hd)

    def ffn(self, h, i, routing):
        c, a, H = self.cfg, self.arch, self.H
        p = f"model.layers.{i}"
        if not self.layer_is_moe(i):
            return self.mlp(h, f"{p}.mlp", c["intermediate_size"])
        B, T, _ = h.shape
        x = h.reshape(B * T, H)
        if a == "mixtral":
            m, E, width = f"{p}.block_sparse_moe", c["num_local_experts"], c["intermediate_size"]
            names = ("w1", "w3", "w2")
        else:
            m, names = f"{p}.mlp", ("gate_proj", "up_proj", "down_proj")
            E = c["n_routed_experts"] if a == "deepseek" else c["num_experts"]
            width = c["intermediate_size"] if a == "olmoe" else c["moe_intermediate_size"]
        k = c["num_experts_per_tok"]
        probs = softmax(x @ self.t(f"{m}.gate.weight", (E, H)).T, axis=-1)  # [N, E]
        idx = topk_lower_index(probs, k)  # [N, k]
        wts = np.take_along_axis(probs, idx, axis=-1)
        if a == "mixtral":
            wts = wts / wts.sum(-1, keepdims=True)
        elif a == "deepseek":
            if k > 1 and c.get("norm_topk_prob", False):
                wts = wts / (wts.sum(-1, keepdims=True) + 1e-20)
        elif c.get("norm_topk_prob", False):
            wts = wts / wts.sum(-1, keepdims=True)
        out = np.zeros_like(x)
        for e in range(E):
            rows, slot = np.nonzero(idx == e)
            pref = f"{m}.experts.{e}"
            if rows.size == 0:
                # still validate the expert's tensors exist with the right shapes
                for nm, shp in zip(names, ((width, H), (width, H), (H, width))):
                    self.t(f"{pref}.{nm}.weight", shp)
                continue
            out[rows] += wts[rows, slot, None] * self.mlp(x[rows], pref, width, names)
        if a == "qwen2_moe":
            gate = sigmoid(x @ self.t(f"{m}.shared_expert_gate.weight", (1, H)).T)  # [N, 1]
            out = out + gate * self.mlp(x, f"{m}.shared_expert", c["shared_expert_intermediate_size"])
        elif a == "deepseek" and c.get("n_shared_experts"):
            out = out + self.mlp(x, f"{m}.shared_experts", c["moe_intermediate_size"] * c["n_shared_experts"])
        if routing is not None:
            routing.append({"layer": i, "top_k": k, "num_experts": E,
                            "experts": idx.reshape(B, T, k).tolist(),
                            "weights": wts.reshape(B, T, k).tolist(),
                            "probs": probs.reshape(B, T, E).tolist()})
        return out.reshape(B, T, H)

    def forward(self, ids, routing=None, stats=None):
        """ids: int array [B, T] -> float64 logits [B, T, V]."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2:
            raise ValueError("ids must be [B, T]")
        B, T = ids.shape
        V = self.cfg["vocab_size"]
        emb = self.t("model.embed_tokens.weight", (V, self.H))
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError("token id out of range")
        x = emb[ids]
        cos, sin = rope_cos_sin(T, self.hd, self.theta)
        for i in range(self.L):
            p = f"model.layers.{i}"
            h = rms_norm(x, self.t(f"{p}.input_layernorm.weight", (self.H,)), self.eps)
            x = x + self.attention(h, i, cos, sin, stats)
            h = rms_norm(x, self.t(f"{p}.post_attention_layernorm.weight", (self.H,)), self.eps)
            x = x + self.ffn(h, i, routing)
        x = rms_norm(x, self.t("model.norm.weight", (self.H,)), self.eps)
        head = emb if self.tied else self.t("lm_head.weight", (V, self.H))
        return x @ head.T


def write_logits(path, logits):
    arr = np.ascontiguousarray(logits, dtype="<f4")
    with open(path, "wb") as f:
        f.write(arr.tobytes())
    with open(path + ".json", "w", encoding="utf-8") as f:
        json.dump({"shape": list(arr.shape)}, f)


def read_logits(path):
    with open(path + ".json", "r", encoding="utf-8") as f:
        shape = json.load(f)["shape"]
    return np.fromfile(path, dtype="<f4").reshape(shape)


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 NumPy reference forward -> float32 logits")
    ap.add_argument("model_dir")
    ap.add_argument("ids_file")
    ap.add_argument("out_file")
    ap.add_argument("--dump-routing", metavar="JSON", default=None)
    ap.add_argument("--allow-unused", action="store_true", help="do not fail on unused checkpoint tensors")
    a = ap.parse_args(argv)
    with open(a.ids_file, "r", encoding="utf-8") as f:
        ids = json.load(f)
    if isinstance(ids, list) and ids and all(isinstance(r, int) for r in ids):
        ids = [ids]  # convenience: a flat array is a batch of one
    if not isinstance(ids, list) or not ids or not all(isinstance(r, list) for r in ids):
        raise SystemExit("IDS_FILE must be a JSON array of arrays of token ids")
    if len({len(r) for r in ids}) != 1:
        raise SystemExit("all sequences in IDS_FILE must have the same length")
    model = Model(a.model_dir, allow_unused=a.allow_unused)
    routing = [] if a.dump_routing else None
    logits = model.forward(np.array(ids, dtype=np.int64), routing=routing)
    write_logits(a.out_file, logits)
    if a.dump_routing:
        with open(a.dump_routing, "w", encoding="utf-8") as f:
            json.dump({"layers": routing}, f)


if __name__ == "__main__":
    main()
