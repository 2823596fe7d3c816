#!/usr/bin/env bash
# A real one-machine Slurm: starts munged, slurmctld and slurmd (scripts/slurm_local.sh, all
# state in a temporary folder), submits the experiments/ sweep as a job array with
# `tcsim sweep slurm --submit` into a directory whose name has a space and both quotes,
# waits, merges, checks every point, and stops the daemons it started by pid.
# Exit 77 (reported as skipped, never as passed) when Slurm cannot run here.
set -euo pipefail
tcsim="$1"
src="$2"
spec="$src/experiments/sweeps/nvlink_x_gpu.textproto"

work="$(mktemp -d)"
cleanup() {
  "$src/scripts/slurm_local.sh" stop "$work/slurm" || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! env_line="$("$src/scripts/slurm_local.sh" start "$work/slurm" 2>"$work/start.err")"; then
  echo "SKIPPED: a local Slurm cannot start here:"
  cat "$work/start.err"
  exit 77
fi
eval "$env_line"  # export SLURM_CONF=...

# Points run the real `tcsim run` once it exists; until then the test stands in for it.
point_args=()
if ! "$tcsim" run --help >/dev/null 2>&1; then
  fake="$(dirname "$tcsim")/tests/sweep/sweep_fake_tcsim"
  echo "note: $tcsim has no 'run' yet; the points use $fake"
  point_args=(--tcsim "$fake")
fi

out="$work/sweep out 'single' \"double\""
n="$("$tcsim" sweep list "$spec" 2>/dev/null | wc -l)"
start=$(date +%s)
jid="$("$tcsim" sweep slurm "$spec" --out "$out" --shards 3 --throttle 2 --cpus 1 --time 5:00 \
  "${point_args[@]}" --submit)"
[[ "$jid" =~ ^[0-9]+$ ]] || { echo "FAIL: no job id from --submit: '$jid'"; exit 1; }
echo "submitted job $jid ($n points in 3 array tasks)"

for _ in $(seq 450); do
  [ -z "$(squeue -h -j "$jid" 2>/dev/null)" ] && break
  sleep 0.2
done
if [ -n "$(squeue -h -j "$jid" 2>/dev/null)" ]; then
  echo "FAIL: job $jid still queued or running after 90 s"; squeue; exit 1
fi
echo "job $jid done in $(( $(date +%s) - start )) s"

ls "$out/slurm/logs"
logs=$(ls "$out/slurm/logs" | wc -l)
[ "$logs" -eq 3 ] || { echo "FAIL: expected 3 task logs, found $logs"; exit 1; }
if ! "$tcsim" sweep merge "$out" -o "$work/results.csv"; then
  echo "FAIL: merge reports missing or failed points"; cat "$out"/slurm/logs/*; exit 1
fi
rows=$(($(wc -l <"$work/results.csv") - 1))
[ "$rows" -eq "$n" ] || { echo "FAIL: $rows rows for $n points"; exit 1; }
for f in "$out"/points/*.json; do
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["result"]["step_time_s"] > 0' "$f"
done
echo "ok: $n points through Slurm job $jid"
