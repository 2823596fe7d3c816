#!/usr/bin/env bash
# The foundation demo: the same small DeepSeek-like MoE training step on 4 nodes of
# H100 and of H800 (NVLink cut from 450 to 200 GB/s per direction), and the slowdown.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
OUT="${TCSIM_DEMO_DIR:-build/demo}"
mkdir -p "$OUT"
for gpu in H100 H800; do
  build/tcsim topo gen --gpu "$gpu" --nodes 4 -o "$OUT/$gpu.xml"
done
build/tcsim compare --platform "$OUT/H100.xml" --platform "$OUT/H800.xml" --workload moe-demo \
  --out "$OUT/compare.json"
