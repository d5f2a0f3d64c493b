# SPDX-License-Identifier: MIT
"""GEMM work per step of scripts/bench_full_model.sh (#28, docs/performance.md), for its fraction of the
GEMM peak: counted FLOPs / wall / peak. Only matrix products are counted (2 FLOPs per multiply-add);
norms, softmax, RoPE, routing bookkeeping, quantization searches and I/O are the overhead the fraction
shows. Steps without matrix products (plan, GGUF export, llama-quantize) are left out.

What each step multiplies (N = samples x seq_len calibration tokens, W = chunks x ctx evaluation tokens):
  forward of one token through one layer  2 (q + k + v + o weights) + 2 * 2 * heads * head_dim * (T + 1) / 2
                                           (causal scores and context, the mean over positions of a length-T
                                           sequence) + 2 * hidden * experts (router) + top_k * 3 * 2 * hidden * width
  lm_head                                  2 * hidden * vocabulary per token
  calibrate     N tokens through every layer (no lm_head) + the correlation probe: 256 tokens through every
                expert of every MoE layer
  quant-gptq    per layer, the quantize pass of engine/quant/quantize_model.cpp with --balance-experts
                sampled: the q/k/v pass only norms its input; the o_proj pass runs the attention; the gate/up
                and down passes run attention and router but not the routed experts, whose rows (about
                2 top_k N, 2 top_k / experts of all-tokens' rows) the balancer builds itself, computing their
                gate/up products for the down pass; one whole-layer forward carries the quantized layer's
                outputs (not after the last layer); Hessians X^T X: N hidden^2 (q/k/v) + N (heads head_dim)^2
                (o) + 2 top_k N (hidden^2 + width^2) (experts); GPTQ itself: out * in^2 per linear (column
                updates) + in^3 / 3 per Cholesky (gate and up share one call)
  eval-*        W tokens through every layer and the lm_head, twice with a KLD reference
  speed-*, llama-perplexity   W tokens, once; llama-imatrix: N tokens, once
"""
import re

PROBE_TOKENS = 256  # moewb calibrate's default --probe-tokens


def _shape(cfg):
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or hidden // heads
    return dict(hidden=hidden, heads=heads, kv=cfg.get("num_key_value_heads", heads), head_dim=head_dim,
                width=cfg.get("moe_intermediate_size") or cfg["intermediate_size"], experts=cfg["num_experts"],
                top_k=cfg["num_experts_per_tok"], layers=cfg["num_hidden_layers"], vocab=cfg["vocab_size"])


def attention_flops(s, seq_len):
    """Per token: the four projections and the causal score / context products."""
    proj = 2 * s["hidden"] * s["head_dim"] * (2 * s["heads"] + 2 * s["kv"])
    return proj + 4 * s["heads"] * s["head_dim"] * (seq_len + 1) / 2


def moe_flops(s):
    """Per token: router and the top-k experts' three products."""
    return 2 * s["hidden"] * s["experts"] + s["top_k"] * 6 * s["hidden"] * s["width"]


def layer_flops(s, seq_len):
    return attention_flops(s, seq_len) + moe_flops(s)


def gptq_flops(s, tokens, seq_len):
    H, I, k, E = s["hidden"], s["width"], s["top_k"], s["experts"]
    qo = s["heads"] * s["head_dim"]
    # o_proj pass: attention; gate/up and down passes: attention and router, the routed experts skipped
    # (the balancer builds their rows); the q/k/v pass only norms its input
    passes = tokens * (3 * attention_flops(s, seq_len) + 2 * 2 * H * E)
    carry = tokens * layer_flops(s, seq_len) * (s["layers"] - 1) / s["layers"]
    balance = 2 * k * tokens * 4 * H * I  # the down pass: gate/up products of every sampled row
    expert_rows = 2 * k * tokens
    hessians = 2 * tokens * H * H + 2 * tokens * qo * qo + 2 * expert_rows * (H * H + I * I)
    kv = s["kv"] * s["head_dim"]
    algorithm = (qo + 2 * kv) * H * H + H * qo * qo + (H ** 3 + qo ** 3) / 3  # q/k/v one call, o
    algorithm += E * (2 * I * H * H + H * I * I + (H ** 3 + I ** 3) / 3)  # gate+up one call, down
    return s["layers"] * (passes + balance + hessians + algorithm) + carry * s["layers"]


def step_flops(cfg, samples, seq_len, chunks, ctx):
    """Counted GEMM FLOPs of each step that multiplies matrices, by step name."""
    s = _shape(cfg)
    N, W, L = samples * seq_len, chunks * ctx, s["layers"]
    head = 2 * s["hidden"] * s["vocab"]
    forward_eval = W * (L * layer_flops(s, ctx) + head)
    probe = PROBE_TOKENS * s["experts"] * 6 * s["hidden"] * s["width"] * L
    return {
        "calibrate": N * L * layer_flops(s, seq_len) + probe,
        "quant-gptq": gptq_flops(s, N, seq_len),
        "eval-gptq": 2 * forward_eval,
        "eval-moewb-q4km": 2 * forward_eval,
        "eval-llama-q4km": 2 * forward_eval,
        "speed-moewb-f16": forward_eval,
        "speed-moewb-q4km": forward_eval,
        "llama-ppl-f16": forward_eval,
        "llama-ppl-q4km": forward_eval,
        "llama-imatrix": N * (L * layer_flops(s, seq_len) + head),
    }


def peak_gflops(path):
    """(GFLOP/s, dtype) of bench_gemm_peak's output: bf16 where the CPU has native bf16 (moewb computes
    in bf16 there), else fp32; None when the file has no peak."""
    try:
        text = open(path).read()
    except OSError:
        return None
    fast = re.search(r"fast bf16: (yes|no)", text)
    dtype = "bf16" if fast and fast.group(1) == "yes" else "fp32"
    m = re.search(rf"peak {dtype}: ([0-9.]+) GFLOP/s", text)
    return (float(m.group(1)), dtype) if m else None
