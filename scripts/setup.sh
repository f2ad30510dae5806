#!/usr/bin/env bash
# Installs what moe needs to build and test on Debian 12 (bookworm). Run as root (or with sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev \
  libhwy-dev nlohmann-json3-dev libpcre2-dev libcli11-dev libopenblas-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  python3 python3-numpy python3-jinja2 python3-torch >/dev/null
echo "setup: done"
