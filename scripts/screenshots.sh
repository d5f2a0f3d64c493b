#!/usr/bin/env bash
# Regenerates the pictures of docs/user-guide.md with `moewb-gui --screenshot` (offscreen, no display
# needed): the main window and each view of the v2 demo Mixtral (8 experts, 2 layers, 13 domains),
# the v2 Qwen2-MoE demo (8 experts and a shared expert) and a generated 128-expert model (scripts/make_model_128e.sh), the window at a
# laptop's 1366 × 768, the expert coverage of small quantize runs on both, the Results view of a `moewb pipeline` run, and the allocation editor.
#
#   scripts/screenshots.sh [OUT_DIR]          (default docs/screenshots)
# Environment: MOEWB_BUILD_DIR (default build/); MOEWB_SHOT_RESULTS=results.json to use an existing
# pipeline run instead of running the small one below (about a minute on two cores);
# MOEWB_SHOT_JOBS=1 also re-runs tests/gui's scripted workflow for jobs.png.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"
OUT="${1:-$ROOT/docs/screenshots}"
WORK="$BUILD/screenshots"
GUI="$BUILD/app/gui/moewb-gui"
MOEWB="$BUILD/app/cli/moewb"
for exe in "$GUI" "$MOEWB" "$BUILD/app/alloc_editor_demo/moewb-alloc-editor"; do
  [ -x "$exe" ] || { echo "screenshots: build $exe first" >&2; exit 1; }
done
mkdir -p "$OUT" "$WORK"
export QT_QPA_PLATFORM=offscreen

MIX="$ROOT/datasets/models/moewb-mixtral-8e-v2"
MIX_STATS="$ROOT/datasets/stats/moewb-mixtral-8e-v2.stats.h5" # ships the Fisher diagonal
CORPUS="$ROOT/datasets/corpus-v2"
QWEN="$ROOT/datasets/models/moewb-qwen2moe-8e-v2"
QWEN_STATS="$ROOT/datasets/stats/moewb-qwen2moe-8e-v2.stats.h5"
M128="$BUILD/models/qwen3moe-128e"
bash "$ROOT/scripts/make_model_128e.sh" "$M128"

shot() { # FILE [moewb-gui arguments...]
  local file="$1"
  shift
  "$GUI" --screenshot "$OUT/$file" "$@"
}

# The v2 demo Mixtral: the window (layer 1, expert 6 selected: the code expert — python, rust, java —
# of the specialised second layer), each view alone, the laptop size.
shot main-window.png "$MIX" --stats "$MIX_STATS" --select 1:6
shot main-window-1366x768.png --size 1366x768 "$MIX" --stats "$MIX_STATS" --select 1:6
shot routing-heatmap.png --view heatmap --size 1000x640 "$MIX" --stats "$MIX_STATS" --select 1:6
shot correlation.png --view correlation --size 720x640 "$MIX" --stats "$MIX_STATS" --select 1:6
shot domains.png --view domains --size 760x560 "$MIX" --stats "$MIX_STATS" --select 1:6
shot outliers.png --view outliers --size 1100x520 "$MIX" --stats "$MIX_STATS" --select 1

# The v2 Qwen2-MoE demo: 8 experts, top-2, a shared expert (layer 1, expert 5 selected).
shot main-window-qwen2moe-8e-v2.png "$QWEN" --stats "$QWEN_STATS" --select 1:5

# 128 experts: the window, the matrices (square cells, thinned labels) and the aggregated outliers.
shot main-window-qwen3moe-128e.png "$M128" --stats "$M128.stats.h5" --select 3:77
shot correlation-128e.png --view correlation --size 900x860 "$M128" --stats "$M128.stats.h5" --select 3:77
shot domains-128e.png --view domains --size 1000x420 "$M128" --stats "$M128.stats.h5" --select 3:77
shot outliers-128e.png --view outliers --size 1100x520 "$M128" --stats "$M128.stats.h5" --select 3:77

# Expert coverage (#25): the calibration stats alone, and a quantize run with too little calibration
# data for every expert (2 windows of 64 tokens), balanced with next-choices: its RTN fallbacks and
# the experts balancing lifted to GPTQ.
coverage_report() { # MODEL OUT_DIR CALIB: a next-choices quantize report of a 3-bit uniform plan
  "$MOEWB" plan "$1" --strategy uniform --bits 3 --out "$2.plan.json" > /dev/null
  OMP_NUM_THREADS=1 "$MOEWB" quantize "$1" --plan "$2.plan.json" --calib "$3" \
    --samples 2 --seq-len 64 --balance-experts next-choices --out "$2" --force > /dev/null
}
coverage_report "$MIX" "$WORK/coverage-8e-v2" "$CORPUS/calib.jsonl"
coverage_report "$M128" "$WORK/coverage-128e" "$CORPUS/calib.jsonl" # the data it was calibrated on
shot coverage-stats.png --view coverage --size 760x300 "$MIX" --stats "$MIX_STATS" --select 1:6
shot coverage.png --view coverage --size 760x300 "$MIX" --stats "$MIX_STATS" --select 1:6 \
  --quant-report "$WORK/coverage-8e-v2/moewb_quant_report.json"
shot coverage-128e.png --view coverage --size 1000x420 "$M128" --stats "$M128.stats.h5" --select 3:77 \
  --quant-report "$WORK/coverage-128e/moewb_quant_report.json"

# Results: a small pipeline run on the demo Mixtral (its KLD columns appear once the pipeline
# writes them, #23).
RESULTS="${MOEWB_SHOT_RESULTS:-$WORK/pipeline-v2/results.json}"
if [ ! -f "$RESULTS" ]; then
  EVAL="$WORK/eval.txt"
  head -c 3000 "$CORPUS/eval/python.txt" > "$EVAL"
  "$MOEWB" pipeline "$MIX" --calib "$CORPUS/calib.jsonl" --samples 16 --seq-len 256 \
    --strategy uniform,frequency,budget --bits 2.5,3,4 --ppl "$EVAL" --work "$WORK/pipeline-v2"
fi
shot results.png --view results --size 1500x640 "$MIX" --results "$RESULTS"

# The allocation editor next to the heat map (its own demo: solves, gives two experts 8 bits, drops one),
# on the shipped stats, which have the Fisher (#27): the gauge's predicted KLD, the heat map coloured
# by the experts' predicted cost at 2 bits.
"$BUILD/app/alloc_editor_demo/moewb-alloc-editor" "$MIX" --stats "$MIX_STATS" --strategy frequency --bits 3 \
  --heatmap-cost 2 --screenshot "$OUT/allocation-editor.png"

if [ "${MOEWB_SHOT_JOBS:-0}" = 1 ]; then
  MOEWB_SCREENSHOT_DIR="$OUT" OMP_NUM_THREADS=1 "$BUILD/tests/tst_guiworkflow" scriptedWorkflow
fi
echo "screenshots in $OUT"
