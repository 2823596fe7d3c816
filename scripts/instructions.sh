#!/usr/bin/env bash
# Instructions one analytical run executes, per stage, counted by valgrind's callgrind: a
# measure of the engine's work that does not move with the machine's load. On the
# project's VM the wall time of the same binary swings by up to 2x from one hour to the
# next, so comparing two builds of the engine by wall time needs many interleaved runs;
# their instruction counts differ only where the code does. They do not see cache misses
# or page faults (docs/PERFORMANCE.md has the wall times).
#
# usage: scripts/instructions.sh [--tcsim PATH] SCENARIO | -- RUN-ARGS...
#   SCENARIO: a `tcsim bench scale` scenario (S1, S3, S3@32768, ...), run as the bench
#             runs it (its forked child is counted: cluster, platform, program, execution);
#   -- ARGS:  a `tcsim run` with these arguments (--fidelity analytical is added), counted
#             whole, with the breakdown report it also computes.
# Needs valgrind (apt-get install valgrind); a run takes about 50 times its usual time.
set -euo pipefail
cd "$(dirname "$0")/.."
TCSIM=build/tcsim
if [[ "${1:-}" == "--tcsim" ]]; then
  TCSIM=${2:-}
  shift 2 || true
fi
fail() {
  echo "error: scripts/instructions.sh: $*" >&2
  exit 2
}
command -v valgrind > /dev/null && command -v callgrind_annotate > /dev/null || fail "valgrind is not installed; apt-get install valgrind"
[[ -x "$TCSIM" ]] || fail "no executable '$TCSIM'; build first (scripts/build.sh) or give --tcsim PATH"
case "${1:-}" in
  --)
    shift
    cmd=(run "$@" --fidelity analytical --json) ;;
  "" | -*) fail "give a bench scenario (S1, S3, S3@32768, ...; see tcsim bench scale --help) or -- followed by tcsim run arguments" ;;
  *) cmd=(bench scale --only "$1" --fidelity analytical --json) ;;
esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! valgrind --tool=callgrind --log-file="$out/valgrind.txt" --callgrind-out-file="$out/cg.%p" "$TCSIM" "${cmd[@]}" \
  > "$out/result.json" 2> "$out/stderr.txt"; then
  cat "$out/stderr.txt" >&2
  exit 2
fi
# The process that executed the program: the bench's forked child, or the run itself.
counted=""
for f in "$out"/cg.*; do
  callgrind_annotate --inclusive=yes "$f" > "$f.txt" 2> /dev/null
  grep -q 'sim::execute(' "$f.txt" && counted="$f.txt"
done
[[ -n "$counted" ]] || fail "no run executed a program: $(head -c 300 "$out/stderr.txt")"
# The largest inclusive count among the lines naming a function (callgrind_annotate lists
# it once per source file its code comes from; the largest is the whole function).
count() { { grep -E "$1" "$counted" || true; } | awk '{gsub(",", "", $1); if ($1 + 0 > m) m = $1 + 0} END {print m + 0}'; }
total=$(grep -m1 "PROGRAM TOTALS" "$counted" | awk '{gsub(",", "", $1); print $1}')
printf '%-30s %14s\n' "stage" "instructions"
printf '%-30s %14d\n' "cluster (build_cluster)" "$(count 'topology::build_cluster\(')" \
  "platform (Platform::build)" "$(count 'sim::Platform::build\(')" \
  "program (generate)" "$(count 'workloads::generate\(')" \
  "execute" "$(count 'sim::execute\(')" \
  "  of which collective forms" "$(count 'executor_detail::Engine::evaluate\(')" \
  "  of which send forms" "$(count 'executor_detail::Engine::send_closed_form\(')" \
  "report (compute_breakdown)" "$(count 'sim::compute_breakdown\(')" \
  "whole process" "${total:-0}"
step=$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print((j[0] if isinstance(j, list) else j)["step_time_s"])' "$out/result.json")
echo "step $step s (analytical). The whole process includes ~55 M of loading shared libraries; a bench"
echo "scenario's child also counts its parent's start-up before the fork, and computes no report and no per-link bytes (as plan search)."
