#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts N ranks of a command on this machine, on loopback, as torchrun would set them up:
#   scripts/launch-local.sh N CMD [ARGS...]
# e.g. scripts/launch-local.sh 2 build/app/cli/moewb calibrate MODEL --data x.txt --out s.h5 --distributed
# Each rank gets RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port unless
# MASTER_PORT is set). When one rank fails, the others are stopped; the script exits with the first
# non-zero status (0 when all succeed). docs/distributed.md has the multi-machine recipe.
set -u

if [ $# -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N CMD [ARGS...]" >&2
  exit 2
fi
n=$1
shift

if [ -z "${MASTER_PORT:-}" ]; then
  # Ask the kernel for a port that is free now (bind to 0 and read it back).
  MASTER_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
export MASTER_ADDR=127.0.0.1 MASTER_PORT WORLD_SIZE=$n

pids=()
stop_all() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
  done
}
trap 'stop_all; exit 130' INT TERM

for ((r = 0; r < n; r++)); do
  RANK=$r "$@" &
  pids+=($!)
done

status=0
remaining=$n
while [ $remaining -gt 0 ]; do
  wait -n
  rc=$?
  remaining=$((remaining - 1))
  if [ $rc -ne 0 ] && [ $status -eq 0 ]; then
    status=$rc
    echo "launch-local: a rank exited with status $rc; stopping the others" >&2
    stop_all
  fi
done
exit $status
