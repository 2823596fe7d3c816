#!/usr/bin/env bash
# Runs the experiments/ sweep locally with the real `tcsim run`, twice (the second run must
# skip every point), merges it and checks every point. Exit 77 (skipped) while `tcsim run`
# does not exist yet.
set -euo pipefail
tcsim="$1"
src="$2"
spec="$src/experiments/sweeps/nvlink_x_gpu.textproto"
if ! "$tcsim" run --help >/dev/null 2>&1; then
  echo "SKIPPED: $tcsim has no working 'run' command yet"
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/sweep out"
n="$("$tcsim" sweep list "$spec" 2>/dev/null | wc -l)"
"$tcsim" sweep run "$spec" --out "$out" --jobs 2
"$tcsim" sweep run "$spec" --out "$out" 2>"$work/again.err"
grep -q "$n already done, 0 finished now" "$work/again.err" || { cat "$work/again.err"; echo "FAIL: rerun did not skip"; exit 1; }
"$tcsim" sweep merge "$out" -o "$work/results.csv"
rows=$(($(wc -l <"$work/results.csv") - 1))
[ "$rows" -eq "$n" ] || { echo "FAIL: $rows rows for $n points"; exit 1; }
python3 - "$work/results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    assert float(r["step_time_s"]) > 0, r
    assert 0 < float(r["mfu"]) < 1, r
# More NIC bandwidth never makes a step slower.
by = {(r["run.gpu"], r["run.workload"], r["gpu.nic_bw"]): float(r["step_time_s"]) for r in rows}
for (g, w, nic), t in by.items():
    if nic == "50GBps":
        assert by[(g, w, "100GBps")] <= t * 1.0001, (g, w)
print("ok: %d points" % len(rows))
PY
