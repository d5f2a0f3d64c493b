#!/usr/bin/env bash
# Checks that two moewb builds produce the same results on the demo model (for refactorings that
# must not change behaviour, #21): the pipeline (calibrate -> plans of three strategies -> GPTQ ->
# perplexity), then fake-quant, GPTQ and GGUF exports of one plan and the perplexity of the GPTQ
# checkpoint, each run with both binaries; scripts/compare_outputs.py then compares every file
# (timestamps and durations excepted) and the printed perplexities.
#   scripts/check_identical.sh OLD_MOEWB NEW_MOEWB [WORK_DIR] [ADDED_KEYS]
# ADDED_KEYS (comma-separated): JSON keys and table columns the new build adds on purpose
# (scripts/compare_outputs.py --added); what the old build wrote must still be equal.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OLD="$1" NEW="$2"
WORK="${3:-$(mktemp -d /tmp/moewb-identical-XXXXXX)}"
MODEL="$ROOT/datasets/models/moewb-mixtral-8e-v2"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"
head -c 6000 "$ROOT/datasets/corpus-v2/eval/python.txt" > "$WORK/eval.txt"
head -c 6000 "$ROOT/datasets/corpus-v2/eval/licenses.txt" >> "$WORK/eval.txt"

run_all() { # BINARY OUT
  local m="$1" out="$2"
  rm -rf "$out"; mkdir -p "$out"
  "$m" pipeline "$MODEL" --calib "$ROOT/datasets/corpus-v2/calib.jsonl" --samples 16 --seq-len 128 \
    --strategy uniform,frequency,budget --bits 3 --method gptq --group-size 128 \
    --ppl "$WORK/eval.txt" --work "$out/pipeline" > "$out/pipeline.txt"
  local plan="$out/pipeline/plan-budget-3.json" q=(--calib "$ROOT/datasets/corpus-v2/calib.jsonl" --samples 16 --seq-len 128)
  "$m" quantize "$MODEL" --plan "$plan" "${q[@]}" --out "$out/fake" --format fake > /dev/null
  "$m" quantize "$MODEL" --plan "$plan" "${q[@]}" --out "$out/gptq" --format gptq > /dev/null
  "$m" quantize "$MODEL" --plan "$plan" "${q[@]}" --out "$out/model.gguf" --format gguf > /dev/null
  "$m" eval "$out/gptq" --ppl "$WORK/eval.txt" --out "$out/eval-gptq.json" | grep -i perplexity > "$out/eval-gptq.txt"
  # The printed table without its last column (seconds) and the closing time.
  grep '^|' "$out/pipeline.txt" | sed -E 's/ [0-9]+ \|$/ |/' > "$out/pipeline.table" && rm "$out/pipeline.txt"
}

# Both runs write to the same folder (paths recorded in plans and reports must match), then move.
rm -rf "$WORK/old" "$WORK/new"
echo "check_identical: old $OLD"; run_all "$OLD" "$WORK/run"; mv "$WORK/run" "$WORK/old"
echo "check_identical: new $NEW"; run_all "$NEW" "$WORK/run"; mv "$WORK/run" "$WORK/new"
/usr/bin/python3 "$ROOT/scripts/compare_outputs.py" "$WORK/old" "$WORK/new" --added "${4:-}"
