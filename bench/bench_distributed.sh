#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data-parallel calibration and GPTQ (#15): 2 ranks x 1 thread vs 1 rank x 1 thread on the same
# calibration data, on this machine over loopback (scripts/launch-local.sh). Prints the best of
# REPEATS wall times (whole command, process start included), the speedup and the bytes each rank
# handed to collectives, per decoder layer. Other processes on the machine slow single runs down
# at random; best-of-N is the honest estimate of the unloaded time.
#   bench/bench_distributed.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
repeats=${2:-3}
moewb=$build/app/cli/moewb
model=$here/datasets/models/moewb-mixtral-8e
calib=$here/datasets/corpus/calib.jsonl
samples=${SAMPLES:-32}
seqlen=${SEQ_LEN:-256}
layers=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['num_hidden_layers'])" "$model/config.json")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

cat > "$tmp/plan.json" <<'JSON'
{"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 128, "method": "gptq"}, "rules": []}
JSON

now() { date +%s.%N; }
best() { sort -g | head -1; }

# run NAME RANKS ARGS...: best wall time over the repeats; rank 0's stderr of the last run kept.
run() {
  local name=$1 ranks=$2
  shift 2
  local times=()
  for ((i = 0; i < repeats; i++)); do
    rm -rf "$tmp/out"*
    local t0 t1
    t0=$(now)
    if [ "$ranks" = 1 ]; then
      "$moewb" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"
    else
      "$here/scripts/launch-local.sh" "$ranks" "$moewb" "$@" --distributed > "$tmp/$name.out" 2> "$tmp/$name.err"
    fi
    t1=$(now)
    times+=("$(awk "BEGIN{print $t1 - $t0}")")
  done
  printf '%s\n' "${times[@]}" | best
}

bytes_per_layer() {
  local b
  b=$(grep -o 'rank 0 of [0-9]*: [0-9]* bytes' "$tmp/$1.err" | awk '{print $5}')
  awk "BEGIN{print $b / $layers}"
}

echo "model $(basename "$model") ($layers layers), $samples windows x $seqlen tokens of $(basename "$calib"), OMP_NUM_THREADS=1, best of $repeats"
cal=(calibrate "$model" --data "$calib" --samples "$samples" --seq-len "$seqlen" --dtype f32 --out "$tmp/out.h5")
c1=$(run cal1 1 "${cal[@]}")
c2=$(run cal2 2 "${cal[@]}")
printf 'calibrate: 1 rank %.2f s, 2 ranks %.2f s, speedup %.2fx, %.0f bytes per layer per rank\n' \
  "$c1" "$c2" "$(awk "BEGIN{print $c1 / $c2}")" "$(bytes_per_layer cal2)"

qua=(quantize "$model" --plan "$tmp/plan.json" --calib "$calib" --samples "$samples" --seq-len "$seqlen" --dtype f32 --out "$tmp/out-q")
q1=$(run q1 1 "${qua[@]}")
q2=$(run q2 2 "${qua[@]}")
printf 'quantize (GPTQ 4-bit g128): 1 rank %.2f s, 2 ranks %.2f s, speedup %.2fx, %.0f bytes per layer per rank\n' \
  "$q1" "$q2" "$(awk "BEGIN{print $q1 / $q2}")" "$(bytes_per_layer q2)"
# Process start (library loading) is part of every wall time above: show it once.
s=$(run start 1 --help)
printf 'process start (moewb --help): %.2f s\n' "$s"
