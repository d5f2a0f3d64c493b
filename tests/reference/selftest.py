#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Self-check of the Python reference (tests/reference/*). Exits non-zero on any failure.

    /usr/bin/python3 tests/reference/selftest.py [-v] [-k SUBSTRING]

Checks: safetensors layout/round trips (incl. byte-identity with tests/data/safetensors/golden.safetensors),
bf16 rounding, generator determinism and tensor names, forward sanity for every arch, tied == untied copy,
Mixtral(1 expert, top-1) == Llama, RoPE identity at position 0 and relativity, causality, batch
independence, expert-permutation invariance, GQA == expanded MHA, router statistics, OLMoE clipping,
tokenizer validity (mini BPE round trip), perplexity window bookkeeping against a brute-force count.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_random_model as gen  # noqa: E402
import reference_forward as rf  # noqa: E402
import reference_ppl as rp  # noqa: E402
import safetensors_np as st  # noqa: E402

PY = sys.executable or "/usr/bin/python3"
ARCHS = gen.ARCHS
MOE_ARCHS = ["mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "olmoe"]
TMP = None
VERBOSE = False


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def close(a, b, tol, msg):
    d = float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0
    check(d <= tol, f"{msg}: max |diff| = {d:.3e} > {tol:.1e}")
    return d


_cache = {}


def model_dir(arch, seed=0, dtype="f32", tiny=False, tied=False, layers=None, norm_topk_prob=None):
    key = (arch, seed, dtype, tiny, tied, layers, norm_topk_prob)
    if key not in _cache:
        d = os.path.join(TMP, "_".join(str(k) for k in key))
        gen.generate(arch, d, seed=seed, dtype=dtype, layers=layers, tiny=tiny, tied=tied,
                     norm_topk_prob=norm_topk_prob)
        _cache[key] = d
    return _cache[key]


def load_f32(d):
    t, dt = st.load_model_dir(d)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    return cfg, {k: st.to_float(v, dt[k], np.float32) for k, v in t.items()}


def write_variant(name, cfg, weights):
    d = os.path.join(TMP, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    gen.write_model_dir(d, cfg, weights, "f32")
    return d


def rand_ids(rng, B, T, V=297):
    return rng.integers(0, V, size=(B, T))


# ============================================================================ safetensors / bf16
def test_bf16_rounding():
    f = np.array([1.0, -2.5, 0.0, -0.0, np.inf, -np.inf, 3.0e38, 1e-40], dtype=np.float32)
    b = st.bf16_from_f32(f)
    check(np.array_equal(st.bf16_to_f32(b)[:6], f[:6]), "exact values must round trip")
    check(b[6] == 0x7F80 or st.bf16_to_f32(b[6:7])[0] > 2.9e38, "large finite")
    # round-to-nearest-even on exact ties, nearest otherwise
    bits = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF808000, 0x7F7FFFFF], dtype=np.uint32)
    want = np.array([0x3F80, 0x3F82, 0x3F81, 0x3F80, 0xBF80, 0x7F80], dtype=np.uint16)
    got = st.bf16_from_f32(bits.view(np.float32))
    check(np.array_equal(got, want), f"RNE: got {[hex(x) for x in got]} want {[hex(x) for x in want]}")
    nan = st.bf16_from_f32(np.array([np.nan, -np.nan], dtype=np.float32))
    check(all(np.isnan(st.bf16_to_f32(nan))), "NaN stays NaN")
    check(nan[0] & 0x7FFF == 0x7FC0, "quiet NaN pattern")
    # every bf16 value round trips through f32
    allbits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    fin = ~np.isnan(st.bf16_to_f32(allbits))
    check(np.array_equal(st.bf16_from_f32(st.bf16_to_f32(allbits))[fin], allbits[fin]), "bf16->f32->bf16 identity")
    # random: result is one of the two neighbours and the nearer one
    x = np.random.Generator(np.random.PCG64(5)).standard_normal(10000).astype(np.float32) * 100
    r = st.bf16_to_f32(st.bf16_from_f32(x)).astype(np.float64)
    trunc = (x.view(np.uint32) & 0xFFFF0000).view(np.float32).astype(np.float64)
    ulp = np.abs(trunc) * 2.0 ** -7
    check(np.all(np.abs(r - x) <= ulp / 2 + 1e-30), "rounding error <= half ulp")


