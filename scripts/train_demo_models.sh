#!/usr/bin/env bash
# Trains the demo MoE models. Deterministic for the seed, thread count and precision; measured
# times and the plan are in docs/models.md. Usage:
#   scripts/train_demo_models.sh MODEL [OUT_ROOT] [extra train-demo options...]
#
# MODEL (issue 22 retraining, corpus v2, v2 tokenizer at vocab 4096, two data-parallel workers,
# see docs/models.md "Retraining plan"; the demo models shipped in datasets/models/):
#   mixtral-v2 | qwen2moe-v2 | qwen3moe-v2 | all (the three in that order)
# (The v1 recipes of issue 5 — corpus v1, one thread, 800 steps — went with the v1 models, which
# are no longer shipped; docs/models.md keeps their numbers as history.)
#
# The v2 runs stop with a training-state snapshot after MAX_SECONDS (default 9000 = 2.5 h) of
# training and write OUT_ROOT/<model> as a usable (not yet annealed) model; running the same
# command again resumes from OUT_ROOT/<model>.state, so a run longer than one session is split
# across sessions with byte-identical results. Snapshots are also written every 500 steps, so a
# killed session loses at most 500 steps. Corpus v2 is built into $CORPUS_V2 (default
# /work/corpus-v2) when its manifest is missing (installing datasets/packages-v2.txt first), and
# the v2 tokenizer into $TOKENIZER_V2 (default /work/tokenizer-v2/tokenizer.json).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOEWB="${MOEWB:-$ROOT/build/app/cli/moewb}"
WHICH="${1:-}"
OUT="${2:-$ROOT/datasets/models}"
shift $(( $# > 2 ? 2 : $# ))
EXTRA=("$@")

CORPUS_V2="${CORPUS_V2:-/work/corpus-v2}"
TOKENIZER_V2="${TOKENIZER_V2:-/work/tokenizer-v2/tokenizer.json}"
corpus_v2() {
  if [[ ! -f "$CORPUS_V2/manifest.json" ]]; then
    missing=()
    for p in $(grep -v '^#' "$ROOT/datasets/packages-v2.txt"); do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
      echo "train_demo_models: installing ${missing[*]}" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
    /usr/bin/python3 "$ROOT/datasets/build_corpus_v2.py" "$CORPUS_V2" --seed 0 >&2
  fi
  # the v2 BPE at vocab 4096 (docs/models.md: why 4096); deterministic, ~1.5 min
  if [[ ! -f "$TOKENIZER_V2" ]]; then
    /usr/bin/python3 "$ROOT/datasets/train_bpe.py" "$CORPUS_V2/train.jsonl" "$TOKENIZER_V2" --vocab 4096 >&2
  fi
}

# v2: the same command starts or resumes (the options must not change between sessions).
v2() {
  local name="$1" config="$2" steps="$3"
  corpus_v2
  local state="$OUT/$name.state" resume=()
  if [[ -f "$OUT/$name/training_log.json" ]] && /usr/bin/python3 -c \
      'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["steps_done"] == int(sys.argv[2]) else 1)' \
      "$OUT/$name/training_log.json" "$steps"; then
    echo "train_demo_models: $OUT/$name is complete ($steps steps)" >&2
    return 0
  fi
  if compgen -G "$state/step-*" >/dev/null; then
    resume=(--resume "$state")
  elif [[ -e "$OUT/$name" ]]; then
    echo "train_demo_models: $OUT/$name exists but $state has no snapshot; remove it to start over" >&2
    exit 1
  fi
  "$MOEWB" train-demo --config "$ROOT/datasets/models/configs/$config" \
    --tokenizer "$TOKENIZER_V2" --data "$CORPUS_V2/train.jsonl" \
    --eval "$CORPUS_V2/eval.jsonl" --eval-tokens 0 --seed 0 --workers "${WORKERS:-2}" \
    --steps "$steps" --batch 16 --seq-len 256 --lr 3e-3 --min-lr-ratio 0.1 --warmup 200 \
    --aux-coef 0.01 --log-every 50 --snapshot-every 500 --max-seconds "${MAX_SECONDS:-9000}" \
    --state "$state" --out "$OUT/$name" "${resume[@]}" "${EXTRA[@]}"
}

# steps × 16 × 256 tokens: 5.8, 4.7 and 3.0 tokens per parameter (docs/models.md)
mixtral_v2() { v2 moewb-mixtral-8e-v2 mixtral-8e-v2.json "${STEPS:-8000}"; }
qwen2moe_v2() { v2 moewb-qwen2moe-8e-v2 qwen2moe-8e-v2.json "${STEPS:-7000}"; }
qwen3moe_v2() { v2 moewb-qwen3moe-64e-v2 qwen3moe-64e-v2.json "${STEPS:-6500}"; }

case "$WHICH" in
  mixtral-v2) mixtral_v2 ;;
  qwen2moe-v2) qwen2moe_v2 ;;
  qwen3moe-v2) qwen3moe_v2 ;;
  all) mixtral_v2; qwen2moe_v2; qwen3moe_v2 ;;
  *) echo "usage: $0 mixtral-v2|qwen2moe-v2|qwen3moe-v2|all [OUT_ROOT] [train-demo options...]" >&2; exit 2 ;;
esac
