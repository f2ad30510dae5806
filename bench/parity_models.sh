#!/bin/sh
# Makes small random-weight models of every architecture with every special feature switched on, two ways
# (`moe synth`, and llama.cpp's gguf-py writer via testdata/reference-archs/make_models.py with new seeds), plus
# their quantized siblings, and runs bench/parity_llama.sh on each. Prints a markdown table at the end.
#
#   bench/parity_models.sh [OUT_DIR]        (default: a temporary folder, removed at the end)
#
# Needs what parity_llama.sh needs, and MAKE_MODELS (default /work/shared/testdata/reference-archs/make_models.py).
# Exit status 1 if any model fails parity.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
moe=${MOE:-$root/build/moe}
py=${PYTHON:-/usr/bin/python3}
llama_dir=${LLAMA_DIR:-/work/llama.cpp}
make_models=${MAKE_MODELS:-/work/shared/testdata/reference-archs/make_models.py}
if [ $# -ge 1 ]; then out=$1; mkdir -p "$out"; else out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
summary=$out/summary.tsv
: > "$summary"
fail=0
check() {  # check FILE HOW
  rm -f "$summary.one"
  SUMMARY=$summary.one "$here/parity_llama.sh" "$1" || fail=1
  # No summary line: a side could not run the model at all (parity_llama.sh said why).
  [ -s "$summary.one" ] || printf '%s\t-\t-\t0\t0\t0\tERROR\n' "$(basename "$1")" > "$summary.one"
  sed "s|\$|\t$2|" "$summary.one" >> "$summary"
  rm -f "$summary.one"
}
synth() {  # synth NAME ARGS...: writes NAME.gguf with `moe synth ARGS` and checks it
  name=$1; shift
  "$moe" synth "$@" --vocab 512 --ctx 256 -t 1 -o "$out/$name.gguf" >/dev/null
  check "$out/$name.gguf" "moe synth"
}

# --- moe synth: every feature on. deepseek2 in the four attention forms (split / legacy kv_b, q_lora 0 / > 0),
# each with YaRN from a short original context, expert groups, routed scale, dense leading layer, shared experts.
ds="--arch deepseek2 --layers 3 --hidden 128 --heads 4 --experts 8 --top-k 3 --expert-ffn 32 --kv-lora 32
    --nope-dim 32 --rope-dim 16 --v-head-dim 32 --dense-layers 1 --shared-experts 2 --expert-groups 4
    --groups-used 2 --routed-scale 2.5 --yarn-factor 8 --yarn-orig-ctx 32 --ffn 96"
for form in split kvb; do
  for ql in 0 64; do
    extra="--q-lora $ql"; [ $form = kvb ] && extra="$extra --kv-b"
    for t in f32 q8_0; do
      synth synth-deepseek2-$form-qlora$ql-$t $ds $extra --type $t --seed 41
    done
  done
done
# gpt-oss: window 4 < every prompt, sinks, q wider than hidden, GQA; then the same with YaRN as real files carry it
# (factor 32 from 4096, theta 150000), and with a short original context so that the ramp covers every pair.
oss="--arch gpt-oss --layers 4 --hidden 128 --heads 6 --kv-heads 2 --head-dim 32 --experts 8 --top-k 3
     --expert-ffn 32 --window 4 --rope-theta 150000"
for t in f32 mxfp4; do
  synth synth-gptoss-$t $oss --type $t --seed 42
  synth synth-gptoss-yarn32-$t $oss --yarn-factor 32 --yarn-orig-ctx 4096 --type $t --seed 42
  synth synth-gptoss-yarn8s-$t $oss --yarn-factor 8 --yarn-orig-ctx 16 --type $t --seed 42
done
# glm4moe: partial rope, q/k norms, biases, dense layer, 2 shared experts, scale; also with expert groups.
glm="--arch glm4moe --layers 3 --hidden 96 --heads 6 --kv-heads 2 --head-dim 48 --rope-dim 16 --experts 12
     --top-k 3 --expert-ffn 32 --shared-experts 2 --dense-layers 1 --routed-scale 1.5 --ffn 192"
for t in f32 q8_0; do
  synth synth-glm4moe-$t $glm --type $t --seed 43
  synth synth-glm4moe-groups-$t $glm --expert-groups 4 --groups-used 2 --type $t --seed 43
done
# smallthinker: the sliding_window switch (NoPE layers 0 and 4), MQA, tied output.
st="--arch smallthinker --layers 5 --hidden 96 --heads 3 --kv-heads 1 --head-dim 32 --experts 8 --top-k 3
    --expert-ffn 32 --window 6 --tied"
for t in f32 q8_0; do
  synth synth-smallthinker-$t $st --type $t --seed 44
done
# The older architectures (olmoe without GQA: llama.cpp wants its k norm n_embd wide).
for a in qwen3moe qwen2moe olmoe; do
  kvh=2; [ $a = olmoe ] && kvh=4
  for t in f32 q8_0; do
    synth synth-$a-$t --arch $a --layers 2 --hidden 128 --heads 4 --kv-heads $kvh --experts 8 --top-k 2 --expert-ffn 64 \
      --type $t --seed 45
  done
done

# --- llama.cpp's gguf-py writer: the reference-archs models with new seeds, quantized by libllama.
GGUF_PY=$llama_dir/gguf-py "$py" "$make_models" --seeds 5001,5002,5003,5004 --out "$out" > /dev/null
q=$root/build/llama_logits/llama_logits   # compiled by the first parity_llama.sh run above
for m in deepseek2-small deepseek2-kvb-small glm4moe-small smallthinker-small gptoss-small; do
  mv "$out/$m-f32.gguf" "$out/gguf-py-$m-f32.gguf"
  check "$out/gguf-py-$m-f32.gguf" "gguf-py (make_models.py, seeds 5001-5004)"
  if [ $m = gptoss-small ]; then qt=mxfp4_moe; else qt=q8_0; fi
  "$q" --quantize "$out/gguf-py-$m-f32.gguf" "$out/gguf-py-$m-$qt.gguf" $qt
  check "$out/gguf-py-$m-$qt.gguf" "gguf-py + llama_model_quantize $qt"
done
# One architecture detail changed per copy (make_models.py --perturb, default seeds).
for p in deepseek2:no_groups deepseek2:no_yarn deepseek2:no_yarn_log_mul deepseek2:softmax_gating \
         deepseek2:no_topk_norm gptoss:swa_pattern3 gptoss:swa64 glm4moe:full_rope glm4moe:no_qk_norm \
         glm4moe:no_topk_norm smallthinker:no_swa_key smallthinker:softmax_gating; do
  f=$out/gguf-py-perturb-$(echo $p | tr : -).gguf
  GGUF_PY=$llama_dir/gguf-py "$py" "$make_models" --perturb $p --perturb-out "$f" > /dev/null
  check "$f" "gguf-py (make_models.py --perturb $p)"
done
# gpt-oss with YaRN written by gguf-py: the gguf-py gpt-oss model above plus the three keys real files carry.
for yarn in "32 4096 yarn32" "8 16 yarn8s"; do
  set -- $yarn
  f=$out/gguf-py-gptoss-$3-f32.gguf
  GGUF_PY=$llama_dir/gguf-py "$py" - "$out/gguf-py-gptoss-small-f32.gguf" "$f" "$1" "$2" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["GGUF_PY"])
