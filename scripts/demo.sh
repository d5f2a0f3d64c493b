#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the demo model.
# Until the trained demo checkpoints land in datasets/ (issue 5), the demo model is a small
# random Mixtral-style checkpoint generated here by tests/reference/gen_random_model.py:
# its perplexity is that of an untrained model, but every stage runs on a real HF layout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"
bash "$ROOT/scripts/setup.sh"
MOEWB="$BUILD/app/cli/moewb"

MODEL="$ROOT/datasets/demo-mixtral"
if [ ! -f "$MODEL/config.json" ]; then
  MODEL="$BUILD/demo/random-mixtral"
  if [ ! -f "$MODEL/config.json" ]; then
    echo "demo: generating a random Mixtral-style checkpoint in $MODEL"
    /usr/bin/python3 "$ROOT/tests/reference/gen_random_model.py" mixtral "$MODEL" --seed 1 --dtype bf16
  fi
fi
TEXT="${MOEWB_DEMO_TEXT:-/usr/share/common-licenses/GPL-3}"
CODE="$ROOT/engine/model/forward.cpp"
OUT="$BUILD/demo"
mkdir -p "$OUT"

echo "== moewb info $MODEL"
"$MOEWB" info "$MODEL"
echo "== moewb eval $MODEL --ppl $TEXT"
"$MOEWB" eval "$MODEL" --ppl "$TEXT" --ctx 256 --stride 128
echo "== moewb calibrate (two labelled domains) -> $OUT/stats.h5"
"$MOEWB" calibrate "$MODEL" --domain licence="$TEXT" --domain code="$CODE" \
  --samples 128 --seq-len 256 --seed 0 --out "$OUT/stats.h5"
echo "== moewb stats show $OUT/stats.h5"
"$MOEWB" stats show "$OUT/stats.h5"
echo "== moewb plan (expert-usage frequency strategy, 3.0 bits on average) -> $OUT/plan.json"
"$MOEWB" plan "$MODEL" --stats "$OUT/stats.h5" --strategy frequency --bits 3 --out "$OUT/plan.json"
"$MOEWB" plan show "$OUT/plan.json" --model "$MODEL"
