#!/bin/sh
# Trains the bundled model models/default.gguf from scratch (the recipe and the results are in models/README.md).
# usage: models/train_default.sh [BUILD_DIR] [WORK_DIR]     (from the project root; about 35 min on 2 cores)
# The corpora are read in place from ../shared/testdata/corpus (or $MOE_TESTDATA/corpus).
set -eu
BUILD=${1:-build}
WORK=${2:-runs/default}
C=${MOE_TESTDATA:-../shared/testdata}/corpus
TRAIN="$C/sotu-1790-2021.txt $C/brown-untagged.txt $C/kjv-bible.txt $C/jane-austen-6-novels.txt $C/moby-dick.txt"
mkdir -p "$WORK"

# 1. Byte-level BPE vocabulary, 8192 tokens, learned from the five training corpora (about 1 s).
"$BUILD/moe" train-tokenizer $(for f in $TRAIN; do echo --text "$f"; done) --vocab-size 8192 -o "$WORK/vocab.gguf"

# 2. The model: qwen3moe, 6 layers, hidden 256, 4 heads (2 KV) of 64, 12 experts of width 256, top-2, softmax router
#    with the Switch load-balancing loss (0.01) and router z-loss (0.001); context 512; AdamW, warmup 100 steps
#    then cosine 2e-3 -> 2e-4; 8 x 512 tokens x 2 micro-batches per step; 2 threads. OpenBLAS's AVX-512 kernels
#    (SkylakeX) are named explicitly: the kernel choice changes float rounding, so it is part of the recipe.
OPENBLAS_CORETYPE=SkylakeX nice -n 19 "$BUILD/moe" train --vocab "$WORK/vocab.gguf" --train $TRAIN \
  --out "$WORK" -o "$WORK/default.gguf" --export-type f16 \
  --router topk --layers 6 --hidden 256 --heads 4 --kv-heads 2 --head-dim 64 \
  --experts 12 --top-k 2 --expert-ffn 256 --ctx 512 \
  --steps 1400 --batch 8 --accum 2 --lr 2e-3 --min-lr 2e-4 --warmup 100 --wd 0.1 --clip 1 --seed 1 \
  --eval-every 200 --eval-tokens 32768 --save-every 100 --log-every 20 --threads 2 \
  --eval-text "$C/wikitext-2.test.tokens.txt"