import gguf
# A copy through gguf-py's reader and writer (as its gguf_new_metadata.py does) with three keys added.
src, dst, factor, orig = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
reader = gguf.GGUFReader(src, "r")
arch = reader.fields["general.architecture"].contents()
writer = gguf.GGUFWriter(dst, arch=arch, endianess=reader.endianess)
T = gguf.GGUFValueType
for field in reader.fields.values():
    if field.name == "general.architecture" or field.name.startswith("GGUF."):
        continue  # written by GGUFWriter itself
    t = field.types[0]
    writer.add_key_value(field.name, field.contents(), t, sub_type=field.types[-1] if t == T.ARRAY else None)
writer.add_string(f"{arch}.rope.scaling.type", "yarn")
writer.add_float32(f"{arch}.rope.scaling.factor", factor)
writer.add_uint32(f"{arch}.rope.scaling.original_context_length", orig)
for t in reader.tensors:
    writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_ti_data_to_file()
for t in reader.tensors:
    writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
writer.close()
EOF
  check "$f" "gguf-py (gpt-oss + YaRN keys, factor $1 from $2)"
  "$q" --quantize "$f" "${f%-f32.gguf}-mxfp4_moe.gguf" mxfp4_moe
  check "${f%-f32.gguf}-mxfp4_moe.gguf" "gguf-py + YaRN keys + llama_model_quantize mxfp4_moe"
done

echo
echo "| model | how made | tensor types | max abs diff | top-10 identical (prompts) | greedy identical (prompts) | result |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %d/%d | %d/%d | %s |\n", $1, $8, $2, $3, $4, $6, $5, $6, $7 }' "$summary"
exit $fail
