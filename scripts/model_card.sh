#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Measure a (demo) MoE model and print the markdown tables of its model card (docs/models.md):
# perplexity per domain vs the unigram/bigram baselines, routing specialization per layer, and
# zero-shot task accuracies when `moewb eval --tasks` exists.
#
#   scripts/model_card.sh MODEL_DIR [--out DIR] [--ctx N] [--eval-bytes N] [--calib-samples N]
#                         [--calib-seq-len L] [--task-limit N] [--dtype T] [--baseline FILE]
#                         [--corpus DIR] [--train FILE] [--tasks DIR]
#
#   --out DIR            keep the intermediate files there (default: a temporary directory, removed)
#   --ctx N              perplexity window (default 512)
#   --eval-bytes N       score only the first N bytes (cut at a line end) of each eval file; the
#                        baselines are computed on the same cut text (default 0 = whole files)
#   --calib-samples N    calibration windows for the specialization (default 64)
#   --calib-seq-len L    tokens per calibration window (default 256)
#   --task-limit N       items per task file (default 200; only with moewb eval --tasks --limit)
#   --dtype T            compute dtype for every run (default f32: bf16 weights are upcast exactly;
#                        libtorch's CPU bf16 GEMM is ~20x slower; auto = what `moewb eval` does)
#   --baseline FILE      reuse a `datasets/unigram_ppl.py --json` result (same tokenizer, same eval text)
#   --corpus DIR         held-out and calibration splits: DIR/eval/*.txt, DIR/calib.jsonl
#                        (default datasets/corpus-v2)
#   --train FILE         training split the unigram/bigram baselines count (default DIR/train.jsonl;
#                        corpus v2's is not committed but rebuilt from packages into $CORPUS_V2,
#                        default /work/corpus-v2, by scripts/train_demo_models.sh: that train.jsonl is
#                        the default for the default corpus)
#   --tasks DIR          zero-shot task files DIR/*.jsonl (default datasets/tasks-v2)
#
# Uses $MOEWB, else build/app/cli/moewb, else build/bin/moewb. Progress and timings go to stderr,
# the markdown to stdout. Cost on the v1 demo Mixtral (8 experts, hidden 256, 4 layers; no longer
# shipped): 246k eval tokens + baselines + 16k calibration tokens + 3 x 200 task items = 2.6 min of CPU;
# on a machine busy with other jobs OMP_NUM_THREADS=1 avoids libtorch thread thrashing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2; exit "${1:-2}"; }

MODEL="" OUT="" CTX=512 EVAL_BYTES=0 CALIB_SAMPLES=64 CALIB_SEQ=256 TASK_LIMIT=200 DTYPE=f32 BASELINE=""
CORPUS="$ROOT/datasets/corpus-v2" TRAIN="" TASKS="$ROOT/datasets/tasks-v2"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --ctx) CTX="$2"; shift 2 ;;
        --eval-bytes) EVAL_BYTES="$2"; shift 2 ;;
        --calib-samples) CALIB_SAMPLES="$2"; shift 2 ;;
        --calib-seq-len) CALIB_SEQ="$2"; shift 2 ;;
        --task-limit) TASK_LIMIT="$2"; shift 2 ;;
        --baseline) BASELINE="$2"; shift 2 ;;
        --dtype) DTYPE="$2"; shift 2 ;;
        --corpus) CORPUS="$2"; shift 2 ;;
        --train) TRAIN="$2"; shift 2 ;;
        --tasks) TASKS="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        -*) echo "model_card.sh: unknown option $1" >&2; usage ;;
        *) [ -z "$MODEL" ] || usage; MODEL="$1"; shift ;;
    esac
done
[ -n "$MODEL" ] || usage
[ -f "$MODEL/config.json" ] || { echo "model_card.sh: $MODEL: no config.json" >&2; exit 1; }
if [ -z "$TRAIN" ]; then
    TRAIN="$CORPUS/train.jsonl"
    [ -f "$TRAIN" ] || [ "$CORPUS" != "$ROOT/datasets/corpus-v2" ] || TRAIN="${CORPUS_V2:-/work/corpus-v2}/train.jsonl"
fi
[ -d "$CORPUS/eval" ] && [ -f "$CORPUS/calib.jsonl" ] \
    || { echo "model_card.sh: $CORPUS: no eval/ directory or calib.jsonl" >&2; exit 1; }
[ -n "$BASELINE" ] || [ -f "$TRAIN" ] || { echo "model_card.sh: $TRAIN: training split not found" >&2; exit 1; }

MOEWB="${MOEWB:-}"
if [ -z "$MOEWB" ]; then
    for c in "$ROOT/build/app/cli/moewb" "$ROOT/build/bin/moewb"; do
        if [ -x "$c" ]; then MOEWB="$c"; break; fi
    done
