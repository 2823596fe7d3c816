#!/usr/bin/env bash
# Installs the Debian packages tcsim needs, only those missing. Idempotent; quick when
# everything is present. Needs root (or sudo) only when something must be installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libsimgrid-dev          # SimGrid 3.32: the simulation engine
  libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler
  libboost-dev            # Boost.Asio (sweep runner)
  libcli11-dev            # command line
  nlohmann-json3-dev      # JSON results
  zlib1g-dev              # gzip-compressed Chakra traces
  libxml2-dev             # topo check: XML with line numbers
  graphviz                # topo show --dot: the render test draws the fabric with dot -Tpng
  libgtest-dev libgmock-dev
  python3                 # scripts/ and experiments/ helpers
  slurm-wlm munge         # the real single-machine Slurm used by the sweep tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
