#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Does the budget cost model rank what quantization costs? (#24, docs/allocation.md#validation)
#
#   scripts/validate_cost_model.sh MODEL_DIR CALIB.jsonl HELDOUT.txt OUT_DIR [GROUPS=32] [EVAL_CHARS=40000]
#
# 1. moewb calibrate --fisher on 64 random windows of 256 tokens of CALIB (seed 0);
# 2. the budget error tables of both cost models (moewb plan --cost-model fisher|proxy --errors);
# 3. GROUPS linear groups (attention blocks, single attention linears, routed experts drawn with seed 0,
#    shared experts), each quantized alone to 2-bit RTN with everything else unquantized, and its KL
#    divergence from the unquantized model measured by moewb eval --plan --kld-ref on EVAL_CHARS
#    characters of HELDOUT (16 evenly spaced pieces);
# 4. the Spearman rank correlation of each model's predicted cost with the measured KLD
#    (OUT_DIR/validation.json, table on stdout).
# Environment: MOEWB (default build/app/cli/moewb), SAMPLES (64), SEQ_LEN (256). Steps already done
# (files present in OUT_DIR) are skipped, so an interrupted run continues where it stopped.
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n '3,17p' "$0"; exit 2; }
model=$1 calib=$2 heldout=$3 out=$4 groups=${5:-32} chars=${6:-40000}
here=$(cd "$(dirname "$0")" && pwd)
moewb=${MOEWB:-$here/../build/app/cli/moewb}
py="/usr/bin/python3 $here/validate_cost_model.py"
mkdir -p "$out/kld"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

[[ -f $out/stats.h5 ]] || "$moewb" calibrate "$model" --data "$calib" --samples "${SAMPLES:-64}" \
    --seq-len "${SEQ_LEN:-256}" --random-windows --seed 0 --fisher --out "$out/stats.h5" | grep -v '^domains:'
for m in fisher proxy; do
    [[ -f $out/$m.json ]] || "$moewb" plan "$model" --stats "$out/stats.h5" --strategy budget --bits 3 \
        --cost-model $m --errors "$out/$m.json" --out "$out/budget-$m.plan.json" >/dev/null
done
n=$($py groups "$out/fisher.json" "$out/proxy.json" "$out" --groups "$groups")
$py excerpt "$heldout" "$out/heldout.txt" --chars "$chars"
for ((i = 0; i < n; i++)); do
    [[ -f $out/kld/$i.json ]] && continue
    echo "group $((i + 1))/$n" >&2
    if ! "$moewb" eval "$model" --plan "$out/plans/$i.json" --kld-ref "$model" --ppl "$out/heldout.txt" \
        --json --out "$out/kld/$i.json.tmp" >/dev/null 2>"$out/kld/$i.log"; then
        tail -3 "$out/kld/$i.log" >&2
        exit 1
    fi
    mv "$out/kld/$i.json.tmp" "$out/kld/$i.json"
done
$py report "$out"
