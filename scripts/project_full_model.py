# SPDX-License-Identifier: MIT
"""Projects a scripts/bench_full_model.sh run to whole models on the same machine (#28, docs/performance.md).

    /usr/bin/python3 scripts/project_full_model.py RUN_DIR [CHECK_DIR]

RUN_DIR is the script's --out directory (steps.tsv, model/config.json or config.json). Each step that
multiplies matrices keeps the FLOP rate it reached in the run (scripts/full_model_flops.py counts the work),
so its projected time is the target model's counted FLOPs over that rate; the other steps (plan, GGUF
export) scale with the parameter count. Memory is the streaming working set of the two largest steps
(one layer in the compute dtype, the calibration hidden states, GPTQ's float64 Hessians of one pass:
the routed experts' inputs of one group, at most what the quantize pass's 8 GiB bound lets in), times the ratio of the run's anonymous peak to that set; disk is the checkpoint, the GPTQ output and one Q4_K_M file. DeepSeek-V3's multi-head
latent attention is counted by its projection sizes (its attention FLOPs per token ≈ 2 x its attention
weights), its first three dense layers as MoE layers (a small overestimate) and its shared expert not
in the FLOPs (1 of the 9 experts a token runs: an underestimate of ≈ 11 % of the MoE work); parameters
and memory include the shared expert.

CHECK_DIR, another run of the script (e.g. --layers 4): its steps projected from RUN_DIR the same way,
next to what it measured — a check of the method on a model that was run.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import full_model_flops as ff  # noqa: E402

GIB = 2 ** 30
TARGETS = {
    "OLMoE-1B-7B": dict(hidden_size=2048, intermediate_size=1024, num_hidden_layers=16, num_attention_heads=16,
                        num_key_value_heads=16, num_experts=64, num_experts_per_tok=8, vocab_size=50304),
    "Mixtral-8x7B": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, num_experts=8, num_experts_per_tok=2, vocab_size=32000),
    "Qwen3-30B-A3B": dict(hidden_size=2048, moe_intermediate_size=768, intermediate_size=6144, num_hidden_layers=48,
                          num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128,
                          num_experts_per_tok=8, vocab_size=151936),
    # MLA: q 7168x1536 + 1536x(128x192), kv 7168x576 + 512x(128x256), o (128x128)x7168 = 187 M weights; an
    # attention of the same weight count: 4 * 7168 * hd * heads = 187 M with heads = 128, hd = 51 (approx.)
    "DeepSeek-V3": dict(hidden_size=7168, moe_intermediate_size=2048, intermediate_size=18432, num_hidden_layers=61,
                        num_attention_heads=128, num_key_value_heads=128, head_dim=51, num_experts=256,
                        num_experts_per_tok=8, vocab_size=129280, n_shared_experts=1),
}
GEMM_STEPS = ("calibrate", "quant-gptq", "eval-gptq", "llama-imatrix")
BYTE_STEPS = ("plan-budget", "gguf-q4km", "gguf-f16", "llama-quantize")


def params(cfg):
    s = ff._shape(cfg)
    attn = s["hidden"] * s["head_dim"] * (2 * s["heads"] + 2 * s["kv"])
    experts = s["experts"] + cfg.get("n_shared_experts", 0)
    layer = attn + experts * 3 * s["hidden"] * s["width"] + s["hidden"] * s["experts"]
    return s["layers"] * layer + 2 * s["vocab"] * s["hidden"], layer


def memory(cfg, tokens):
    """GiB of the GPTQ step's working set and of calibrate's (both stream one layer)."""
    s = ff._shape(cfg)
    _, layer = params(cfg)
    hidden = 2 * tokens * s["hidden"] * 2  # input and output hidden states, bf16
    # one pass's float64 Hessians: every routed expert's input of the larger group (gate/up: hidden,
    # down: width), at most the quantize pass's bound (QuantizeOptions::maxHessianBytes, 8 GiB at 12
    # bytes per value: a group over it takes several forward passes, not counted in the times)
    per_key = max(s["hidden"], s["width"]) ** 2
    keys = min(s["experts"], max(1, (8 * GIB) // (12 * per_key)))
    hessians = keys * per_key * 8
    return (layer * 2 + hidden + hessians) / GIB, (layer * 2 + hidden) / GIB


def load_run(run):
    """(wall seconds, anonymous peak GiB) by step, and the run's model config."""
    walls, anon = {}, {}
    for line in open(os.path.join(run, "steps.tsv")):
        f = line.rstrip("\n").split("\t")
        walls[f[0]] = float(f[1])
        anon[f[0]] = int(f[3]) * 1024 / GIB if len(f) > 3 else None
    cfg_path = next(p for p in (os.path.join(run, "model", "config.json"), os.path.join(run, "config.json"))
                    if os.path.exists(p))
    return walls, anon, json.load(open(cfg_path))


