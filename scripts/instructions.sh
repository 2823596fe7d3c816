#!/usr/bin/env bash
# Instructions one analytical `tcsim run` executes, per stage, counted by valgrind's
# callgrind: a measure of the engine's work that does not move with the machine's load.
# On the project's VM the wall time of the same binary swings by up to 2x from one hour to
# the next, so comparing two builds of the engine by wall time needs many interleaved
# runs; their instruction counts differ only where the code does. They do not see cache
# misses or page faults (docs/PERFORMANCE.md has the wall times).
#
# usage: scripts/instructions.sh [--tcsim PATH] S1|S3|S3@32768|-- RUN-ARGS...
#   S1, S3, S3@32768: the `tcsim bench scale` scenarios of those names;
#   -- ARGS: any `tcsim run` arguments (--fidelity analytical is added).
# Needs valgrind (apt-get install valgrind); a run takes about 50 times its usual time.
set -euo pipefail
cd "$(dirname "$0")/.."
TCSIM=build/tcsim
if [[ "${1:-}" == "--tcsim" ]]; then
  TCSIM=$2
  shift 2
fi
if ! command -v valgrind > /dev/null || ! command -v callgrind_annotate > /dev/null; then
  echo "error: scripts/instructions.sh: valgrind is not installed; apt-get install valgrind" >&2
  exit 2
fi
case "${1:-}" in
  S1) args=(--gpu H800 --nodes 256 --fabric multi-plane-fat-tree --workload deepseek-v3-pretrain) ;;
  S3 | S3@32768)
    nodes=2048 batch=2048
    [[ "$1" == "S3@32768" ]] && nodes=4096 batch=4096
    args=(--gpu H100 --nodes "$nodes" --fabric clos3 --workload llama3-405b --set plan.tp=8 plan.pp=16 plan.seq_len=8192
      "plan.global_batch=$batch" plan.sp=true plan.uneven_stages=true plan.zero_stage=2) ;;
  --)
    shift
    args=("$@") ;;
  *)
    echo "error: scripts/instructions.sh: unknown scenario '${1:-}'; valid: S1, S3, S3@32768, or -- followed by tcsim run arguments" >&2
    exit 2 ;;
esac
[[ -x "$TCSIM" ]] || { echo "error: scripts/instructions.sh: no executable $TCSIM; build first (scripts/build.sh) or give --tcsim PATH" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$TCSIM" run "${args[@]}" --fidelity analytical --json > "$out/run.json" 2> "$out/valgrind.txt" || {
  tail -5 "$out/valgrind.txt" >&2
  exit 1
}
callgrind_annotate --inclusive=yes "$out/cg" > "$out/inclusive.txt" 2> /dev/null
# The largest inclusive count among the lines naming a function (callgrind_annotate lists
# it once per source file its code comes from; the largest is the whole function).
count() { { grep -E "$1" "$out/inclusive.txt" || true; } | awk '{gsub(",", "", $1); if ($1 + 0 > m) m = $1 + 0} END {print m + 0}'; }
total=$(grep -m1 "PROGRAM TOTALS" "$out/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
cluster=$(count 'topology::build_cluster\(')
platform=$(count 'sim::Platform::build\(')
program=$(count 'workloads::generate\(')
execute=$(count 'sim::execute\(')
closed=$(count 'executor_detail::Engine::evaluate\(')
sends=$(count 'executor_detail::Engine::send_closed_form\(')
report=$(count 'sim::compute_breakdown\(')
step=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step_time_s"])' "$out/run.json")
printf '%-28s %14s\n' "stage" "instructions"
printf '%-28s %14d\n' "cluster (build_cluster)" "${cluster:-0}" "platform (Platform::build)" "${platform:-0}" \
  "program (generate)" "${program:-0}" "execute" "${execute:-0}" "  of which collective forms" "${closed:-0}" \
  "  of which send forms" "${sends:-0}" "report (compute_breakdown)" "${report:-0}" "whole process" "${total:-0}"
echo "step $step s (analytical); the whole process includes loading libraries (~55 M) and the report"
