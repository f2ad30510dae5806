#!/usr/bin/env bash
# Release build of moe into ./build (tests and benchmarks included).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOE_BUILD_BENCH=ON "$@" >/dev/null
cmake --build build -j"$(nproc)"
