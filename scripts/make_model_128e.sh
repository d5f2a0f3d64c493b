#!/usr/bin/env bash
# A tiny random Qwen3-MoE-shaped model with 128 experts (top-8, 8 layers, hidden 32) and its
# calibration statistics, for looking at the workbench at a real model's expert count (the
# screenshots in docs/user-guide.md, scripts/screenshots.sh). Random weights: the routing is spread
# over all experts, no expert is meaningful. Deterministic (seed 0).
#
#   scripts/make_model_128e.sh [OUT_DIR]     (default build/models/qwen3moe-128e)
# writes OUT_DIR/ (config.json, model.safetensors, tokenizer.json) and OUT_DIR.stats.h5
# (moewb calibrate on the demo calibration set, corpus v2's 13 domains: 64 random windows of
# 256 tokens).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"
OUT="${1:-$BUILD/models/qwen3moe-128e}"
MOEWB="$BUILD/app/cli/moewb"
[ -x "$MOEWB" ] || { echo "make_model_128e: build the CLI first ($MOEWB)" >&2; exit 1; }

if [ ! -f "$OUT/config.json" ]; then
  /usr/bin/python3 "$ROOT/tests/reference/gen_random_model.py" qwen3_moe "$OUT" --tiny --layers 8 \
    --experts 128 --top-k 8 --seed 0
fi
if [ ! -f "$OUT.stats.h5" ]; then
  "$MOEWB" calibrate "$OUT" --data "$ROOT/datasets/corpus-v2/calib.jsonl" --samples 64 --seq-len 256 \
    --random-windows --seed 0 --out "$OUT.stats.h5"
fi
echo "model: $OUT"
echo "stats: $OUT.stats.h5"
