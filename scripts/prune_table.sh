#!/usr/bin/env bash
# The table of docs/pruning.md: perplexity of the demo models on the held-out demo text (as
# scripts/demo.sh builds it, EVAL_BYTES per domain) after pruning with each method at 50 %
# unstructured and 2:4, with and without the shared experts excluded (Qwen2-MoE only: Mixtral has
# none), alone and with 4-bit GPTQ (group 128) of the survivors; plus the dense and 4-bit-only rows.
# Prints one markdown row per run. MOEWB_BUILD_DIR, EVAL_BYTES, SAMPLES, SEQ_LEN override the sizes,
# MODELS the demo models to run (names under datasets/models/; default the two v2 demos
# moewb-mixtral-8e-v2 moewb-qwen3moe-64e-v2; moewb-qwen2moe-8e-v2 adds the shared-expert rows),
# HEADER=0 leaves out the table header. Each model is evaluated and calibrated on datasets/corpus-v2
# (the corpus of the v2 demos); CORPUS=DIR uses another one.
# Calibration windows are drawn at random (--random-windows --seed SEED, default 0) so that every
# domain is covered: calib.jsonl is ordered by domain and its first SAMPLES x SEQ_LEN tokens are one
# domain (scripture); RANDOM_WINDOWS=0 takes the first windows (the protocol of the 2026-11-30 table).
# "--exclude-shared" rows are run for the models with a shared expert (Qwen2-MoE).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"
MOEWB="$BUILD/app/cli/moewb"
EVAL_BYTES="${EVAL_BYTES:-3000}" SAMPLES="${SAMPLES:-32}" SEQ_LEN="${SEQ_LEN:-256}"
OUT="${PRUNE_TABLE_DIR:-$BUILD/prune-table}"
mkdir -p "$OUT"
WINDOWS=(--random-windows --seed "${SEED:-0}")
if [ "${RANDOM_WINDOWS:-1}" = 0 ]; then WINDOWS=(); fi
# The held-out text of a corpus: the first EVAL_BYTES bytes of every domain's evaluation file, cut at a
# line end (as scripts/demo.sh builds it).
source "$ROOT/scripts/eval_text.sh"
eval_text() {
  local out="$OUT/eval-mixed-$(basename "$1")-$EVAL_BYTES.txt"
  mixed_eval_text "$1" "$EVAL_BYTES" "$out"
  echo "$out"
}

ppl() { "$MOEWB" eval "$1" --ppl "$EVAL" | awk '/^perplexity:/ {print $2}'; }
sparsity() { /usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"].get("pruning"); print("%.3f" % t["achieved_sparsity"] if t else "0")' "$1/moewb_quant_report.json"; }

if [ "${HEADER:-1}" = 1 ]; then
  echo "| model | method | pattern | shared experts | quantization | achieved sparsity (pruned linears) | ppl |"
  echo "|---|---|---|---|---|---|---|"
fi
for name in ${MODELS:-moewb-mixtral-8e-v2 moewb-qwen3moe-64e-v2}; do
  MODEL="$ROOT/datasets/models/$name"
  corpus="${CORPUS:-$ROOT/datasets/corpus-v2}"
  EVAL="$(eval_text "$corpus")"
  CALIB=(--calib "$corpus/calib.jsonl" --samples "$SAMPLES" --seq-len "$SEQ_LEN" "${WINDOWS[@]}")
  echo "| $name | dense | - | - | - | 0 | $(ppl "$MODEL") |"
  printf '{"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 128, "method": "gptq"}}\n' > "$OUT/q4-$name.json"
  "$MOEWB" quantize "$MODEL" --plan "$OUT/q4-$name.json" "${CALIB[@]}" --out "$OUT/$name-q4" > /dev/null
  echo "| $name | none | - | - | GPTQ 4-bit | 0 | $(ppl "$OUT/$name-q4") |"
  rm -rf "$OUT/$name-q4"
  shared_opts=("")
  if grep -q '"shared_expert_intermediate_size": *[1-9]' "$MODEL/config.json"; then shared_opts=("" "--exclude-shared"); fi
  for method in magnitude wanda sparsegpt; do
    for pat in "--sparsity 0.5" "--pattern 2:4"; do
      for ex in "${shared_opts[@]}"; do
        for bits in 16 4; do
          tag="$name-$method-${pat##* }-${ex:-all}-$bits"; tag="${tag//:/_}"
          # shellcheck disable=SC2086
          "$MOEWB" prune "$MODEL" --method "$method" $pat $ex --bits "$bits" "${CALIB[@]}" --out "$OUT/$tag" > /dev/null
          echo "| $name | $method | ${pat##* } | $([ -n "$ex" ] && echo dense || echo pruned) | $([ "$bits" = 4 ] && echo "GPTQ 4-bit" || echo -) | $(sparsity "$OUT/$tag") | $(ppl "$OUT/$tag") |"
          rm -rf "$OUT/$tag"
        done
      done
    done
  done
done
