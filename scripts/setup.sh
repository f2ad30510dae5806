#!/usr/bin/env bash
# Installs what moe needs to build and test on Debian 12 (bookworm). Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev \
  libhwy-dev nlohmann-json3-dev libpcre2-dev libedit-dev libcli11-dev libopenblas-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev chromium \
  python3 python3-numpy python3-jinja2 python3-torch >/dev/null
command -v node >/dev/null && command -v npm >/dev/null || $SUDO apt-get install -y -qq nodejs npm >/dev/null

# The tests' JavaScript: the tokenizer oracles (transformers.js's tokenizers, tiktoken, the gpt-oss vocabulary),
# OpenAI's Node client and puppeteer-core for the server tests; the versions pinned in tests/npm/package.json,
# installed outside the source tree, once.
oracle="${MOE_NPM_ORACLE:-/opt/moe-oracle}"
if ! node tests/tokenizer_oracle.cjs "$oracle" --check 2>/dev/null; then
  $SUDO mkdir -p "$oracle"
  $SUDO cp tests/npm/package.json "$oracle/package.json"
  (cd "$oracle" && $SUDO npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
  node tests/tokenizer_oracle.cjs "$oracle" --check
fi
echo "setup: done"
