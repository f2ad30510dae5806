#!/bin/sh
# Parity with llama.cpp on any GGUF model: the same token ids through `moe logits` and through llama.cpp
# (bench/llama_logits.cpp, compiled here once against a llama.cpp build), then per prompt:
#   - max |logit difference| over every prompt position (all rows come from one batched decode on both sides),
#   - whether the top-10 ids (set and order) are identical at every position, and top-1 agreement,
#   - whether the 16 greedy ids (each decoded alone through the KV cache) are identical.
#
#   bench/parity_llama.sh MODEL.gguf [IDS ...]      IDS: comma-separated token ids, one argument per prompt
#
# Without IDS, three prompts of 8, 24 and 40 ids are drawn by a fixed LCG from [3, n_vocab - 3) (no control
# tokens at either end of the vocabulary). Pass criteria: every file needs identical greedy ids; a file whose
# tensors are all F32 also needs max |diff| <= 1e-4 and identical top-10 at every position. Exit status 1 if
# any prompt fails, 2 on a usage or setup error.
#
# Environment: LLAMA_DIR (default /work/llama.cpp: include/, ggml/include/, gguf-py/ and build/bin/ with
# libllama.so), LLAMA_LIB (default $LLAMA_DIR/build/bin), MOE (default build/moe), PYTHON (default
# /usr/bin/python3, needs NumPy), CXX (default g++), PARITY_CACHE (default build/llama_logits), KEEP (a folder:
# keep the logits there), SUMMARY (a file: append one tab-separated result line, see the end).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
model=${1:?usage: parity_llama.sh MODEL.gguf [IDS ...]}
shift
[ -f "$model" ] || { echo "parity_llama: no such model file: $model" >&2; exit 2; }
llama_dir=${LLAMA_DIR:-/work/llama.cpp}
llama_lib=${LLAMA_LIB:-$llama_dir/build/bin}
moe=${MOE:-$root/build/moe}
py=${PYTHON:-/usr/bin/python3}
cache=${PARITY_CACHE:-$root/build/llama_logits}
[ -x "$moe" ] || { echo "parity_llama: $moe not found (build the moe target, or set MOE)" >&2; exit 2; }
[ -e "$llama_lib/libllama.so" ] || { echo "parity_llama: no libllama.so in $llama_lib (set LLAMA_DIR or LLAMA_LIB)" >&2; exit 2; }

