#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An OLMoE-1B-7B-shaped model end to end, timed, with peak RSS per step (#28; docs/performance.md,
# "A 7-B-parameter MoE end to end"). Not in CI: the full model needs ~44 GB of disk; its moewb steps took 75 min on 2 cores.
#
#   scripts/bench_full_model.sh [--layers N] [--out DIR] [--keep] [--no-llama] [--llama-bin DIR]
#
# --layers N   decoder layers (default 16: 6.9 B parameters, 13.8 GB bf16); same width, e.g. 1 for a quick check
# --out DIR    work directory (default ./bench-full-model-L<N>); steps whose output exists are skipped
# --keep       keep the checkpoint, GGUF files and GPTQ directory (default: removed at the end)
# --no-llama   skip the llama.cpp peer steps
# --llama-bin  llama.cpp's build/bin (default $LLAMA_BIN, else /work/llama.cpp-new/build/bin)
# Environment: MOEWB_BUILD_DIR (default build/ of this checkout), THREADS (default nproc: OMP_NUM_THREADS of
# moewb and -t of llama.cpp), SAMPLES (64), SEQ_LEN (512), CHUNKS (32 held-out windows of CTX = 512 tokens),
# BALANCE (quant-gptq's --balance-experts, default sampled: all-tokens is 8x the routed work at 64 experts, top-8).
#
# Steps (each timed; peak RSS = the step's process's maximum resident set, from wait4, which includes the
# resident pages of mmap'd files such as the checkpoint; 'anonymous' = peak RssAnon, sampled every 0.2 s):
#   gen            scripts/gen_full_model.py: random weights, skewed router (docstring), tokenizer-v2 padded
#   calibrate      moewb calibrate, SAMPLES x SEQ_LEN tokens of datasets/corpus-v2/calib.jsonl
#   plan-budget    moewb plan --strategy budget --bits 3.5 (proxy cost model)
#   plan-q4km      moewb plan --strategy gguf-q4_k_m
#   quant-gptq     moewb quantize --format gptq with the budget plan (GPTQ on the same calibration windows,
#                  --balance-experts $BALANCE)
#   gguf-f16       moewb quantize --format gguf, every linear 16-bit (F16): llama.cpp's input
#   gguf-q4km      moewb quantize --format gguf with the Q4_K_M preset, calibrate's statistics as imatrix
#   eval-*         moewb eval --ppl --kld-ref CHECKPOINT on CHUNKS x CTX held-out tokens
#                  (--llama-chunks: llama-perplexity's windows; the first 6 KB of each datasets/corpus-v2/eval file)
#   llama-imatrix, llama-quantize (Q4_K_M), llama-ppl-f16, llama-ppl-q4km: the peer on the same files
#   speed-*        moewb eval --ppl without reference (forward tokens/s = CHUNKS x CTX / wall)
# Ends with one line per step 'step: wall s, peak RSS GiB[, counted TFLOP = GFLOP/s = % of GEMM peak]' (the peak
# measured at the start by bench/bench_gemm_peak, the FLOP model in scripts/full_model_flops.py) and 'peak RSS: X GiB'.
set -euo pipefail
die() { echo "bench_full_model.sh: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
layers=16 out= keep=0 llama=1 llama_bin=${LLAMA_BIN:-/work/llama.cpp-new/build/bin}
while [[ $# -gt 0 ]]; do
  case $1 in
    --layers) layers=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-llama) llama=0; shift ;;
    --llama-bin) llama_bin=${2:?}; shift 2 ;;
    -h|--help) sed -n '3,29p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $layers =~ ^[1-9][0-9]*$ ]] || die "--layers needs a positive integer, not '$layers'"
build=${MOEWB_BUILD_DIR:-$root/build}
moewb=$build/app/cli/moewb
[ -x "$moewb" ] || die "$moewb: not found or not executable (build moewb, or set MOEWB_BUILD_DIR)"
py=/usr/bin/python3
$py -c 'import numpy' 2>/dev/null || die "$py: numpy is missing (apt-get install python3-numpy)"
if [ $llama = 1 ]; then
  for b in llama-imatrix llama-quantize llama-perplexity; do
    [ -x "$llama_bin/$b" ] || die "$llama_bin/$b: not found (build llama.cpp, pass --llama-bin, or --no-llama)"
  done
