#!/usr/bin/env bash
# Runs one CPU benchmark under the shared heavy-run lock, so that no other engine or Ray cluster
# runs at the same time; if someone else's Ray is up when the lock is taken (exit status 75),
# lets go of the lock and tries again a minute later, up to 30 times.
#
# usage: benchmarks/cpu/locked.sh benchmarks/cpu/side_by_side.py [ARGS...]
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck disable=SC1091
[ -f .venv/bin/activate ] && . .venv/bin/activate
for _ in $(seq 1 30); do
  echo "[$(date +%T)] waiting for /tmp/rayvllm-heavy.lock; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  flock /tmp/rayvllm-heavy.lock python "$@"
  status=$?
  [ "$status" -ne 75 ] && exit "$status"
  sleep 60
done
exit 75
