#!/usr/bin/env bash
# Retrains the two demo MoE models shipped in datasets/models/ (issue 5). Deterministic for the
# seed and thread count; measured times are in docs/models.md. Usage:
#   scripts/train_demo_models.sh [mixtral|qwen2moe|all] [OUT_ROOT (default datasets/models)]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOEWB="${MOEWB:-$ROOT/build/app/cli/moewb}"
# One thread per run: deterministic, and two runs can share the two cores without oversubscription.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
WHICH="${1:-all}"
OUT="${2:-$ROOT/datasets/models}"
DATA=(--tokenizer "$ROOT/datasets/tokenizer/tokenizer.json" --data "$ROOT/datasets/corpus/train.jsonl"
      --eval "$ROOT/datasets/corpus/eval.jsonl" --eval-tokens 65536 --seed 0 --force)

if [[ "$WHICH" == mixtral || "$WHICH" == all ]]; then
  "$MOEWB" train-demo --config "$ROOT/datasets/models/configs/mixtral-8e.json" "${DATA[@]}" \
    --steps 800 --batch 8 --seq-len 256 --lr 4e-3 --warmup 30 --snapshot-every 100 --aux-coef 0.01 \
    --out "$OUT/moewb-mixtral-8e"
fi
if [[ "$WHICH" == qwen2moe || "$WHICH" == all ]]; then
  "$MOEWB" train-demo --config "$ROOT/datasets/models/configs/qwen2moe-16e.json" "${DATA[@]}" \
    --steps 800 --batch 8 --seq-len 256 --lr 4e-3 --warmup 30 --snapshot-every 100 --aux-coef 0.01 \
    --out "$OUT/moewb-qwen2moe-16e"
fi