fi
[ -n "$MOEWB" ] && [ -x "$MOEWB" ] || { echo "model_card.sh: no moewb binary: set \$MOEWB or build it" >&2; exit 1; }
export MOEWB
if [ -n "$BASELINE" ]; then
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); j["rows"], j["bigram_k"]' "$BASELINE" 2>/dev/null \
        || { echo "model_card.sh: $BASELINE: not a datasets/unigram_ppl.py --json result" >&2; exit 1; }
fi

if [ -z "$OUT" ]; then
    OUT="$(mktemp -d)"
    trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT/eval" "$OUT/ppl"

log() { echo "model_card.sh: $*" >&2; }
T0=$SECONDS
step() { log "[$((SECONDS - T0)) s] $*"; }

# 1. Evaluation text, whole or cut at a line end after --eval-bytes.
for f in "$CORPUS"/eval/*.txt; do
    "$PY" - "$f" "$OUT/eval/$(basename "$f")" "$EVAL_BYTES" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
n = int(sys.argv[3])
if 0 < n < len(data):
    cut = data.rfind(b"\n", 0, n)
    data = data[:cut + 1 if cut > 0 else n]
open(sys.argv[2], "wb").write(data)
EOF
done

# 2. Model perplexity per domain.
for f in "$OUT"/eval/*.txt; do
    d="$(basename "$f" .txt)"
    step "perplexity on $d"
    "$MOEWB" eval "$MODEL" --ppl "$f" --ctx "$CTX" --dtype "$DTYPE" --json > "$OUT/ppl/$d.json" 2> "$OUT/ppl/$d.log"
done

# 3. Baselines on the same text.
if [ -n "$BASELINE" ]; then
    cp "$BASELINE" "$OUT/baseline.json"
else
    step "unigram / bigram baselines"
    "$PY" "$ROOT/datasets/unigram_ppl.py" --tokenizer "$MODEL" --train "$TRAIN" --eval-dir "$OUT/eval" \
        --tune "$CORPUS/calib.jsonl" --json > "$OUT/baseline.json"
fi

# 4. Routing specialization on the calibration split (random windows cover every domain).
step "calibrate ($CALIB_SAMPLES x $CALIB_SEQ tokens)"
"$MOEWB" calibrate "$MODEL" --data "$CORPUS/calib.jsonl" --samples "$CALIB_SAMPLES" \
    --seq-len "$CALIB_SEQ" --random-windows --seed 0 --probe-tokens 0 --no-activations --dtype "$DTYPE" \
    --out "$OUT/stats.h5" > "$OUT/calibrate.log" 2>&1
"$MOEWB" stats specialization "$OUT/stats.h5" --json > "$OUT/specialization.json"

# 5. Zero-shot tasks, when this moewb has them.
TASKS_NOTE=""
EVAL_HELP="$("$MOEWB" eval --help 2>/dev/null || true)" # not piped into grep -q: SIGPIPE + pipefail
if grep -q -- '--tasks' <<<"$EVAL_HELP"; then
    limit=()
    if grep -q -- '--limit' <<<"$EVAL_HELP"; then limit=(--limit "$TASK_LIMIT"); fi
    tasks=()
    for f in "$TASKS"/*.jsonl; do
        [ -e "$f" ] && tasks+=(--tasks "$f")
    done
    if [ ${#tasks[@]} -gt 0 ]; then
        step "zero-shot tasks (${#tasks[@]} args, ${limit[*]:-all items})"
        if ! "$MOEWB" eval "$MODEL" "${tasks[@]}" "${limit[@]}" --dtype "$DTYPE" --json > "$OUT/tasks.json" 2> "$OUT/tasks.log"; then
            log "tasks failed: $(tail -n 1 "$OUT/tasks.log")"
            rm -f "$OUT/tasks.json"
        fi
    else
        TASKS_NOTE="no task files in $TASKS"
    fi
else
    TASKS_NOTE="this moewb has no \`eval --tasks\`; task accuracies not measured"
fi
step "done"

CORPUS_SHOWN="$(realpath -m "$CORPUS")"; CORPUS_SHOWN="${CORPUS_SHOWN#"$ROOT/"}"
"$PY" - "$MODEL" "$OUT" "$CTX" "$EVAL_BYTES" "$CALIB_SAMPLES" "$CALIB_SEQ" "$TASKS_NOTE" "$DTYPE" "$CORPUS_SHOWN" <<'EOF'
import glob, json, math, os, sys

model, out, ctx, eval_bytes, samples, seq, tasks_note, dtype, corpus = sys.argv[1:10]
name = os.path.basename(os.path.normpath(model))
base = json.load(open(os.path.join(out, "baseline.json")))
brow = {r["domain"]: r for r in base["rows"]}

print(f"### {name}: perplexity\n")
cut = "whole files" if int(eval_bytes) == 0 else f"first {int(eval_bytes):,} bytes of each file"
print(f"`moewb eval --ppl {corpus}/eval/<domain>.txt --ctx {ctx} --dtype {dtype}` ({cut}). Baselines from "
      f"{base['train_tokens']:,} train tokens: unigram add-one, bigram add-k (k = {base['bigram_k']:g}).\n")
print("| domain | scored tokens | model ppl | unigram ppl | bigram ppl |")
print("|---|---:|---:|---:|---:|")
tn, tl = 0, 0.0
for f in sorted(glob.glob(os.path.join(out, "ppl", "*.json"))):
    d = os.path.basename(f)[:-5]
    r = json.load(open(f))
    tn += r["scored_tokens"]; tl += r["nll_sum"]
    b = brow.get(d, {})
    print(f"| {d} | {r['scored_tokens']:,} | {r['perplexity']:.2f} | {b.get('unigram_ppl', float('nan')):.2f} | "
          f"{b.get('bigram_ppl', float('nan')):.2f} |")
b = brow.get("all", {})
print(f"| **all** | {tn:,} | **{math.exp(tl / tn):.2f}** | {b.get('unigram_ppl', float('nan')):.2f} | "
      f"{b.get('bigram_ppl', float('nan')):.2f} |\n")

s = json.load(open(os.path.join(out, "specialization.json")))
doms = s["domains"]
L0 = s["layers"][0]
print(f"### {name}: routing specialization\n")
print(f"`moewb calibrate --data {corpus}/calib.jsonl --samples {samples} --seq-len {seq} --random-windows "
      f"--seed 0`, then `moewb stats specialization`. MI = I(domain; expert) over routed (token, slot) choices, "
      f"NMI = MI / H(domain) (0 = routing ignores the domain, 1 = the domain fixes the experts). Per domain: "
      f"entropy H(E|d) of its expert distribution in bits (uniform = log2 E = {L0['uniform_entropy_bits']:.2f}, "
      f"floor log2 k = {math.log2(L0['top_k']):.2f}) / share of its routing on its top-{L0['top_k']} experts "
      f"(uniform = {100 * L0['top_k'] / L0['num_experts']:.0f}%).\n")
print("| layer | tokens | MI (bits) | NMI | " + " | ".join(doms) + " |")
print("|---:|---:|---:|---:|" + "---:|" * len(doms))
fmt = lambda h, t: "-" if h is None else f"{h:.2f} / {100 * t:.0f}%"
for l in s["layers"]:
    nmi = "-" if l["normalized_mi"] is None else f"{l['normalized_mi']:.3f}"
    cells = [fmt(x["entropy_bits"], x["topk_share"]) for x in l["domains"]]
    print(f"| {l['layer']} | {l['tokens']:,} | {l['mutual_info_bits']:.3f} | {nmi} | " + " | ".join(cells) + " |")
m = s["mean"]
nmi = "-" if m["normalized_mi"] is None else f"{m['normalized_mi']:.3f}"
print(f"| **mean** | | **{m['mutual_info_bits']:.3f}** | **{nmi}** | "
      + " | ".join(fmt(x["entropy_bits"], x["topk_share"]) for x in m["domains"]) + " |\n")
print("Most specific expert per domain and layer (lift = P(e|d) / P(e)):\n")
print("| domain | " + " | ".join(f"layer {l['layer']}" for l in s["layers"]) + " |")
print("|---|" + "---|" * len(s["layers"]))
for i, d in enumerate(doms):
    cells = []
    for l in s["layers"]:
        x = l["domains"][i]
        cells.append("-" if x["top_expert"] < 0 else f"E{x['top_expert']} (x{x['top_expert_lift']:.1f})")
    print(f"| {d} | " + " | ".join(cells) + " |")
print()

print(f"### {name}: zero-shot tasks\n")
tasks_file = os.path.join(out, "tasks.json")
if tasks_note:
    print(f"_{tasks_note}._\n")
elif not os.path.isfile(tasks_file):
    print("_task evaluation failed (see tasks.log in the output directory)._\n")
else:
    t = json.load(open(tasks_file))
    pm = lambda v, e: "-" if v is None else (f"{100 * v:.1f}%" + ("" if e is None else f" ± {100 * e:.1f}"))
    print("| task | items | acc | acc_norm | chance |")
    print("|---|---:|---:|---:|---:|")
    for x in t.get("tasks", []):
        chance = {"hellaswag": "25%", "winogrande": "50%", "lambada": "-"}.get(x.get("layout", ""), "-")
        print(f"| {x['name']} | {x['n']} | {pm(x.get('acc'), x.get('acc_stderr'))} | "
              f"{pm(x.get('acc_norm'), x.get('acc_norm_stderr'))} | {chance} |")
    print()
EOF