# Compile the llama.cpp side once per source version and llama.cpp build.
mkdir -p "$cache"
bin=$cache/llama_logits
stamp="$(cksum < "$here/llama_logits.cpp") $llama_dir $llama_lib $(cksum < "$llama_lib/libllama.so")"
if [ ! -x "$bin" ] || [ "$(cat "$bin.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "compiling $bin against $llama_lib" >&2
  ${CXX:-g++} -std=c++17 -O2 -I"$llama_dir/include" -I"$llama_dir/ggml/include" "$here/llama_logits.cpp" \
    -o "$bin" -L"$llama_lib" -lllama -lggml -lggml-base -Wl,-rpath,"$llama_lib"
  echo "$stamp" > "$bin.stamp"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# n_vocab and whether every tensor is F32, read with llama.cpp's gguf-py.
info=$(GGUF_PY="$llama_dir/gguf-py" "$py" - "$model" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["GGUF_PY"])
import gguf
r = gguf.GGUFReader(sys.argv[1])
tok = r.fields.get("tokenizer.ggml.tokens")
if tok is None:
    sys.exit(f"{sys.argv[1]}: no tokenizer.ggml.tokens")
f32 = all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in r.tensors)
types = sorted({t.tensor_type.name for t in r.tensors})
print(len(tok.data), "f32" if f32 else "quant", ",".join(types))
EOF
)
n_vocab=${info%% *}
rest=${info#* }
mode=${rest%% *}
types=${rest#* }

if [ $# -eq 0 ]; then
  set -- $("$py" - "$n_vocab" <<'EOF'
import sys
n = int(sys.argv[1])
x = 20241205
out = []
for length in (8, 24, 40):
    ids = []
    for _ in range(length):
        x = (1103515245 * x + 12345) % 2**31
        ids.append(3 + (x >> 8) % (n - 6))
    out.append(",".join(map(str, ids)))
print(" ".join(out))
EOF
  )
fi

echo "model $model: n_vocab $n_vocab, tensor types $types -> criteria: $( [ "$mode" = f32 ] && echo 'max|diff| <= 1e-4, identical top-10, identical greedy' || echo 'identical greedy')"
fail=0
k=0
for ids in "$@"; do
  k=$((k + 1))
  ids=$(echo "$ids" | tr ' \t' ',,' | sed 's/,,*/,/g; s/^,//; s/,$//')  # "1 2 3" works too
  "$bin" "$model" "$ids" "$work/llama.$k.f32" 16 > "$work/llama.$k.greedy" || { echo "prompt $k: llama.cpp failed" >&2; exit 2; }
  "$moe" logits -m "$model" --tokens "$ids" --out "$work/moe.$k.f32" -t 1 --greedy 16 > "$work/moe.$k.greedy" ||
    { echo "prompt $k: moe logits failed" >&2; exit 2; }
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$work"/*.$k.* "$KEEP"/; fi
  "$py" - "$work/llama.$k.f32" "$work/moe.$k.f32" "$work/llama.$k.greedy" "$work/moe.$k.greedy" \
      "$n_vocab" "$mode" "$k" "$ids" "$work/summary" <<'EOF' || fail=1
import sys
import numpy as np
lf, mf, lg, mg, n_vocab, mode, k, ids, summary = sys.argv[1:]
n_vocab = int(n_vocab)
n = len(ids.split(","))
ref = np.fromfile(lf, dtype="<f4")
got = np.fromfile(mf, dtype="<f4")
if ref.size != n * n_vocab or got.size != n * n_vocab:
    sys.exit(f"prompt {k}: logits sizes {ref.size}, {got.size}, expected {n} x {n_vocab}")
ref = ref.reshape(n, n_vocab).astype(np.float64)
got = got.reshape(n, n_vocab).astype(np.float64)
finite = bool(np.isfinite(got).all() and np.isfinite(ref).all())
diff = np.abs(ref - got)
row_max = diff.max(axis=1)
# Stable sorts: equal logits are ordered by id on both sides.
top_r = np.argsort(-ref, axis=1, kind="stable")[:, :10]
top_g = np.argsort(-got, axis=1, kind="stable")[:, :10]
same_order = (top_r == top_g).all(axis=1)
same_set = np.array([set(a) == set(b) for a, b in zip(top_r, top_g)])
same_top1 = top_r[:, 0] == top_g[:, 0]
g_ref = open(lg).read().split()
g_got = open(mg).read().split()
first = next((i for i, (a, b) in enumerate(zip(g_ref, g_got)) if a != b), None)
if first is None and len(g_ref) != len(g_got):
    first = min(len(g_ref), len(g_got))
greedy_ok = first is None
ok = greedy_ok and finite
if mode == "f32":
    ok = ok and diff.max() <= 1e-4 and bool(same_order.all())
worst = int(row_max.argmax())
print(f"prompt {k} ({n} ids): max|diff| {diff.max():.3g} (position {worst}), mean|diff| {diff.mean():.3g}; "
      f"top-10 identical {int(same_order.sum())}/{n} (as sets {int(same_set.sum())}/{n}), "
      f"top-1 {int(same_top1.sum())}/{n}; greedy16 " +
      ("identical" if greedy_ok else f"DIFFER from step {first}") + ("" if finite else "; NON-FINITE logits") +
      f" -> {'PASS' if ok else 'FAIL'}")
with open(summary, "a") as f:
    f.write(f"{diff.max():.3g} {int(same_order.all())} {int(greedy_ok)} {int(ok)}\n")
if not greedy_ok:
    print(f"  llama.cpp: {' '.join(g_ref)}\n  moe:       {' '.join(g_got)}")
if not ok and mode == "f32":
    bad = [i for i in range(n) if row_max[i] > 1e-4 or not same_order[i]]
    print("  failing positions: " + ", ".join(f"{i} ({row_max[i]:.3g})" for i in bad[:12]) + (" ..." if len(bad) > 12 else ""))
sys.exit(0 if ok else 1)
EOF
done
[ $fail -eq 0 ] && echo "PASS: $model" || echo "FAIL: $model"
# SUMMARY=FILE appends one line: model, types, max |diff| over the prompts, prompts with identical top-10 at every
# position, prompts with identical greedy ids, number of prompts, PASS/FAIL.
if [ -n "${SUMMARY:-}" ]; then
  awk -v m="$(basename "$model")" -v t="$types" -v f="$fail" '
    { if ($1 + 0 > mx) mx = $1 + 0; top += $2; gr += $3; n++ }
    END { printf "%s\t%s\t%.3g\t%d\t%d\t%d\t%s\n", m, t, mx, top, gr, n, f ? "FAIL" : "PASS" }' "$work/summary" >> "$SUMMARY"
fi
exit $fail