fi
threads=${THREADS:-$(nproc)}
samples=${SAMPLES:-64} seqlen=${SEQ_LEN:-512} chunks=${CHUNKS:-32} ctx=${CTX:-512}
export OMP_NUM_THREADS=$threads
out=${out:-$PWD/bench-full-model-L$layers}
mkdir -p "$out" || die "$out: cannot create"
out=$(cd "$out" && pwd)
mkdir -p "$out/tmp"
export TMPDIR=$out/tmp  # moewb eval's KLD scratch (scored tokens x vocabulary x 4 bytes)

# ---- disk: checkpoint 2P, F16 GGUF 2P, two Q4_K_M ~0.6P each, GPTQ ~0.45P + embeddings, KLD scratch
params=$((206045184 + layers * 419561472))
need=$((params * 2 + params * 2 + params * 6 / 5 + params / 2 + 412000000 + chunks * ctx / 2 * 50304 * 4 + 2000000000))
# a resumed run: what earlier steps already wrote here is part of that total, not on top of it
done_bytes=$(du -sb "$out" | cut -f1)
need=$((need > done_bytes + 2000000000 ? need - done_bytes : 2000000000))
have=$(( $(df -Pk "$out" | awk 'NR==2 {print $4}') * 1024 ))
have_gb=$(awk -v b=$have 'BEGIN {printf "%.1f", b / 1e9}')
need_gb=$(awk -v b=$need 'BEGIN {printf "%.1f", b / 1e9}')
echo "bench: $layers layer(s), $((params / 1000000)) M parameters; disk needed ~$need_gb GB, free $have_gb GB in $out" >&2
[ $have -ge $need ] || die "$out: only $have_gb GB free, the $layers-layer run needs ~$need_gb GB (use --layers or --out)"

steps="$out/steps.tsv"  # appended to; a resumed run keeps the timings of the steps it skips
touch "$steps"
# step NAME CMD...: run CMD with stdout+stderr to NAME.log; append NAME, wall seconds, peak RSS KiB to steps.tsv
step() {
  local name=$1; shift
  echo "[$(date -u +%H:%M:%S)] $name: $*" >&2
  $py - "$out/$name.log" "$steps" "$name" "$@" <<'EOF' || die "step $name failed, see $out/$name.log"
import os, sys, time
log, steps, name, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
t = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1); os.dup2(fd, 2)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        print(f"{cmd[0]}: {e.strerror}", file=sys.stderr)
        os._exit(127)
anon = 0  # RssAnon sampled every 0.2 s: ru_maxrss also counts the mapped checkpoint's resident pages
while True:
    p, status, ru = os.wait4(pid, os.WNOHANG)
    if p:
        break
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                anon = max(anon, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.2)
wall = time.monotonic() - t
with open(steps, "a") as f:
    f.write(f"{name}\t{wall:.1f}\t{ru.ru_maxrss}\t{anon}\n")
rc = os.waitstatus_to_exitcode(status)
print(f"  {name}: {wall:.1f} s, peak RSS {ru.ru_maxrss / 2**20:.2f} GiB (anonymous {anon / 2**20:.2f}), exit {rc}",
      file=sys.stderr)
sys.exit(0 if rc == 0 else 1)
EOF
}

