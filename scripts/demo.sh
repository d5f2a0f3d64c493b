#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the bundled demo MoE model
# (datasets/models/moewb-mixtral-8e-v2, trained here, docs/models.md): calibrate on the 13-domain
# calibration split of corpus v2, allocate 3 bits on average with three strategies, quantize each with GPTQ,
# and evaluate perplexity and the demo zero-shot tasks before and after, in one comparison table;
# then show how the experts are used (routing summary and specialization by domain).
# MOEWB_DEMO_MODEL=DIR runs it on another model; MOEWB_DEMO_QUICK=1 uses fewer tokens.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"
bash "$ROOT/scripts/setup.sh"
MOEWB="$BUILD/app/cli/moewb"

MODEL="${MOEWB_DEMO_MODEL:-$ROOT/datasets/models/moewb-mixtral-8e-v2}"
CORPUS="$ROOT/datasets/corpus-v2" TASKS="$ROOT/datasets/tasks-v2"
OUT="$BUILD/demo"
mkdir -p "$OUT"
EVAL_BYTES=12000 TASK_LIMIT=150 SAMPLES=64
if [ "${MOEWB_DEMO_QUICK:-0}" = 1 ]; then EVAL_BYTES=3000 TASK_LIMIT=30 SAMPLES=16; fi

# Held-out text: the first EVAL_BYTES bytes of every domain's evaluation file, cut at a line end.
EVAL="$OUT/eval-mixed.txt"
source "$ROOT/scripts/eval_text.sh"
mixed_eval_text "$CORPUS" "$EVAL_BYTES" "$EVAL"

echo "== moewb info $MODEL"
"$MOEWB" info "$MODEL"
echo
echo "== moewb pipeline: calibrate -> plan (uniform / frequency / budget at 3 bits) -> GPTQ -> evaluate"
"$MOEWB" pipeline "$MODEL" --calib "$CORPUS/calib.jsonl" --samples "$SAMPLES" --seq-len 256 \
  --strategy uniform,frequency,budget --bits 3 --method gptq --group-size 128 \
  --ppl "$EVAL" --tasks "$TASKS/demo_hellaswag.jsonl" \
  --tasks "$TASKS/demo_winogrande.jsonl" --tasks "$TASKS/demo_lambada.jsonl" \
  --task-limit "$TASK_LIMIT" --work "$OUT/pipeline"
echo
echo "== moewb stats show (routing of the calibration run)"
"$MOEWB" stats show "$OUT/pipeline/stats.h5"
echo
echo "== moewb stats specialization (how strongly each domain's tokens prefer particular experts)"
"$MOEWB" stats specialization "$OUT/pipeline/stats.h5"
echo
echo "== moewb plan show (the budget plan: bits where the measured quantization errors cost most)"
"$MOEWB" plan show "$OUT/pipeline/plan-budget-3.json" --model "$MODEL"
