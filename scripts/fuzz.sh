#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang-14, ASan + UBSan) and runs each one for SECONDS
# (default 60) from its committed seed corpus in tests/fuzz/corpus/<target>/. New interesting inputs
# go to build-fuzz/corpus/<target>/ (not committed); a crash, leak, UB report, non-moewb exception or
# multi-line error message stops the target, leaves the input in build-fuzz/crashes/ and makes the
# script exit 1. Inputs that once failed are kept in tests/fuzz/regress/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#        scripts/fuzz.sh --regress [TARGET...]   run every seed and regression input once (CI)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
REGRESS=0
if [ "${1:-}" = "--regress" ]; then
  REGRESS=1
  shift
fi
SECONDS_EACH=60
if ((!REGRESS)) && (($#)) && [[ "$1" =~ ^[0-9]+$ ]]; then
  SECONDS_EACH="$1"
  shift
fi

need=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT/fuzz" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)"

targets=("$@")
if ((${#targets[@]} == 0)); then
  for t in "$BUILD"/fuzz_*; do [ -x "$t" ] && targets+=("$(basename "$t")"); done
fi
mkdir -p "$BUILD/crashes"
status=0
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
export LSAN_OPTIONS=suppressions="$ROOT/fuzz/lsan.supp"
for t in "${targets[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  regress="$ROOT/tests/fuzz/regress/$t"
  if ((REGRESS)); then
    inputs=("$seeds"/*)
    [ -d "$regress" ] && inputs+=("$regress"/*)
    if "$BUILD/$t" -runs=1 -rss_limit_mb=2048 -malloc_limit_mb=1024 "${inputs[@]}" >"$BUILD/$t.log" 2>&1; then
      echo "fuzz: $t: ${#inputs[@]} seed and regression inputs pass"
    else
      echo "fuzz: $t FAILED on a seed or regression input (log: $BUILD/$t.log)"
      grep -E "ERROR|fuzz:|SUMMARY|Running:" "$BUILD/$t.log" | tail -5 || true
      status=1
    fi
    continue
  fi
  work="$BUILD/corpus/$t"
  mkdir -p "$work"
  echo "fuzz: $t for ${SECONDS_EACH}s (seeds: $(ls "$seeds" | wc -l))"
  # -rss_limit_mb / -malloc_limit_mb: a parser that tries to allocate what a header claims is a finding.
  dirs=("$work" "$seeds")
  [ -d "$regress" ] && dirs+=("$regress")
  if ! "$BUILD/$t" "${dirs[@]}" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len=131072 -timeout=10 -artifact_prefix="$BUILD/crashes/$t-" -print_final_stats=1 \
      >"$BUILD/$t.log" 2>&1; then
    echo "fuzz: $t FOUND A PROBLEM (log: $BUILD/$t.log, input in $BUILD/crashes/)"
    grep -E "ERROR|fuzz:|SUMMARY" "$BUILD/$t.log" | head -5 || true
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$BUILD/$t.log" | tail -2 | tr '\n' ' '
    echo
  fi
done
exit $status