model=$out/model
calib=$root/datasets/corpus-v2/calib.jsonl
[ -f "$calib" ] || die "$calib: not found"
heldout=$out/heldout.txt
if [ ! -s "$heldout" ]; then
  for f in "$root"/datasets/corpus-v2/eval/*.txt; do head -c 6000 "$f"; echo; done > "$heldout"
fi
[ -s "$out/calib.txt" ] || $py -c 'import json, sys
print("\n".join(json.loads(l)["text"] for l in open(sys.argv[1]) if l.strip()), end="")' "$calib" > "$out/calib.txt"
echo '{"format": "moewb-plan", "version": 1, "defaults": {"bits": 16}}' > "$out/plan-16.json"

# ---- the GEMM peak each step's FLOP rate is compared with, measured in this run (bench/bench_gemm_peak:
# [1024 x 2048] x [2048 x 8192], the hidden size's widest product, on the same threads)
peak_bin=$build/bench/bench_gemm_peak
if [ -x "$peak_bin" ]; then
  "$peak_bin" 1024 2048 8192 5 > "$out/gemm-peak.txt" 2>&1 || echo "bench: bench_gemm_peak failed" >&2
  cat "$out/gemm-peak.txt" >&2
else
  echo "bench: $peak_bin not built: no GEMM-peak fractions" >&2
  : > "$out/gemm-peak.txt"
fi

cd "$out"
[ -f model/model.safetensors.index.json ] || step gen $py "$here/gen_full_model.py" "$model" --layers "$layers" \
  --tokenizer "$root/datasets/tokenizer-v2/tokenizer.json" --eos-id 4095
cp model/config.json config.json  # kept for scripts/project_full_model.py when the checkpoint is removed
[ -f stats.h5 ] || step calibrate "$moewb" calibrate "$model" --data "$calib" --samples "$samples" --seq-len "$seqlen" \
  --out stats.h5
[ -f plan-budget.json ] || step plan-budget "$moewb" plan "$model" --stats stats.h5 --strategy budget --bits 3.5 \
  --errors errors.json --out plan-budget.json
[ -f plan-q4km.json ] || step plan-q4km "$moewb" plan "$model" --strategy gguf-q4_k_m --out plan-q4km.json
[ -d gptq ] || step quant-gptq "$moewb" quantize "$model" --plan plan-budget.json --format gptq --calib "$calib" \
  --samples "$samples" --seq-len "$seqlen" --balance-experts "${BALANCE:-sampled}" --out gptq
[ -f f16.gguf ] || step gguf-f16 "$moewb" quantize "$model" --plan plan-16.json --format gguf --gguf-type f16 \
  --out f16.gguf
[ -f moewb-Q4_K_M.gguf ] || step gguf-q4km "$moewb" quantize "$model" --plan plan-q4km.json --format gguf \
  --stats stats.h5 --out moewb-Q4_K_M.gguf
ev=(--ppl "$heldout" --ctx "$ctx" --llama-chunks "$chunks")
[ -f gptq.eval.json ] || step eval-gptq "$moewb" eval gptq "${ev[@]}" --kld-ref "$model" --out gptq.eval.json
[ -f moewb-Q4_K_M.eval.json ] || step eval-moewb-q4km "$moewb" eval moewb-Q4_K_M.gguf --tokenizer "$model" "${ev[@]}" \
  --kld-ref "$model" --out moewb-Q4_K_M.eval.json
[ -f f16.speed.json ] || step speed-moewb-f16 "$moewb" eval f16.gguf --tokenizer "$model" "${ev[@]}" --out f16.speed.json
[ -f moewb-Q4_K_M.speed.json ] || step speed-moewb-q4km "$moewb" eval moewb-Q4_K_M.gguf --tokenizer "$model" "${ev[@]}" \
  --out moewb-Q4_K_M.speed.json
if [ $llama = 1 ]; then
  git -C "$llama_bin/../.." log -1 --format='llama.cpp commit %H (%cd)' > llama-commit.txt 2>/dev/null \
    || echo "llama.cpp commit unknown ($llama_bin)" > llama-commit.txt
  [ -f llama.imatrix.gguf ] || step llama-imatrix "$llama_bin/llama-imatrix" -m f16.gguf -f calib.txt -c "$seqlen" \
    -b "$seqlen" --chunks "$samples" -t "$threads" -o llama.imatrix.gguf
  [ -f llama-Q4_K_M.gguf ] || step llama-quantize "$llama_bin/llama-quantize" --imatrix llama.imatrix.gguf f16.gguf \
    llama-Q4_K_M.gguf Q4_K_M "$threads"
  [ -f llama-Q4_K_M.eval.json ] || step eval-llama-q4km "$moewb" eval llama-Q4_K_M.gguf --tokenizer "$model" "${ev[@]}" \
    --kld-ref "$model" --out llama-Q4_K_M.eval.json
  [ -f llama-ppl-f16.done ] || { step llama-ppl-f16 "$llama_bin/llama-perplexity" -m f16.gguf -f "$heldout" \
    -c "$ctx" -b "$ctx" --chunks "$chunks" -t "$threads" && touch llama-ppl-f16.done; }
  [ -f llama-ppl-q4km.done ] || { step llama-ppl-q4km "$llama_bin/llama-perplexity" -m llama-Q4_K_M.gguf \
    -f "$heldout" -c "$ctx" -b "$ctx" --chunks "$chunks" -t "$threads" && touch llama-ppl-q4km.done; }
fi

# ---- results
{
  echo
  [ -f llama-commit.txt ] && cat llama-commit.txt
  echo "machine: $(getconf _NPROCESSORS_ONLN) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), threads $threads," \
    "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  $py - "$out" "$chunks" "$ctx" "$samples" "$seqlen" "$here" <<'EOF'
import json, os, re, sys
out, chunks, ctx, samples, seqlen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
import full_model_flops
tok = chunks * ctx
walls, rss, anon = {}, {}, {}  # the last entry of each step (a resumed run appends)
for line in open(os.path.join(out, "steps.tsv")):
    f = line.rstrip("\n").split("\t")
    walls[f[0]], rss[f[0]], anon[f[0]] = float(f[1]), int(f[2]), int(f[3]) if len(f) > 3 else None
def ev(path):
    p = os.path.join(out, path)
    if not os.path.exists(p):
        return None
    return json.load(open(p))["perplexity"][0]
print("| file | bytes | PPL | mean KLD vs bf16 | same top token |")
print("|---|---|---|---|---|")
for name, f in (("bf16 checkpoint (as F16 GGUF)", "f16.speed.json"), ("GPTQ, budget 3.5 bits", "gptq.eval.json"),
                ("moewb GGUF Q4_K_M", "moewb-Q4_K_M.eval.json"), ("llama-quantize Q4_K_M", "llama-Q4_K_M.eval.json")):
    r = ev(f)
    if r is None:
        continue
    file = {"f16.speed.json": "f16.gguf", "gptq.eval.json": "gptq", "moewb-Q4_K_M.eval.json": "moewb-Q4_K_M.gguf",
            "llama-Q4_K_M.eval.json": "llama-Q4_K_M.gguf"}[f]
    fp = os.path.join(out, file)
    size = (sum(os.path.getsize(os.path.join(fp, x)) for x in os.listdir(fp)) if os.path.isdir(fp)
            else os.path.getsize(fp)) if os.path.exists(fp) else 0
    kld = f"{r['kld']:.5f}" if "kld" in r else "–"
    same = f"{r['same_top']:.4f}" if "same_top" in r else "–"
    print(f"| {name} | {size} | {r['perplexity']:.3f} | {kld} | {same} |")
for f, n in (("f16", "speed-moewb-f16"), ("Q4_K_M", "speed-moewb-q4km")):
    if n in walls:
        r = ev({"f16": "f16.speed.json", "Q4_K_M": "moewb-Q4_K_M.speed.json"}[f])
        own = f", {r['windows'] * r['ctx'] / r['seconds']:.1f} by its own timer" if r and r.get("seconds") else ""
        print(f"forward {f}: moewb eval {tok / walls[n]:.1f} tokens/s wall ({tok} tokens{own})", end="")
    l = {"f16": "llama-ppl-f16", "Q4_K_M": "llama-ppl-q4km"}[f]
    lp = os.path.join(out, l + ".log")
    if l in walls and os.path.exists(lp):
        t = open(lp, errors="replace").read()
        m = re.search(r"Final estimate: PPL = ([0-9.]+)", t)
        s = re.search(r"([0-9.]+) seconds per pass", t)
        s = f"{ctx / float(s.group(1)):.1f}" if s else "?"
        print(f"; llama-perplexity {tok / walls[l]:.1f} tokens/s wall ({s} in its first pass),"
              f" PPL {m.group(1) if m else '?'}", end="")
    print()
print()
cfg_path = os.path.join(out, "config.json")
flops = full_model_flops.step_flops(json.load(open(cfg_path)), samples, seqlen, chunks, ctx) \
    if os.path.exists(cfg_path) else {}
peak = full_model_flops.peak_gflops(os.path.join(out, "gemm-peak.txt"))
if peak:
    print(f"GEMM peak {peak[0]:.1f} GFLOP/s ({peak[1]}, bench_gemm_peak in this run); fraction = counted GEMM FLOPs"
          " / wall / peak (scripts/full_model_flops.py)")
for n in walls:
    a = f" (anonymous {anon[n] / 2**20:.2f} GiB)" if anon[n] is not None else ""
    f = ""
    if n in flops and peak:
        rate = flops[n] / walls[n] / 1e9
        f = f", {flops[n] / 1e12:.2f} TFLOP = {rate:.1f} GFLOP/s = {100 * rate / peak[0]:.0f} % of GEMM peak"
    elif peak:
        f = ", no GEMM work counted"
    print(f"{n}: {walls[n]:.1f} s, {rss[n] / 2**20:.2f} GiB{a}{f}")
print(f"peak RSS: {max(rss.values(), default=0) / 2**20:.2f} GiB")
EOF
} | tee summary.txt
if [ $keep = 0 ]; then
  rm -rf model gptq f16.gguf moewb-Q4_K_M.gguf llama-Q4_K_M.gguf tmp
  echo "(removed the checkpoint, GGUF files and GPTQ directory; --keep keeps them)" >&2
fi
