#!/usr/bin/env bash
# Writes the small example instance of every cluster preset in platforms/presets.textproto
# to OUTDIR/<preset>.example.xml (default OUTDIR: platforms/examples). The big presets are
# recipes built in memory (`tcsim topo gen --preset NAME` prints their size and bisection;
# `-o f.xml` writes them); only these small instances are committed.
# tests/cli/topo_cli_test.cpp (TopoPresets.GeneratorScriptReproducesTheCommittedExamples)
# reruns this script and compares byte for byte.
#   scripts/gen_presets.sh                  # regenerate the committed examples
#   TCSIM=build-x/tcsim scripts/gen_presets.sh /tmp/out
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tcsim="${TCSIM:-$root/build/tcsim}"
out="${1:-$root/platforms/examples}"
if [[ ! -x "$tcsim" ]]; then
  echo "error: $tcsim is not an executable tcsim; build it (scripts/build.sh) or set TCSIM=path/to/tcsim" >&2
  exit 2
fi
mkdir -p "$out"
for name in $("$tcsim" topo presets --names); do
  "$tcsim" topo gen --preset "$name" --example -o "$out/$name.example.xml"
done
