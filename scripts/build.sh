#!/usr/bin/env bash
# Configures (once) and builds tcsim into build/ incrementally. Used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
BUILD_DIR="${TCSIM_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# Show warnings and errors, not the progress lines; fail when the build fails.
set +e
cmake --build "$BUILD_DIR" -j"$(nproc)" > "$BUILD_DIR/build.log" 2>&1
status=$?
set -e
grep -Ev '^\[ *[0-9]+%\]|^-- |^gmake|^Consolidate' "$BUILD_DIR/build.log" || true
exit $status
