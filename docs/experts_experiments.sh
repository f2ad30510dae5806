#!/bin/sh
# The measurements of docs/experts.md on a model (default: the bundled one): expert pruning by frequency, TCESS,
# REAP and random choice (3 seeds) at several fractions kept; adaptive expert counts; banning the experts that
# steer-find ranks first. Prints one TSV row per measurement to WORK/results.tsv and draws the SVGs with
# docs/plot_experts.py. About 10 minutes for the default model on 2 cores.
# usage: docs/experts_experiments.sh [MODEL] [BUILD_DIR] [WORK_DIR]      (from the project root)
set -eu
M=${1:-models/default.gguf}
BUILD=${2:-build}
W=${3:-runs/experts}
C=${MOE_TESTDATA:-../shared/testdata}/corpus
mkdir -p "$W"
R="$W/results.tsv"
printf 'experiment\tdomain\tmethod\tkeep\tseed\tsetting\tbits_per_byte\tppl\texperts_per_token\n' > "$R"

# Three domains, each with a text to profile and a held-out text to evaluate (whole lines only). The bible's
# evaluation text is the last 40 KB of the KJV, which `moe train` held out of the default model's training;
# Shakespeare is not in its training data at all; WikiText-2 is profiled on its validation split and evaluated
# on its test split.
head -c 1000000 "$C/kjv-bible.txt" > "$W/bible.profile.txt"
tail -c 40000 "$C/kjv-bible.txt" | tail -n +2 > "$W/bible.eval.txt"
head -c 900000 "$C/tinyshakespeare.txt" > "$W/shakespeare.profile.txt"
tail -c 60000 "$C/tinyshakespeare.txt" | tail -n +2 > "$W/shakespeare.eval.txt"
head -c 1000000 "$C/wikitext-2.valid.tokens.txt" > "$W/wiki.profile.txt"
head -c 60000 "$C/wikitext-2.test.tokens.txt" > "$W/wiki.eval.txt"
DOMAINS="bible shakespeare wiki"

# ppl EXPERIMENT DOMAIN METHOD KEEP SEED SETTING MODEL EVAL_DOMAIN [routing flags...]
ppl() {
  exp=$1 dom=$2 meth=$3 keep=$4 seed=$5 set=$6 model=$7 evd=$8
  shift 8
  j=$("$BUILD/moe" perplexity -m "$model" --text "$W/$evd.eval.txt" --ctx 512 --json "$@")
  echo "$j" | python3 -c "import json,sys; r=json.load(sys.stdin); print('\t'.join(map(str, ['$exp','$dom','$meth','$keep','$seed','$set', round(r['bits_per_byte'],5), round(r['ppl'],4), round(r['experts_per_token'],4)])))" >> "$R"
  tail -n 1 "$R"
}

"$BUILD/moe" info "$M" > "$W/model-info.txt"
E=$(sed -n 's/^experts: *\([0-9]*\) routed.*/\1/p' "$W/model-info.txt")
"$BUILD/moe" profile -m "$M" --text "$W/bible.profile.txt" --text "$W/shakespeare.profile.txt" \
  --text "$W/wiki.profile.txt" --task bible --task shakespeare --task wiki --out "$W/stats"

# 1. Pruning: the same number of experts kept in every layer, chosen with the domain's own statistics.
for d in $DOMAINS; do
  ppl prune "$d" none "$E" - all "$M" "$d"
  for keep in $((E * 3 / 4)) $((E / 2)) $((E / 3)); do
    for meth in freq tcess reap; do
      "$BUILD/moe" prune -m "$M" --stats "$W/stats.json" --task "$d" --keep "$keep" --method "$meth" -o "$W/p.gguf" 2>/dev/null
      ppl prune "$d" "$meth" "$keep" - - "$W/p.gguf" "$d"
    done
    for seed in 1 2 3; do
      "$BUILD/moe" prune -m "$M" --keep "$keep" --method random --seed "$seed" -o "$W/p.gguf" 2>/dev/null
      ppl prune "$d" random "$keep" "$seed" - "$W/p.gguf" "$d"
    done
  done
done
# Task specificity: half the experts kept for one domain (TCESS), evaluated on every domain.
for d in $DOMAINS; do
  "$BUILD/moe" prune -m "$M" --stats "$W/stats.json" --task "$d" --keep $((E / 2)) --method tcess -o "$W/p.gguf" 2>/dev/null
  for e in $DOMAINS; do ppl cross "$d" tcess $((E / 2)) - "eval=$e" "$W/p.gguf" "$e"; done
done
rm -f "$W/p.gguf"

# 2. Adaptive expert count: a fixed k, a minimum renormalised weight, a cumulative-probability threshold.
for d in bible wiki; do
  for k in 1 2 3 4; do ppl adaptive "$d" top-k - - "$k" "$M" "$d" --experts-k "$k"; done
  for w in 0.1 0.2 0.3 0.4 0.45; do ppl adaptive "$d" min-weight - - "$w" "$M" "$d" --expert-min-weight "$w"; done
  for p in 0.5 0.6 0.7 0.8 0.9; do ppl adaptive "$d" top-p - - "$p" "$M" "$d" --expert-top-p "$p"; done
done

# 3. Steering: ban the experts most specific to the bible (against WikiText) and see which domain suffers;
#    the same number of randomly chosen experts (3 seeds) is the control.
L=$(sed -n 's/^layers: *\([0-9]*\) .*/\1/p' "$W/model-info.txt")
for n in 3 6 12; do
  "$BUILD/moe" steer-find -m "$M" --with "$W/bible.profile.txt" --without "$W/wiki.profile.txt" --top "$n" \
    --steer-out "$W/ban-bible-$n.steer" > "$W/steer-find-$n.tsv"
  for e in $DOMAINS; do ppl steer bible steer-find "$n" - "eval=$e" "$M" "$e" --steer-file "$W/ban-bible-$n.steer"; done
  for seed in 1 2 3; do
    ban=$(python3 -c "import random; r=random.Random($seed); p=r.sample([(l,e) for l in range($L) for e in range($E)], $n); print(','.join(f'{l}:{e}' for l,e in p))")
    for e in $DOMAINS; do ppl steer bible random "$n" "$seed" "eval=$e" "$M" "$e" --ban "$ban"; done
  done
done
for e in $DOMAINS; do ppl steer bible none 0 - "eval=$e" "$M" "$e"; done

# 4. Task-adaptive retrieval (PreMoe TAER): which stored task does a held-out prompt of each domain pick?
for d in $DOMAINS; do
  for i in 0 1 2 3 4 5 6 7; do
    prompt=$(python3 -c "t=open('$W/$d.eval.txt').read(); print(t[$i*4000:$i*4000+400])")
    got=$("$BUILD/moe" run -m "$M" --experts-from "$W/stats.json" --prompt="$prompt" -n 1 2>&1 >/dev/null |
      sed -n "s/.*prompt matches task '\(.*\)'.*/\1/p")
    printf 'taer\t%s\t-\t-\t%s\t%s\t0\t0\t0\n' "$d" "$i" "$got" >> "$R"
  done
done

python3 docs/plot_experts.py "$R" docs/experts
