#!/bin/sh
# Side-by-side: `moe bench` and llama.cpp's llama-bench on the same GGUF, same threads, back to back.
#   bench/compare_llama.sh MODEL.gguf [THREADS] [N_PROMPT] [N_GEN] [REPS]
# MOE (default build/moe) and LLAMA_BENCH (default /work/llama.cpp/build/bin/llama-bench) locate the tools.
set -e
model=${1:?usage: compare_llama.sh MODEL.gguf [threads] [n_prompt] [n_gen] [reps]}
t=${2:-2}; p=${3:-64}; n=${4:-32}; r=${5:-5}
moe=${MOE:-$(dirname "$0")/../build/moe}
llama=${LLAMA_BENCH:-/work/llama.cpp/build/bin/llama-bench}
echo "== $(date -u +%FT%TZ) $(uname -n) load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$moe" bench -m "$model" -t "$t" -p "$p" -n "$n" -r "$r"
if [ -x "$llama" ]; then
  "$llama" -m "$model" -t "$t" -p "$p" -n "$n" -r "$r" 2>/dev/null | grep -E '^\|'
else
  echo "(llama-bench not found at $llama)"
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
