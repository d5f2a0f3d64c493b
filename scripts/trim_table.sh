#!/usr/bin/env bash
# The tables of docs/trimming.md: parameters, bytes, perplexity (bf16 and after 4-bit RTN) and forward
# speed of a demo model before and after Expert Drop (25 % and 50 % of the experts per layer), Layer
# Drop (1 and 2 MoE sub-layers) and Block Drop (1 block), selected from one stats file.
#   stats:  moewb calibrate MODEL --data CORPUS/calib.jsonl --samples SAMPLES --seq-len SEQ_LEN
#           --random-windows --seed SEED (default 0; calib.jsonl is ordered by domain, so its first
#           windows would be one domain; RANDOM_WINDOWS=0 takes the first windows)
#   text:   the first EVAL_BYTES bytes of every CORPUS/eval/*.txt, cut at a line end (scripts/demo.sh)
#   ppl:    moewb eval DIR --ppl TEXT (ctx = max_position_embeddings)
#   +4 bit: moewb quantize DIR --plan q4.json --format fake (RTN, 4 bits, group 128), then eval
#   speed:  tokens / wall-clock seconds of the whole `moewb eval DIR --ppl TEXT` command (load,
#           tokenize, forward), the best of RUNS runs; run it with OMP_NUM_THREADS=1
# Prints one markdown table per model. MODELS (names under datasets/models/; default the two v2
# demos), CORPUS (default datasets/corpus-v2, the corpus of the v2 demos), EVAL_BYTES,
# SAMPLES, SEQ_LEN, RUNS, MOEWB_BUILD_DIR override.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"
MOEWB="$BUILD/app/cli/moewb"
EVAL_BYTES="${EVAL_BYTES:-3000}" SAMPLES="${SAMPLES:-32}" SEQ_LEN="${SEQ_LEN:-256}" RUNS="${RUNS:-3}"
OUT="${TRIM_TABLE_DIR:-$BUILD/trim-table}"
mkdir -p "$OUT"
WINDOWS=(--random-windows --seed "${SEED:-0}")
if [ "${RANDOM_WINDOWS:-1}" = 0 ]; then WINDOWS=(); fi
printf '{"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 128, "method": "rtn"}}\n' > "$OUT/q4.json"

source "$ROOT/scripts/eval_text.sh"
# eval_text CORPUS_DIR: its held-out text for this run (EVAL_BYTES per domain), path on stdout.
eval_text() {
  local out="$OUT/eval-mixed-$(basename "$1")-$EVAL_BYTES.txt"
  mixed_eval_text "$1" "$EVAL_BYTES" "$out"
  echo "$out"
}

# ppl DIR: perplexity of one run
ppl() { "$MOEWB" eval "$1" --ppl "$EVAL" | awk '/^perplexity:/ {print $2}'; }
# speed DIR: best tokens/s (tokens / whole-command wall time) of RUNS runs
speed() {
  local best=0 i t0 t1 tokens
  for i in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    tokens=$("$MOEWB" eval "$1" --ppl "$EVAL" | awk '/^tokens:/ {print $2}')
    t1=$(date +%s.%N)
    best=$(awk -v b="$best" -v n="$tokens" -v a="$t0" -v z="$t1" 'BEGIN { s = n / (z - a); print (s > b ? s : b) }')
  done
  printf '%.0f' "$best"
}
# q4ppl DIR: perplexity after 4-bit RTN (fake-quantized copy in $OUT, removed afterwards)
q4ppl() {
  "$MOEWB" quantize "$1" --plan "$OUT/q4.json" --format fake --out "$OUT/q4-model" > /dev/null
  ppl "$OUT/q4-model"
  rm -rf "$OUT/q4-model"
}
fmt() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

for name in ${MODELS:-moewb-mixtral-8e-v2 moewb-qwen3moe-64e-v2}; do
  MODEL="$ROOT/datasets/models/$name"
  corpus="${CORPUS:-$ROOT/datasets/corpus-v2}"
  EVAL="$(eval_text "$corpus")"
  STATS="$OUT/$name.stats.h5"
  [ -f "$STATS" ] || "$MOEWB" calibrate "$MODEL" --data "$corpus/calib.jsonl" --samples "$SAMPLES" \
    --seq-len "$SEQ_LEN" "${WINDOWS[@]}" --out "$STATS" > /dev/null
  E=$(/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts"))' "$MODEL/config.json")
  echo "**$name** ($(grep -c . "$EVAL") lines of text, $("$MOEWB" eval "$MODEL" --ppl "$EVAL" | awk '/^tokens:/ {print $2}') tokens)"
  echo
  echo "| variant | dropped (original indices) | params | active params | bytes | ppl | ppl +4 bit | tokens/s |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  first=1
  while IFS='|' read -r label sel; do
    dir="$OUT/$name-trim"
    rm -rf "$dir"
    # shellcheck disable=SC2086
    rep=$("$MOEWB" trim "$MODEL" --stats "$STATS" $sel --out "$dir")
    drop=$(echo "$rep" | sed -n 's/^drop: //p')
    if [ "$first" = 1 ]; then
      read -r _ _ _ p a b < <(echo "$rep" | grep '^original ')
      echo "| original | – | $(fmt "$p") | $(fmt "$a") | $(fmt "$b") | $(ppl "$MODEL") | $(q4ppl "$MODEL") | $(speed "$MODEL") |"
      first=0
    fi
    read -r _ _ _ p a b < <(echo "$rep" | grep '^trimmed ')
    echo "| $label | $drop | $(fmt "$p") | $(fmt "$a") | $(fmt "$b") | $(ppl "$dir") | $(q4ppl "$dir") | $(speed "$dir") |"
    rm -rf "$dir"
  done <<EOF
Expert Drop 25% (keep $((E * 3 / 4)))|--keep-experts $((E * 3 / 4))
Expert Drop 50% (keep $((E / 2)))|--keep-experts $((E / 2))
Layer Drop 1|--drop-layers 1
Layer Drop 2|--drop-layers 2
Block Drop 1|--drop-blocks 1
EOF
  echo
done
