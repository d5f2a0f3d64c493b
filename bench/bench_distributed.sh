#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data-parallel calibration and GPTQ (#15): 2 ranks x 1 thread vs 1 rank x 1 thread on the same
# calibration data, on this machine over loopback. For each configuration, the best of REPEATS:
#   wall  the whole command (process start, data loading and rendezvous included), as measured;
#   run   the engine's own time as rank 0 prints it (after start-up and rendezvous: calibrate's
#         "in X s", quantize's "time X s"), wall clock;
#   cpu   user+sys CPU seconds of the busiest rank: the wall time it would take with one idle core
#         per rank. On a machine shared with other jobs the wall times are skewed by whoever else
#         runs; the CPU times are not, so all three speedups are printed.
# and the bytes each rank handed to collectives, per decoder layer.
#   bench/bench_distributed.sh [BUILD_DIR] [REPEATS]
# SAMPLES, SEQ_LEN override the data size; ONLY=calibrate or ONLY=quantize runs one of the two.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
repeats=${2:-3}
moewb=$build/app/cli/moewb
model=$here/datasets/models/moewb-mixtral-8e-v2
calib=$here/datasets/corpus-v2/calib.jsonl
samples=${SAMPLES:-64}
seqlen=${SEQ_LEN:-256}
layers=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['num_hidden_layers'])" "$model/config.json")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

cat > "$tmp/plan.json" <<'JSON'
{"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 128, "method": "gptq"}, "rules": []}
JSON

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# once NAME RANKS ARGS...: prints "wall cpu run" of one run (cpu: the busiest rank's user+sys; run:
# the engine time rank 0 printed).
once() {
  local name=$1 ranks=$2
  shift 2
  rm -rf "$tmp/out"*
  local port extra=()
  port=$(free_port)
  local t0 t1
  t0=$(date +%s.%N)
  for ((r = 0; r < ranks; r++)); do
    [ "$ranks" -gt 1 ] && extra=(--distributed --rank "$r" --world-size "$ranks" --master-port "$port")
    ( TIMEFORMAT='%U %S'; { time "$moewb" "$@" "${extra[@]}" > "$tmp/$name.$r.out" 2> "$tmp/$name.$r.err"; } 2> "$tmp/$name.$r.time" ) &
  done
  wait
  t1=$(date +%s.%N)
  local cpu
  cpu=$(cat "$tmp/$name".*.time | awk '{c = $1 + $2; if (c > m) m = c} END {print m}')
  local run
  run=$(grep -ho -e 'tokens in [0-9.]* s' -e 'time [0-9.]* s' "$tmp/$name.0.out" | awk '{print $(NF-1)}')
  awk "BEGIN{print $t1 - $t0, $cpu, ${run:-0}}"
}

# best NAME RANKS ARGS...: "wall cpu run", each the minimum over the repeats.
best() {
  for ((i = 0; i < repeats; i++)); do once "$@"; done \
    | awk 'NR == 1 || $1 < w {w = $1} NR == 1 || $2 < c {c = $2} NR == 1 || $3 < r {r = $3} END {print w, c, r}'
}

bytes_per_layer() {
  local b
  b=$(grep -ho 'rank 0 of [0-9]*: [0-9]* bytes' "$tmp/$1".0.err | awk '{print $5}')
  awk "BEGIN{print $b / $layers}"
}

report() {
  local what=$1 one=$2 two=$3 name=$4
  read -r w1 c1 r1 <<< "$one"
  read -r w2 c2 r2 <<< "$two"
  echo "$what (1 rank vs 2 ranks):"
  printf '  wall %6.2f s vs %6.2f s: %.2fx | run %6.2f s vs %6.2f s: %.2fx | cpu of the busiest rank %6.2f s vs %6.2f s: %.2fx\n' \
    "$w1" "$w2" "$(awk "BEGIN{print $w1 / $w2}")" "$r1" "$r2" "$(awk "BEGIN{print $r1 / $r2}")" \
    "$c1" "$c2" "$(awk "BEGIN{print $c1 / $c2}")"
  printf '  %.0f bytes per layer handed to collectives by each rank\n' "$(bytes_per_layer "$name")"
}

echo "model $(basename "$model") ($layers layers), $samples windows x $seqlen tokens of $(basename "$calib"), OMP_NUM_THREADS=1, best of $repeats"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(getconf _NPROCESSORS_ONLN) cores"
only=${ONLY:-all}
cal=(calibrate "$model" --data "$calib" --samples "$samples" --seq-len "$seqlen" --dtype f32 --out "$tmp/out.h5")
[ "$only" = quantize ] || report "calibrate" "$(best cal1 1 "${cal[@]}")" "$(best cal2 2 "${cal[@]}")" cal2
qua=(quantize "$model" --plan "$tmp/plan.json" --calib "$calib" --samples "$samples" --seq-len "$seqlen" --dtype f32 --out "$tmp/out-q")
[ "$only" = calibrate ] || report "quantize, GPTQ 4-bit g128" "$(best q1 1 "${qua[@]}")" "$(best q2 2 "${qua[@]}")" q2
read -r ws cs _ <<< "$(best start 1 --help)"
printf 'process start (moewb --help): wall %.2f s, cpu %.2f s (in every number above)\n' "$ws" "$cs"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
