#!/usr/bin/env bash
# Runs the experiments/ sweep locally with the real `tcsim run`, twice (the second run must
# skip every point), merges it and checks every point; then once more with `--tcsim`, so
# that each point is exec'd instead of run in a fork of the runner, and checks that both
# ways give the same results. Exit 77 (skipped) while `tcsim run` does not exist yet.
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
# Points forked from the runner (the default) and points exec'd (--tcsim) are the same runs:
# every result equal but for its wall time and the sweep directory in its paths.
"$tcsim" sweep run "$spec" --out "$work/exec" --jobs 2 --tcsim "$tcsim"
python3 - "$out/points" "$work/exec/points" <<'PY'
import json, os, re, sys
a_dir, b_dir = sys.argv[1:]
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if "wall" not in k}
    if isinstance(v, list):
        return [strip(x) for x in v]
    if isinstance(v, str):  # the point's work folder: DIR/work/ID.PID.HOST/
        return re.sub(r"^.*/work/[^/]*/", "WORK/", v)
    return v
def load(path):
    return strip(json.load(open(path))["result"])
names = sorted(os.listdir(a_dir))
assert names == sorted(os.listdir(b_dir)) and names, (names, os.listdir(b_dir))
for n in names:
    a, b = load(os.path.join(a_dir, n)), load(os.path.join(b_dir, n))
    assert a == b, n
    assert a["step_time_s"] > 0, n
print("ok: %d points forked = exec'd" % len(names))
PY
