#!/usr/bin/env bash
# The sanitizer job (issue #13): builds the torch-free library (moewb_io: engine/core and the
# format units, the GGUF reader included) and its tests with AddressSanitizer +
# UndefinedBehaviorSanitizer (gcc) and runs them: the parser tests and the malformed-file corpus
# (tests/data/bad). CI runs it after the main suite.
#   scripts/sanitize.sh            io subset (what CI runs, a few minutes)
#   scripts/sanitize.sh --all      every engine test with the sanitizers (slow: rebuilds the engine)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh" >/dev/null   # packages (the main build it also does is up to date in CI)
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
SAN=address,undefined
if [ "${1:-}" = "--all" ]; then
  BUILD="${MOEWB_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize-all}"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOEWB_SANITIZE=$SAN \
    -DMOEWB_BUILD_GUI=OFF -DMOEWB_BENCH=OFF >/dev/null
  LABEL=engine
else
  BUILD="${MOEWB_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOEWB_SANITIZE=$SAN \
    -DMOEWB_IO_ONLY=ON >/dev/null
  LABEL=io
fi
cmake --build "$BUILD" -j "$(nproc)"
# Any finding fails the test; libhdf5's own small leaks on corrupt files are suppressed (fuzz/lsan.supp).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" -L "$LABEL"
