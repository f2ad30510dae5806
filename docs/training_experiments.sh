#!/bin/sh
# The routing experiment of docs/training.md: six small models, equal training compute (same steps, batch, active
# parameters), each evaluated on the held-out split and on WikiText-2 test. About 25 min on 2 cores.
# usage: docs/training_experiments.sh [BUILD_DIR] [WORK_DIR]      (from the project root)
set -eu
BUILD=${1:-build}
WORK=${2:-runs/experiments}
C=${MOE_TESTDATA:-../shared/testdata}/corpus
TRAIN="$C/sotu-1790-2021.txt $C/brown-untagged.txt $C/kjv-bible.txt $C/jane-austen-6-novels.txt $C/moby-dick.txt"
mkdir -p "$WORK"
"$BUILD/moe" train-tokenizer $(for f in $TRAIN; do echo --text "$f"; done) --vocab-size 8192 -o "$WORK/vocab.gguf"

# Shared by every variant: 4 layers, hidden 256, 4 heads (2 KV) of 64, context 256, 16 sequences per step, 300
# steps (1.23M tokens), AdamW 2e-3 -> 2e-4 after 30 warmup steps, seed 1, 2 threads.
COMMON="--vocab $WORK/vocab.gguf --train $TRAIN --layers 4 --hidden 256 --heads 4 --kv-heads 2 --head-dim 64
  --ctx 256 --batch 16 --steps 300 --lr 2e-3 --min-lr 2e-4 --warmup 30 --seed 1 --threads 2
  --eval-every 100 --eval-tokens 32768 --log-every 20 --eval-text $C/wikitext-2.test.tokens.txt"
run() {  # name, flags
  name=$1
  shift
  OPENBLAS_CORETYPE=SkylakeX nice -n 19 "$BUILD/moe" train $COMMON --out "$WORK/$name" "$@" 2> "$WORK/$name.log"
}
# 8 experts of width 256, 2 active per token (active FFN = 2 x 256).
run topk-aux --router topk --experts 8 --top-k 2 --expert-ffn 256              # softmax top-2, Switch aux 0.01, z 0.001
run auxfree  --router auxfree --experts 8 --top-k 2 --expert-ffn 256           # sigmoid, bias balancing (DeepSeek-V3)
run moge     --router moge --experts 8 --top-k 2 --expert-ffn 256 --groups 2   # 2 groups of 4, one expert from each
run null     --router null --experts 8 --top-k 3 --expert-ffn 256 --null-experts 8  # AdaMoE: top-3 of 8 real + 8 null
run dts      --router dts --experts 8 --top-k 2 --expert-ffn 256               # EvoMoE gate: dense -> sparse, then top-2
run dense    --router dense --expert-ffn 512                                   # one FFN of width 512 = same active FFN
python3 docs/plot_training.py docs/training-routing topk-aux="$WORK/topk-aux" auxfree="$WORK/auxfree" \
  moge="$WORK/moge" null="$WORK/null" dts="$WORK/dts" dense="$WORK/dense"
