#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# moewb's GGUF budget against llama.cpp's own pipeline at the same file size (#26, docs/export-gguf.md,
# "Against llama-quantize with llama-imatrix"):
#
#   scripts/gguf_vs_llama.sh MODEL_DIR CALIB.jsonl HELDOUT.txt LLAMA_BIN_DIR OUT_DIR
#
# 1. the F32 GGUF of MODEL_DIR (moewb quantize --format gguf --gguf-type f32);
# 2. moewb calibrate --fisher and llama-imatrix on the same text (CALIB's "text" fields joined by
#    newlines), SAMPLES windows of SEQ_LEN tokens each;
# 3. llama-quantize --imatrix at Q4_K_M and Q3_K_M; S = each file's size;
# 4. moewb plan --strategy budget --target gguf --bytes S with each cost model (fisher, proxy; token_embd
#    Q3_K at the Q3_K_M size, as llama's mix), moewb quantize --format gguf --stats; the presets
#    gguf-q4_k_m / gguf-q3_k_m with the same stats;
# 5. moewb eval FILE --kld-ref MODEL_DIR --ppl HELDOUT for every file, then scripts/paired_kld.py
#    of each moewb file against llama's of its size class (table on stdout).
# Environment: MOEWB (default build/app/cli/moewb), SAMPLES (48), SEQ_LEN (256), CTX (256).
# Files already in OUT_DIR are kept, so an interrupted run continues where it stopped.
set -euo pipefail
[[ $# -eq 5 ]] || { sed -n '3,18p' "$0"; exit 2; }
model=$(realpath "$1") calib=$(realpath "$2") heldout=$(realpath "$3") llama=$(realpath "$4") out=$5
here=$(cd "$(dirname "$0")" && pwd)
moewb=${MOEWB:-$here/../build/app/cli/moewb}
samples=${SAMPLES:-48} seqlen=${SEQ_LEN:-256} ctx=${CTX:-256}
mkdir -p "$out"
cd "$out"
run() { echo "+ $*" >&2; "$@"; }
[ -f p16.json ] || echo '{"format": "moewb-plan", "version": 1, "defaults": {"bits": 16}}' > p16.json
[ -f f32.gguf ] || run "$moewb" quantize "$model" --plan p16.json --format gguf --gguf-type f32 --out f32.gguf >/dev/null
[ -f calib.txt ] || /usr/bin/python3 -c 'import json, sys
print("\n".join(json.loads(l)["text"] for l in open(sys.argv[1]) if l.strip()), end="")' "$calib" > calib.txt
[ -f stats.h5 ] || run "$moewb" calibrate "$model" --data "$calib" --samples "$samples" --seq-len "$seqlen" \
  --random-windows --seed 1 --fisher --out stats.h5 >/dev/null
[ -f llama.imatrix.gguf ] || run "$llama/llama-imatrix" -m f32.gguf -f calib.txt -c "$seqlen" -b "$seqlen" \
  --chunks "$samples" -t 1 -o llama.imatrix.gguf > imatrix.log 2>&1
files=()
for Q in Q4_K_M Q3_K_M; do
  q=$(echo $Q | tr A-Z a-z)
  [ -f llama-$Q.gguf ] || run "$llama/llama-quantize" --imatrix llama.imatrix.gguf f32.gguf llama-$Q.gguf $Q 1 \
    > quant-$Q.log 2>&1
  S=$(stat -c %s llama-$Q.gguf)
  te=q4_k; [ $Q = Q3_K_M ] && te=q3_k
  for c in fisher proxy; do
    [ -f $c-$Q.gguf ] && continue
    run "$moewb" plan "$model" --stats stats.h5 --strategy budget --target gguf --bytes "$S" --token-embd-type $te \
      --cost-model $c --errors errors-$c.json --out plan-$c-$Q.json >/dev/null
    run "$moewb" quantize "$model" --plan plan-$c-$Q.json --format gguf --stats stats.h5 --out $c-$Q.gguf >/dev/null
  done
  if [ ! -f preset-$Q.gguf ]; then
    run "$moewb" plan "$model" --strategy gguf-$q --out plan-preset-$Q.json >/dev/null
    run "$moewb" quantize "$model" --plan plan-preset-$Q.json --format gguf --stats stats.h5 --out preset-$Q.gguf \
      >/dev/null 2>&1
  fi
  files+=(llama-$Q fisher-$Q proxy-$Q preset-$Q)
done
for f in "${files[@]}"; do
  [ -f $f.eval.json ] || run "$moewb" eval $f.gguf --kld-ref "$model" --ppl "$heldout" --ctx "$ctx" \
    --out $f.eval.json > $f.eval.txt 2>&1
done
printf '| file | bytes | mean KLD | Δ KLD vs llama [95 %%] |\n|---|---|---|---|\n'
for f in "${files[@]}"; do
  kld=$(/usr/bin/python3 -c 'import json, sys; print("%.6f" % json.load(open(sys.argv[1]))["perplexity"][0]["kld"])' \
    $f.eval.json)
  d="–"
  [[ $f == llama-* ]] || d=$(/usr/bin/python3 "$here/paired_kld.py" $f.eval.json llama-${f#*-}.eval.json)
  echo "| $f | $(stat -c %s $f.gguf) | $kld | $d |"
done