def main(run, check=None):
    walls, anon, base = load_run(run)
    samples, seqlen, chunks, ctx = 64, 512, 32, 512
    tokens = samples * seqlen
    done = ff.step_flops(base, samples, seqlen, chunks, ctx)
    rate = {n: done[n] / walls[n] for n in GEMM_STEPS if n in walls and n in done}
    base_params, _ = params(base)
    # The run's anonymous peak over the stated set scales the targets' stated sets (allocator slack,
    # transients the set leaves out).
    base_gptq, base_calib = memory(base, tokens)
    over_gptq = anon["quant-gptq"] / base_gptq if anon.get("quant-gptq") else 1.0
    over_calib = anon["calibrate"] / base_calib if anon.get("calibrate") else 1.0
    print(f"run: {run}, {base['num_hidden_layers']} layer(s), {base_params / 1e9:.2f} B parameters")
    print(f"measured peak / stated set: GPTQ {over_gptq:.2f}x, calibrate {over_calib:.2f}x (applied below)")
    print("rates reached: " + ", ".join(f"{n} {r / 1e9:.0f} GFLOP/s" for n, r in rate.items()))
    print()
    print("| model | parameters | calibrate | GPTQ (+ export) | GGUF Q4_K_M | eval PPL + KLD | llama-imatrix |"
          " total | GPTQ step memory | calibrate memory | disk |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, cfg in TARGETS.items():
        p, _ = params(cfg)
        fl = ff.step_flops(cfg, samples, seqlen, chunks, ctx)
        t = {n: fl[n] / rate[n] for n in rate}
        for n in BYTE_STEPS:
            if n in walls:
                t[n] = walls[n] * p / base_params
        total = sum(t.get(n, 0) for n in ("calibrate", "plan-budget", "quant-gptq", "gguf-q4km", "eval-gptq"))
        gptq_mem, calib_mem = memory(cfg, tokens)
        disk = (2 * p + 0.3 * p + 0.6 * p) / 1e9

        def h(sec):
            return f"{sec / 3600:.1f} h" if sec >= 3600 else f"{sec / 60:.0f} min"
        print(f"| {name} | {p / 1e9:.1f} B | {h(t['calibrate'])} | {h(t['quant-gptq'])} | "
              f"{h(t.get('gguf-q4km', 0))} | {h(t['eval-gptq'])} | {h(t.get('llama-imatrix', 0))} | {h(total)} | "
              f"{gptq_mem * over_gptq:.1f} GiB | {calib_mem * over_calib:.1f} GiB | {disk:.0f} GB |")

    if check:
        cw, ca, ccfg = load_run(check)
        p, _ = params(ccfg)
        fl = ff.step_flops(ccfg, samples, seqlen, chunks, ctx)
        gptq_mem, calib_mem = memory(ccfg, tokens)
        print()
        print(f"check: {check}, {ccfg['num_hidden_layers']} layer(s), projected from {run} | measured")
        for n in list(rate) + [n for n in BYTE_STEPS if n in walls]:
            if n not in cw:
                continue
            proj = fl[n] / rate[n] if n in rate else walls[n] * p / base_params
            print(f"  {n}: {proj:.1f} s | {cw[n]:.1f} s ({cw[n] / proj:.2f}x)")
        for n, m in (("quant-gptq", gptq_mem * over_gptq), ("calibrate", calib_mem * over_calib)):
            if ca.get(n):
                print(f"  {n} memory: {m:.2f} GiB | {ca[n]:.2f} GiB")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