def test_safetensors_layout_and_roundtrip():
    rng = np.random.Generator(np.random.PCG64(3))
    tensors = {
        "b.f32": rng.standard_normal((3, 5)).astype(np.float32),
        "a.f32": rng.standard_normal((2,)).astype(np.float32),
        "h": rng.standard_normal((3,)).astype(np.float16),
        "bf": st.BF16.from_float(rng.standard_normal((7,))),
        "i32": np.arange(5, dtype=np.int32) - 2,
        "i64": np.arange(3, dtype=np.int64) * (1 << 40),
        "scalar": np.array(1.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    buf = st.dumps(tensors)
    n = int.from_bytes(buf[:8], "little")
    check(n % 8 == 0 and buf[8:9] == b"{", "header padded to 8 and starts with {")
    hdr = json.loads(buf[8:8 + n].decode())
    names = list(hdr)
    check(names[0] == "__metadata__" and hdr["__metadata__"] == {"format": "pt"}, "metadata first")
    check(names[1:] == ["i64", "a.f32", "b.f32", "empty", "scalar", "i32", "bf", "h"], f"sort order {names}")
    check(buf[8:8 + n].rstrip(b" ").endswith(b"}") and b", " not in buf[8:8 + n], "compact JSON")
    check(list(hdr["i64"]) == ["dtype", "shape", "data_offsets"], "entry key order")
    t, d, m = st.loads(buf)
    check(d["bf"] == "BF16" and d["h"] == "F16" and d["i64"] == "I64" and d["i32"] == "I32", "dtypes")
    for k, v in tensors.items():
        ref = v.bits if isinstance(v, st.BF16) else v
        check(np.array_equal(t[k], ref) and t[k].shape == ref.shape, f"round trip {k}")
    check(st.dumps(t, d, m) == buf, "re-serialization byte identical")
    # reader validation
    for bad, why in ((buf[:7], "HeaderTooSmall"), (buf + b"\0", "MetadataIncompleteBuffer"),
                     (buf[:-1], "MetadataIncompleteBuffer")):
        try:
            st.loads(bad)
            raise AssertionError(f"reader accepted a bad file ({why})")
        except st.SafetensorsError:
            pass
    golden = os.path.join(HERE, "..", "data", "safetensors", "golden.safetensors")
    if os.path.exists(golden):
        gb = open(golden, "rb").read()
        t, d, m = st.loads(gb)
        check(st.dumps(t, d, m) == gb, "writer reproduces tests/data golden.safetensors byte for byte")


def test_bf16_model_file_roundtrip():
    d32 = model_dir("qwen3_moe", seed=7)
    d16 = model_dir("qwen3_moe", seed=7, dtype="bf16")
    raw, dts, meta = st.load(os.path.join(d16, "model.safetensors"))
    check(all(v == "BF16" for v in dts.values()), "bf16 checkpoint has only BF16 tensors")
    check(st.dumps(raw, dts, meta) == open(os.path.join(d16, "model.safetensors"), "rb").read(),
          "bf16 file rewrite byte identical")
    _, w32 = load_f32(d32)
    for k, v in raw.items():
        check(np.array_equal(v, st.bf16_from_f32(w32[k])), f"bf16 tensor {k} == RNE(f32 tensor)")
    ids = rand_ids(np.random.Generator(np.random.PCG64(1)), 1, 16)
    l32 = rf.Model(d32).forward(ids)
    l16 = rf.Model(d16).forward(ids)
    d = float(np.max(np.abs(l32 - l16)))
    check(0 < d < 0.5, f"bf16 vs f32 logits differ by {d} (expect small but nonzero)")
    cfg = json.load(open(os.path.join(d16, "config.json")))
    check(cfg["torch_dtype"] == "bfloat16", "torch_dtype")


# ============================================================================ generator
EXPECTED_LAYER_NAMES = {
    # (arch, layer) -> names that must exist (spot checks typed from docs/formats.md §2)
    ("mixtral", 0): ["block_sparse_moe.gate.weight", "block_sparse_moe.experts.7.w1.weight",
                     "block_sparse_moe.experts.7.w2.weight", "block_sparse_moe.experts.7.w3.weight"],
    ("qwen2_moe", 0): ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias",
                       "mlp.gate.weight", "mlp.experts.11.gate_proj.weight", "mlp.shared_expert.up_proj.weight",
                       "mlp.shared_expert_gate.weight"],
    ("qwen2_moe", 1): ["mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"],
    ("qwen3_moe", 2): ["self_attn.q_norm.weight", "self_attn.k_norm.weight", "mlp.experts.7.down_proj.weight"],
    ("deepseek", 0): ["mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"],
    ("deepseek", 1): ["mlp.gate.weight", "mlp.experts.11.up_proj.weight", "mlp.shared_experts.gate_proj.weight",
                      "mlp.shared_experts.down_proj.weight"],
    ("olmoe", 1): ["self_attn.q_norm.weight", "self_attn.k_norm.weight", "mlp.experts.7.gate_proj.weight"],
    ("llama", 2): ["mlp.gate_proj.weight"], ("mistral", 0): ["mlp.down_proj.weight"],
    ("qwen2", 0): ["self_attn.q_proj.bias", "mlp.up_proj.weight"],
}
FORBIDDEN = {"qwen2_moe": ["self_attn.o_proj.bias"], "qwen3_moe": ["self_attn.q_proj.bias", "mlp.shared_expert"],
             "olmoe": ["self_attn.q_proj.bias", "shared"], "mixtral": ["mlp.", "bias"],
             "deepseek": ["shared_expert_gate", "bias"], "llama": ["bias", "q_norm"]}
CONFIG_KEYS = {
    "mixtral": ["num_local_experts", "num_experts_per_tok", "intermediate_size"],
    "qwen2_moe": ["num_experts", "moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob",
                  "decoder_sparse_step", "mlp_only_layers"],
    "qwen3_moe": ["num_experts", "moe_intermediate_size", "norm_topk_prob", "head_dim", "mlp_only_layers"],
    "deepseek": ["n_routed_experts", "n_shared_experts", "first_k_dense_replace", "moe_layer_freq",
                 "moe_intermediate_size", "norm_topk_prob", "scoring_func"],
    "olmoe": ["num_experts", "norm_topk_prob", "clip_qkv"],
    "llama": [], "mistral": ["sliding_window"], "qwen2": [],
}


def test_generator_names_and_config():
    common = ["architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "rms_norm_eps", "rope_theta", "vocab_size",
              "max_position_embeddings", "tie_word_embeddings", "torch_dtype", "eos_token_id"]
    for arch in ARCHS:
        d = model_dir(arch)
        cfg, w = load_f32(d)
        for k in common + CONFIG_KEYS[arch]:
            check(k in cfg, f"{arch}: config key {k} missing")
        check(cfg["architectures"][0] == gen.CLASS_NAME[arch] and cfg["model_type"] == arch, f"{arch}: arch names")
        for (a, i), names in EXPECTED_LAYER_NAMES.items():
            if a == arch:
                for n in names:
                    check(f"model.layers.{i}.{n}" in w, f"{arch}: missing model.layers.{i}.{n}")
        for bad in FORBIDDEN.get(arch, []):
            hits = [k for k in w if bad in k]
            check(not hits, f"{arch}: unexpected tensors {hits[:3]}")
        check("lm_head.weight" in w and "model.norm.weight" in w and "model.embed_tokens.weight" in w,
              f"{arch}: head/norm/embed")
        check(w["model.embed_tokens.weight"].shape == (300, 64), f"{arch}: embed shape")
    cfg, w = load_f32(model_dir("qwen3_moe"))
    check(cfg["head_dim"] != cfg["hidden_size"] // cfg["num_attention_heads"], "qwen3 head_dim must differ")
    check(w["model.layers.0.self_attn.q_proj.weight"].shape == (4 * 24, 64), "qwen3 q_proj shape")
    check(w["model.layers.0.self_attn.o_proj.weight"].shape == (64, 96), "qwen3 o_proj shape")
    check(w["model.layers.0.self_attn.q_norm.weight"].shape == (24,), "qwen3 q_norm shape")
    cfg, w = load_f32(model_dir("olmoe"))
    check(w["model.layers.0.self_attn.q_norm.weight"].shape == (64,), "olmoe q_norm [hidden]")
    check(w["model.layers.0.self_attn.k_norm.weight"].shape == (32,), "olmoe k_norm [kv*hd]")
    cfg, w = load_f32(model_dir("deepseek"))
    check(w["model.layers.1.mlp.shared_experts.gate_proj.weight"].shape == (64, 64), "deepseek shared width")
    check(cfg["n_routed_experts"] == 12 and cfg["num_experts_per_tok"] == 4, "deepseek E/k")
    cfg, w = load_f32(model_dir("qwen2_moe"))
    check(w["model.layers.0.mlp.shared_expert_gate.weight"].shape == (1, 64), "shared_expert_gate shape")
    cfg, w = load_f32(model_dir("mixtral", tied=True))
    check("lm_head.weight" not in w and cfg["tie_word_embeddings"] is True, "tied: no lm_head")


def test_generator_determinism():
    a = os.path.join(TMP, "det_a")
    b = os.path.join(TMP, "det_b")
    c = os.path.join(TMP, "det_c")
    gen.main(["deepseek", a, "--seed", "11", "--dtype", "bf16"])
    gen.main(["deepseek", b, "--seed", "11", "--dtype", "bf16"])
    gen.main(["deepseek", c, "--seed", "12", "--dtype", "bf16"])
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        check(open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read(), f"same seed: {f}")
    check(open(os.path.join(a, "model.safetensors"), "rb").read()
          != open(os.path.join(c, "model.safetensors"), "rb").read(), "different seed differs")
    # CLI path works too
    d = os.path.join(TMP, "cli_gen")
    subprocess.run([PY, os.path.join(HERE, "gen_random_model.py"), "olmoe", d, "--tiny", "--layers", "1",
                    "--seed", "3"], check=True)
    cfg = json.load(open(os.path.join(d, "config.json")))
    check(cfg["num_hidden_layers"] == 1 and cfg["hidden_size"] == 32, "CLI --tiny --layers")


def _bytes_to_unicode_map():
    return {b: ch for b, ch in gen.byte_level_alphabet()}


def _bpe_encode(tok, text):
    vocab = tok["model"]["vocab"]
    ranks = {(a, b): i for i, (a, b) in enumerate(tok["model"]["merges"])}
    bmap = _bytes_to_unicode_map()
    pat = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
    out = []
    for piece in pat.findall(text):
        syms = [bmap[b] for b in piece.encode("utf-8")]
        while len(syms) > 1:
            best = min(range(len(syms) - 1), key=lambda i: (ranks.get((syms[i], syms[i + 1]), 1 << 30), i))
            if (syms[best], syms[best + 1]) not in ranks:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        out.extend(vocab[s] for s in syms)
    return out


def test_tokenizer():
    d = model_dir("llama")
    tok = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    m = tok["model"]
    check(m["type"] == "BPE" and tok["pre_tokenizer"]["type"] == "ByteLevel", "model/pre_tokenizer types")
    check(tok["pre_tokenizer"]["add_prefix_space"] is False and tok["pre_tokenizer"]["use_regex"] is True,
          "ByteLevel flags")
    check(tok["decoder"]["type"] == "ByteLevel", "decoder")
    vocab = m["vocab"]
    check(sorted(vocab.values()) == list(range(len(vocab))), "vocab ids dense")
    check(vocab["!"] == 0 and vocab["Ġ"] == 220 and vocab["Ċ"] == 198 and vocab["ÿ"] == 187 and vocab["Ā"] == 188,
          "GPT-2 bytes_to_unicode order")
    chars = [ch for ch, i in sorted(vocab.items(), key=lambda kv: kv[1])[:256]]
    check(len(set(chars)) == 256 and all(len(ch) == 1 for ch in chars), "256 distinct byte symbols")
    check(35 <= len(m["merges"]) <= 45, "about 40 merges")
    seen = set(chars)
    for a, b in m["merges"]:
        check(a in seen and b in seen and a + b in vocab, f"merge {a} {b} valid")
        seen.add(a + b)
    at = tok["added_tokens"]
    check(len(at) == 1 and at[0]["content"] == "<|endoftext|>" and at[0]["special"] is True
          and at[0]["id"] == len(vocab) - 1 == 296, "added <|endoftext|>")
    cfg = json.load(open(os.path.join(d, "config.json")))
    check(cfg["vocab_size"] >= len(vocab) and cfg["eos_token_id"] == 296, "vocab_size covers tokenizer")
    text = "The cat and the dog sat in the house of a friend, isn't it?\n  Yes: 42 ÿ€!"
    ids = _bpe_encode(tok, text)
    inv = {v: k for k, v in vocab.items()}
    rev = {ch: b for b, ch in _bytes_to_unicode_map().items()}
    dec = bytes(rev[ch] for i in ids for ch in inv[i]).decode("utf-8")
    check(dec == text, f"BPE round trip: {dec!r}")
    check(vocab["Ġthe"] in ids and vocab["Ġand"] in ids and vocab["ing"] not in ids, "merges used")
    check(len(ids) < len(text.encode()), "merges compress")


# ============================================================================ forward
def test_all_archs_forward_fast_and_finite():
    rng = np.random.Generator(np.random.PCG64(2))
    for tiny in (False, True):
        for arch in ARCHS:
            d = model_dir(arch, tiny=tiny)
            ids = rand_ids(rng, 2, 32)
            t0 = time.time()
            m = rf.Model(d)
            lg = m.forward(ids)
            dt = time.time() - t0
            check(lg.shape == (2, 32, 300) and np.all(np.isfinite(lg)), f"{arch}: shape/finite")
            s = float(lg.std())
            check(0.3 < s < 10, f"{arch}: logits std {s} not O(1)")
            check(dt < 2.0, f"{arch}: forward took {dt:.2f}s")
            if VERBOSE:
                print(f"    {arch:10s} tiny={tiny!s:5s} load+fwd {dt*1000:6.1f} ms  logits std {s:.2f}")


def test_cli_forward_and_routing_dump():
    d = model_dir("qwen2_moe", seed=4)
    ids = rand_ids(np.random.Generator(np.random.PCG64(4)), 2, 9).tolist()
    ids_file = os.path.join(TMP, "ids.json")
    json.dump(ids, open(ids_file, "w"))
    out = os.path.join(TMP, "logits.bin")
    rt = os.path.join(TMP, "routing.json")
    subprocess.run([PY, os.path.join(HERE, "reference_forward.py"), d, ids_file, out, "--dump-routing", rt],
                   check=True)
    check(json.load(open(out + ".json")) == {"shape": [2, 9, 300]}, "sidecar")
    check(os.path.getsize(out) == 2 * 9 * 300 * 4, "raw f32 size")
    got = rf.read_logits(out)
    ref = rf.Model(d).forward(np.array(ids))
    close(got, ref.astype(np.float32), 0, "CLI logits == in-process float32")
    r = json.load(open(rt))["layers"]
    check([x["layer"] for x in r] == [0, 2], "qwen2_moe: layer 1 dense (mlp_only_layers) so not dumped")
    for x in r:
        e = np.array(x["experts"])
        w = np.array(x["weights"])
        p = np.array(x["probs"])
        check(e.shape == (2, 9, 4) and w.shape == (2, 9, 4) and p.shape == (2, 9, 12), "routing shapes")
        close(np.take_along_axis(p, e, -1), w, 1e-12, "qwen2_moe weights = raw probs (norm_topk_prob false)")
        check(np.all(np.diff(w, axis=-1) <= 0), "sorted descending")


def test_tied_equals_untied_copy():
    for arch in ("qwen2", "mixtral", "deepseek"):
        dt = model_dir(arch, seed=5, tied=True)
        cfg, w = load_f32(dt)
        check("lm_head.weight" not in w, "tied has no lm_head")
        cfg = dict(cfg, tie_word_embeddings=False)
        w = dict(w)
        w["lm_head.weight"] = w["model.embed_tokens.weight"].copy()
        du = write_variant(f"untied_{arch}", cfg, w)
        ids = rand_ids(np.random.Generator(np.random.PCG64(5)), 2, 12)
        close(rf.Model(dt).forward(ids), rf.Model(du).forward(ids), 0, f"{arch}: tied == untied copy")


def test_mixtral_one_expert_equals_llama():
    dl = model_dir("llama", seed=6)
    cfg, w = load_f32(dl)
    mc = dict(cfg, architectures=["MixtralForCausalLM"], model_type="mixtral", num_local_experts=1,
              num_experts_per_tok=1, sliding_window=None)
    for k in ("attention_bias", "mlp_bias", "pretraining_tp"):
        mc.pop(k, None)
    mw = {}
    rng = np.random.Generator(np.random.PCG64(6))
    for k, v in w.items():
        m = re.match(r"(model\.layers\.\d+)\.mlp\.(gate|up|down)_proj\.weight$", k)
        if m:
            mw[f"{m.group(1)}.block_sparse_moe.experts.0.{dict(gate='w1', up='w3', down='w2')[m.group(2)]}.weight"] = v
            if m.group(2) == "gate":
                mw[f"{m.group(1)}.block_sparse_moe.gate.weight"] = rng.standard_normal((1, 64)).astype(np.float32)
        else:
            mw[k] = v
    dm = write_variant("mixtral_1expert", mc, mw)
    ids = rand_ids(rng, 2, 20)
    close(rf.Model(dm).forward(ids), rf.Model(dl).forward(ids), 1e-12, "mixtral(E=1,k=1) == llama")


def test_rope():
    for hd in (8, 16, 24):
        cos, sin = rf.rope_cos_sin(7, hd, 10000.0)
        x = np.random.Generator(np.random.PCG64(hd)).standard_normal((1, 7, 3, hd))
        y = rf.apply_rope(x, cos, sin)
        close(y[:, 0], x[:, 0], 0, "RoPE at position 0 is identity")
        close(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), 1e-12, "RoPE preserves norm")
        # relative: <R_m q, R_n k> depends only on m - n
        q = np.broadcast_to(x[:, :1, :1], (1, 7, 1, hd))
        k = np.broadcast_to(x[:, 1:2, 1:2], (1, 7, 1, hd))
        rq, rk = rf.apply_rope(q, cos, sin), rf.apply_rope(k, cos, sin)
        dots = np.einsum("td,sd->ts", rq[0, :, 0], rk[0, :, 0])
        for delta in range(-3, 4):
            diag = np.diagonal(dots, offset=delta)
            close(diag, np.full_like(diag, diag[0]), 1e-12, "RoPE relative position")
        # pairs (i, i + d/2) rotate with frequency theta^(-2i/d)
        i = 1
        ang = 3 * 10000.0 ** (-2 * i / hd)
        e = np.zeros((1, 7, 1, hd))
        e[0, 3, 0, i] = 1.0
        r = rf.apply_rope(e, cos, sin)[0, 3, 0]
        close([r[i], r[i + hd // 2]], [math.cos(ang), math.sin(ang)], 1e-12, "rotate_half pairing")


def test_causality_and_batch_independence():
    rng = np.random.Generator(np.random.PCG64(8))
    for arch in ARCHS:
        m = rf.Model(model_dir(arch))
        a = rand_ids(rng, 1, 16)
        b = a.copy()
        b[0, 10:] = rand_ids(rng, 1, 6)
        check(not np.array_equal(a, b), "changed")
        la, lb = m.forward(a), m.forward(b)
        close(la[:, :10], lb[:, :10], 1e-12, f"{arch}: causal (prefix logits unchanged)")
        check(np.max(np.abs(la[:, 10:] - lb[:, 10:])) > 1e-3, f"{arch}: later logits should change")
        both = m.forward(np.concatenate([a, b]))
        close(both[0], la[0], 1e-12, f"{arch}: batch row 0")
        close(both[1], lb[0], 1e-12, f"{arch}: batch row 1")
        close(m.forward(a[:, :5])[0], la[0, :5], 1e-12, f"{arch}: prefix-only forward equals")


def _permute_experts(arch, cfg, w, perm):
    """New weights where new expert j = old expert perm[j] (router rows permuted alike)."""
    out = dict(w)
    pat = re.compile(r"(model\.layers\.\d+\.(?:block_sparse_moe|mlp))\.(gate\.weight|experts\.(\d+)\.(.+))$")
    for k, v in w.items():
        m = pat.match(k)
        if not m:
            continue
        if m.group(3) is None:
            out[k] = v[perm]
        else:
            j = int(m.group(3))
            inv = int(np.argsort(perm)[j])  # old expert j becomes new index inv
            out[f"{m.group(1)}.experts.{inv}.{m.group(4)}"] = v
    return out


def test_expert_permutation_invariance():
    rng = np.random.Generator(np.random.PCG64(9))
    for arch in MOE_ARCHS:
        d = model_dir(arch, seed=9)
        cfg, w = load_f32(d)
        E = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
        perm = rng.permutation(E)
        dp = write_variant(f"perm_{arch}", cfg, _permute_experts(arch, cfg, w, perm))
        ids = rand_ids(rng, 2, 12)
        r1, r2 = [], []
        l1 = rf.Model(d).forward(ids, routing=r1)
        l2 = rf.Model(dp).forward(ids, routing=r2)
        close(l1, l2, 1e-10, f"{arch}: expert permutation invariance")
        inv = np.argsort(perm)
        for x, y in zip(r1, r2):
            check(np.array_equal(inv[np.array(x["experts"])], np.array(y["experts"])), f"{arch}: permuted routing")


def test_gqa_equals_expanded_mha():
    rng = np.random.Generator(np.random.PCG64(10))
    for arch in ("llama", "qwen2", "qwen3_moe", "olmoe"):
        d = model_dir(arch, seed=10)
        cfg, w = load_f32(d)
        nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
        g = nh // nkv
        rows = np.concatenate([np.arange(h * hd, (h + 1) * hd) for h in range(nkv) for _ in range(g)])
        w2 = dict(w)
        for k, v in w.items():
            if re.search(r"self_attn\.(k_proj|v_proj)\.(weight|bias)$", k):
                w2[k] = v[rows]
            if arch == "olmoe" and k.endswith("self_attn.k_norm.weight"):
                w2[k] = v[rows]
        d2 = write_variant(f"mha_{arch}", dict(cfg, num_key_value_heads=nh), w2)
        ids = rand_ids(rng, 1, 14)
        close(rf.Model(d).forward(ids), rf.Model(d2).forward(ids), 1e-10, f"{arch}: GQA == expanded MHA")


def test_router_statistics():
    rng = np.random.Generator(np.random.PCG64(11))
    ids = rand_ids(rng, 2, 48)
    renorm = {"mixtral": True, "qwen2_moe": False, "qwen3_moe": True, "deepseek": False, "olmoe": False}
    moe_layers = {"mixtral": [0, 1, 2], "qwen2_moe": [0, 2], "qwen3_moe": [0, 1, 2], "deepseek": [1, 2],
                  "olmoe": [0, 1, 2]}
    for arch in MOE_ARCHS:
        cfg, _ = load_f32(model_dir(arch))
        r = []
        rf.Model(model_dir(arch)).forward(ids, routing=r)
        check([x["layer"] for x in r] == moe_layers[arch], f"{arch}: MoE layers {[x['layer'] for x in r]}")
        for x in r:
            e, wt, p = np.array(x["experts"]), np.array(x["weights"]), np.array(x["probs"])
            k, E = x["top_k"], x["num_experts"]
            check(len(np.unique(e)) == E, f"{arch}: layer {x['layer']} uses only {len(np.unique(e))}/{E} experts")
            ps = -np.sort(-p, axis=-1)
            gap = float(np.min(ps[..., k - 1] - ps[..., k]))
            check(gap > 1e-7, f"{arch}: near tie in top-k ({gap})")
            close(p.sum(-1), 1.0, 1e-12, "probs sum to 1")
            s = wt.sum(-1)
            if renorm[arch]:
                close(s, 1.0, 1e-12, f"{arch}: renormalized")
            else:
                check(np.all(s < 1 - 1e-6), f"{arch}: raw probs must not sum to 1")
            check(float(ps[..., 0].max()) < 0.995, f"{arch}: degenerate router")
    # deepseek with norm_topk_prob=true: weights / (sum + 1e-20)
    r = []
    rf.Model(model_dir("deepseek", norm_topk_prob=True)).forward(ids, routing=r)
    close(np.array(r[0]["weights"]).sum(-1), 1.0, 1e-12, "deepseek norm_topk_prob=true")
    # tie-break rule of the reference top-k: lower index wins
    got = rf.topk_lower_index(np.array([[0.3, 0.1, 0.3, 0.3], [0.25, 0.25, 0.25, 0.25]]), 2)
    check(got.tolist() == [[0, 2], [0, 1]], f"tie-break lower index: {got.tolist()}")


def test_olmoe_clipping_active():
    stats = {}
    ids = rand_ids(np.random.Generator(np.random.PCG64(12)), 2, 32)
    m = rf.Model(model_dir("olmoe"))
    lg = m.forward(ids, stats=stats)
    frac = stats["clip_count"] / stats["clip_total"]
    check(0.005 < frac < 0.2, f"olmoe clip fraction {frac:.4f}")
    if VERBOSE:
        print(f"    olmoe clip_qkv={m.cfg['clip_qkv']} clips {100 * frac:.2f}% of q/k/v values")
    cfg, w = load_f32(model_dir("olmoe"))
    d2 = write_variant("olmoe_noclip", dict(cfg, clip_qkv=None), w)
    check(np.max(np.abs(rf.Model(d2).forward(ids) - lg)) > 1e-3, "clip_qkv changes logits")


def test_shared_expert_gate_and_dense_layers():
    h = np.random.Generator(np.random.PCG64(14)).standard_normal((1, 5, 64))
    x = h.reshape(5, 64)
    # qwen2_moe: MoE output = routed + sigmoid(h . shared_expert_gate) * shared_expert(h)
    cfg, w = load_f32(model_dir("qwen2_moe"))
    noshared, gate0 = dict(w), dict(w)
    for k in w:
        if k.endswith("shared_expert.down_proj.weight"):
            noshared[k] = np.zeros_like(w[k])
        if k.endswith("shared_expert_gate.weight"):
            gate0[k] = np.zeros_like(w[k])
    mo = rf.Model(model_dir("qwen2_moe"))
    mns = rf.Model(write_variant("q2_noshared", cfg, noshared))
    mg0 = rf.Model(write_variant("q2_gate0", cfg, gate0))
    routed = mns.ffn(h, 0, None).reshape(5, 64)
    shared = mo.mlp(x, "model.layers.0.mlp.shared_expert", cfg["shared_expert_intermediate_size"])
    close(mg0.ffn(h, 0, None).reshape(5, 64) - routed, 0.5 * shared, 1e-12, "qwen2_moe sigmoid(0) * shared")
    g = 1 / (1 + np.exp(-(x @ w["model.layers.0.mlp.shared_expert_gate.weight"].astype(np.float64).T)))
    close(mo.ffn(h, 0, None).reshape(5, 64) - routed, g * shared, 1e-12, "qwen2_moe gated shared expert")
    check(0.02 < float(g.min()) and float(g.max()) < 0.98 and float(g.std()) > 0.05, f"gate degenerate {g.ravel()}")
    close(mo.ffn(h, 1, None), mo.mlp(h, "model.layers.1.mlp", cfg["intermediate_size"]), 0,
          "qwen2_moe layer 1 (mlp_only_layers) dense")
    # deepseek: shared experts added ungated
    cfg, w = load_f32(model_dir("deepseek"))
    ns = dict(w)
    for k in w:
        if k.endswith("shared_experts.down_proj.weight"):
            ns[k] = np.zeros_like(w[k])
    md, mn = rf.Model(model_dir("deepseek")), rf.Model(write_variant("ds_noshared", cfg, ns))
    sh = md.mlp(h.reshape(5, 64), "model.layers.1.mlp.shared_experts", 64)
    close(md.ffn(h, 1, None).reshape(5, 64) - mn.ffn(h, 1, None).reshape(5, 64), sh, 1e-12, "deepseek ungated shared")
    # deepseek layer 0 is the dense MLP of width intermediate_size
    dense = md.mlp(h, "model.layers.0.mlp", 128)
    close(md.ffn(h, 0, None), dense, 0, "deepseek layer 0 dense")


def test_unused_tensor_detected_and_sliding_window():
    cfg, w = load_f32(model_dir("llama"))
    d = write_variant("extra_tensor", cfg, dict(w, **{"model.layers.0.mlp.experts.0.up_proj.weight": w["model.norm.weight"]}))
    try:
        rf.Model(d)
        raise AssertionError("unused tensor not detected")
    except ValueError:
        pass
    rf.Model(d, allow_unused=True)
    cfg, w = load_f32(model_dir("mistral"))
    ids = rand_ids(np.random.Generator(np.random.PCG64(15)), 1, 12)
    base = rf.Model(model_dir("mistral")).forward(ids)
    lw = rf.Model(write_variant("mistral_sw4", dict(cfg, sliding_window=4), w)).forward(ids)
    close(lw[:, :4], base[:, :4], 1e-12, "sliding window inactive for t < W")
    check(np.max(np.abs(lw[:, 4:] - base[:, 4:])) > 1e-3, "sliding window active for t >= W")


def _naive_forward(d, ids):
    """Second, loop-based implementation (token by token with a KV cache, per head, per chosen expert)
    written directly from docs/formats.md §2.2-2.3; used to cross-check the vectorized reference."""
    cfg, w32 = load_f32(d)
    W = {k: v.astype(np.float64) for k, v in w32.items()}
    arch = cfg["model_type"]
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    theta = cfg["rope_theta"]

    def norm(v, g):
        return v / math.sqrt(float(np.dot(v, v)) / len(v) + eps) * g

    def lin(v, name):
        y = W[name + ".weight"] @ v
        return y + W[name + ".bias"] if name + ".bias" in W else y

    def swiglu(v, p, g="gate_proj", u="up_proj", dn="down_proj"):
        a = lin(v, f"{p}.{g}")
        return lin(a / (1 + np.exp(-a)) * lin(v, f"{p}.{u}"), f"{p}.{dn}")

    def rope(v, pos):
        out = np.empty_like(v)
        half = hd // 2
        for i in range(half):
            ang = pos * theta ** (-2.0 * i / hd)
            c, s = math.cos(ang), math.sin(ang)
            out[i] = v[i] * c - v[i + half] * s
            out[i + half] = v[i + half] * c + v[i] * s
        return out

    def moe_layer(i):
        if arch in ("mixtral", "olmoe"):
            return True
        if arch in ("qwen2_moe", "qwen3_moe"):
            return i not in cfg["mlp_only_layers"] and (i + 1) % cfg["decoder_sparse_step"] == 0
        if arch == "deepseek":
            return i >= cfg["first_k_dense_replace"] and i % cfg["moe_layer_freq"] == 0
        return False

    cache = [([], []) for _ in range(cfg["num_hidden_layers"])]
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    logits = []
    for pos, tok in enumerate(ids):
        x = W["model.embed_tokens.weight"][tok].copy()
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}"
            h = norm(x, W[f"{p}.input_layernorm.weight"])
            q, k, v = (lin(h, f"{p}.self_attn.{n}_proj") for n in "qkv")
            if arch == "olmoe":
                q = norm(q, W[f"{p}.self_attn.q_norm.weight"])
                k = norm(k, W[f"{p}.self_attn.k_norm.weight"])
                cl = cfg["clip_qkv"]
                q, k, v = (np.minimum(np.maximum(z, -cl), cl) for z in (q, k, v))
            qs = [q[j * hd:(j + 1) * hd] for j in range(nh)]
            ks = [k[j * hd:(j + 1) * hd] for j in range(nkv)]
            vs = [v[j * hd:(j + 1) * hd] for j in range(nkv)]
            if arch == "qwen3_moe":
                qs = [norm(z, W[f"{p}.self_attn.q_norm.weight"]) for z in qs]
                ks = [norm(z, W[f"{p}.self_attn.k_norm.weight"]) for z in ks]
            cache[i][0].append([rope(z, pos) for z in ks])
            cache[i][1].append(vs)
            att = []
            for j in range(nh):
                qj = rope(qs[j], pos)
                kvh = j // (nh // nkv)
                sc = np.array([float(np.dot(qj, cache[i][0][s][kvh])) / math.sqrt(hd) for s in range(pos + 1)])
                pr = np.exp(sc - sc.max())
                pr /= pr.sum()
                att.append(sum(pr[s] * cache[i][1][s][kvh] for s in range(pos + 1)))
            x = x + lin(np.concatenate(att), f"{p}.self_attn.o_proj")
            h = norm(x, W[f"{p}.post_attention_layernorm.weight"])
            if not moe_layer(i):
                x = x + swiglu(h, f"{p}.mlp")
                continue
            pre = f"{p}.block_sparse_moe" if arch == "mixtral" else f"{p}.mlp"
            lg = W[f"{pre}.gate.weight"] @ h
            pr = np.exp(lg - lg.max())
            pr /= pr.sum()
            k_ = cfg["num_experts_per_tok"]
            chosen = sorted(range(len(pr)), key=lambda e: (-pr[e], e))[:k_]
            wts = [pr[e] for e in chosen]
            if arch == "mixtral" or (cfg.get("norm_topk_prob") and arch != "deepseek"):
                tot = sum(wts)
                wts = [a / tot for a in wts]
            elif arch == "deepseek" and cfg.get("norm_topk_prob") and k_ > 1:
                tot = sum(wts) + 1e-20
                wts = [a / tot for a in wts]
            out = np.zeros(H)
            for e, a in zip(chosen, wts):
                if arch == "mixtral":
                    out += a * swiglu(h, f"{pre}.experts.{e}", "w1", "w3", "w2")
                else:
                    out += a * swiglu(h, f"{pre}.experts.{e}")
            if arch == "qwen2_moe":
                gt = float(W[f"{pre}.shared_expert_gate.weight"][0] @ h)
                out += swiglu(h, f"{pre}.shared_expert") / (1 + math.exp(-gt))
            if arch == "deepseek":
                out += swiglu(h, f"{pre}.shared_experts")
            x = x + out
        logits.append(head @ norm(x, W["model.norm.weight"]))
    return np.array(logits)


def test_naive_loop_implementation_agrees():
    rng = np.random.Generator(np.random.PCG64(17))
    variants = [dict(arch=a, tiny=True) for a in ARCHS] + [
        dict(arch="qwen3_moe"), dict(arch="deepseek", norm_topk_prob=True, tiny=True),
        dict(arch="qwen2_moe", tied=True, tiny=True), dict(arch="olmoe", dtype="bf16")]
    for kw in variants:
        arch = kw.pop("arch")
        d = model_dir(arch, seed=17, **kw)
        ids = rand_ids(rng, 1, 7)[0]
        ref = rf.Model(d).forward(ids[None])[0]
        close(ref, _naive_forward(d, ids), 1e-10, f"{arch} {kw}: vectorized vs loop implementation")


# ============================================================================ perplexity
def test_ppl_windows():
    d = model_dir("mixtral", seed=16, tiny=True)
    m = rf.Model(d)
    rng = np.random.Generator(np.random.PCG64(16))
    ids = rand_ids(rng, 1, 37)[0]
    N = len(ids)
    full = rf.log_softmax(m.forward(ids[None])[0])
    full_nll = -float(sum(full[p - 1, ids[p]] for p in range(1, N)))
    r = rp.perplexity(m, [ids], ctx=64, stride=64)
    check(r["tokens"] == N - 1, "one window scores N-1 tokens")
    check(abs(r["nll_sum"] - full_nll) < 1e-9, "single window == full forward")
    check(abs(r["ppl"] - math.exp(full_nll / (N - 1))) < 1e-9, "ppl = exp(mean nll)")
    for C, S in ((16, 5), (16, 8), (10, 9), (8, 1), (12, 12), (7, 7), (37, 36)):
        win = []
        r = rp.perplexity(m, [ids], ctx=C, stride=S, windows=win)
        # brute force: token p is scored by the first window (begin = w*S) whose end exceeds p, if p > begin
        nll, cnt, ends = 0.0, 0, []
        begins = []
        for b in range(0, N, S):
            begins.append(b)
            ends.append(min(b + C, N))
            if ends[-1] == N:
                break
        cache = {}
        for p in range(1, N):
            w = next(i for i in range(len(ends)) if ends[i] > p)
            b = begins[w]
            if p == b:
                continue
            if w not in cache:
                cache[w] = rf.log_softmax(m.forward(ids[None, b:ends[w]])[0])
            nll -= float(cache[w][p - 1 - b, ids[p]])
            cnt += 1
        check(r["tokens"] == cnt, f"C={C} S={S}: tokens {r['tokens']} != {cnt}")
        check(abs(r["nll_sum"] - nll) < 1e-9, f"C={C} S={S}: nll mismatch")
        if S < C:
            check(cnt == N - 1, f"C={C} S={S}: every token but the first scored once")
        else:
            check(cnt == N - math.ceil(N / C), f"C={C} S={S}: non-overlapping windows skip window starts")
        check(sum(x[2] for x in win) == cnt and win[-1][1] == N, "window list")
    try:
        rp.perplexity(m, [ids], ctx=4, stride=5)
        raise AssertionError("stride > ctx accepted")
    except ValueError:
        pass
    # two streams add up; CLI output
    r2 = rp.perplexity(m, [ids[:20], ids[20:]], ctx=8, stride=4)
    a = rp.perplexity(m, [ids[:20]], ctx=8, stride=4)
    b = rp.perplexity(m, [ids[20:]], ctx=8, stride=4)
    check(r2["tokens"] == a["tokens"] + b["tokens"] and abs(r2["nll_sum"] - a["nll_sum"] - b["nll_sum"]) < 1e-9,
          "streams add")
    f = os.path.join(TMP, "ppl_ids.json")
    json.dump(ids.tolist(), open(f, "w"))
    outp = subprocess.run([PY, os.path.join(HERE, "reference_ppl.py"), d, f, "--ctx", "16", "--stride", "5"],
                          check=True, capture_output=True, text=True).stdout
    res = json.loads(outp)
    ref = rp.perplexity(m, [ids], ctx=16, stride=5)
    check(set(res) == {"nll_sum", "tokens", "ppl"} and res["tokens"] == ref["tokens"]
          and abs(res["nll_sum"] - ref["nll_sum"]) < 1e-9, "CLI ppl")


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)]


def main():
    global TMP, VERBOSE
    ap = argparse.ArgumentParser()
    ap.add_argument("-v", action="store_true")
    ap.add_argument("-k", default="")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    VERBOSE = a.v
    TMP = tempfile.mkdtemp(prefix="moewb_reftest_")
    failed = 0
    t_all = time.time()
    try:
        for t in TESTS:
            if a.k not in t.__name__:
                continue
            t0 = time.time()
            try:
                t()
                print(f"PASS {t.__name__} ({time.time() - t0:.2f}s)")
            except Exception:
                failed += 1
                print(f"FAIL {t.__name__}")
                traceback.print_exc()
    finally:
        if a.keep:
            print(f"kept {TMP}")
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    print(f"{'FAILED' if failed else 'OK'}: {failed} failed, {time.time() - t_all:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
