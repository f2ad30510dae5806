#!/usr/bin/env bash
# The test command (README, CI): Release build + every test, then the bad-input and kernel tests again under
# AddressSanitizer/UBSan, then bounded libFuzzer runs of the GGUF parser, the tokenizer, the Jinja templates,
# the template JSON context and the server's request parser.
# Oracle data is read from ../shared/testdata (or $MOE_TESTDATA); without it those tests report as skipped.
# Set MOE_TEST_QUICK=1 to skip the sanitizer and fuzz stages.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== release build and tests"
scripts/build.sh -DMOE_BUILD_BENCH=OFF  # the benchmarks are not tests; scripts/build.sh alone builds them
(cd build && ctest --output-on-failure -j"$jobs")

[ "${MOE_TEST_QUICK:-0}" = "1" ] && exit 0

echo "== AddressSanitizer + UBSan build: parsers, bad input, kernels"
# -O1 with line tables only: half the build time of -O2 -g on 2 cores (6 vs 11.5 min), same test time.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DMOE_ASAN=ON -DMOE_BUILD_BENCH=OFF >/dev/null
# Only the test binaries whose suites the sanitizer run covers (and moe, which the CLI tests drive).
# Parity and training run only in the release stage, and so do the bundled-model generation test (90 s under ASan)
# and the 650 template renderings through the CLI (215 s under ASan, 29 s in release; the Jinja tests, the snippet
# corpus and the Jinja fuzzers still run under the sanitizers): the whole run must stay well under 30 minutes on 2
# cores.
asan_suites="Gguf|ModelErrors|Cli|Router|Dispatch|MoeFfn|Quant|Tokenizer|Jinja|Template|Simd|Prune|Profiler|Steering|ServeApi"
asan_targets=$(grep -lE "TEST(_F|_P)?\(\w*(${asan_suites})\w*," tests/test_*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
cmake --build build-asan -j"$jobs" --target moe $asan_targets
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" -R "$asan_suites" -E "_NOT_BUILT|Cli.BundledDefaultModel|TrainCli|TemplatesVsJinja2.EveryTemplateAndConversation")

# libFuzzer (ASan + UBSan), bounded: the GGUF parser 30 s, the tokenizer, the Jinja template parser/renderer
# and `moe template`'s JSON context 15 s each, the server's request parser 10 s (MOE_FUZZ_SECONDS sets all five;
# the whole CI run took 25 min on 2 cores with 40/20/20/20/15 s, so these keep it further from 30). A finding fails the run; the
# input that triggered it is left in build-fuzz/artifacts/. UBSan stops at its first report, as ASan does.
fuzz_secs="${MOE_FUZZ_SECONDS:-}"
echo "== fuzzing: GGUF parser, tokenizer, Jinja templates, template JSON context"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOE_BUILD_FUZZ=ON \
  -DMOE_BUILD_TESTS=OFF -DMOE_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_gguf fuzz_tokenizer fuzz_jinja fuzz_template_context fuzz_serve_request
td="${MOE_TESTDATA:-../shared/testdata}"
corpus=build-fuzz/corpus_gguf
mkdir -p "$corpus" build-fuzz/artifacts
build/moe synth --arch qwen3moe --layers 1 --hidden 32 --heads 2 --kv-heads 1 --experts 2 --top-k 1 \
  --expert-ffn 32 --vocab 260 --type q8_0 -o "$corpus/seed-qwen3moe.gguf" 2>/dev/null
build/moe synth --arch llama --experts 0 --layers 1 --hidden 32 --heads 2 --kv-heads 2 --ffn 32 \
  --vocab 260 --type f16 -o "$corpus/seed-llama.gguf" 2>/dev/null
[ -f "$td/reference/stories260K-f32.gguf" ] && cp "$td/reference/stories260K-f32.gguf" "$corpus/seed-stories.gguf"
python3 fuzz/make_seeds.py "$td" build-fuzz
run_fuzzer() {  # NAME SECONDS ARGS...: one line of libFuzzer's summary, or its whole report on a finding
  local name=$1 secs=$2 log=build-fuzz/$1.log
  shift 2
  echo "-- $name (${secs} s)"
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-fuzz/"$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=build-fuzz/artifacts/"$name"- "$@" >"$log" 2>&1; then
    grep -v '^"' "$log" | tail -n 60
    echo "$name found a bug (log $log)" >&2
    return 1
  fi
  grep -E '^Done [0-9]+ runs' "$log"
}
run_fuzzer fuzz_gguf "${fuzz_secs:-30}" -max_len=65536 "$corpus"
run_fuzzer fuzz_tokenizer "${fuzz_secs:-15}" -max_len=4096 build-fuzz/corpus_tokenizer
# Nesting depth is bounded by the parser itself (256 levels; docs/tokenizer.md), whatever -max_len allows.
run_fuzzer fuzz_jinja "${fuzz_secs:-15}" -max_len=4096 -dict=fuzz/jinja.dict build-fuzz/corpus_jinja
if [ -d "$td/templates" ]; then
  MOE_FUZZ_TEMPLATES="$td/templates" run_fuzzer fuzz_template_context "${fuzz_secs:-15}" -max_len=16384 \
    -dict=fuzz/template_context.dict build-fuzz/corpus_context
else
  echo "-- fuzz_template_context not run: it renders the chat templates of $td/templates, which is missing"
fi
# The server's request parser (the first byte picks chat or completions).
mkdir -p build-fuzz/corpus_serve
{ printf '\001'; cat fuzz/serve_seeds/chat.json; } >build-fuzz/corpus_serve/seed-chat
{ printf '\000'; cat fuzz/serve_seeds/completion.json; } >build-fuzz/corpus_serve/seed-completion
run_fuzzer fuzz_serve_request "${fuzz_secs:-10}" -max_len=4096 -dict=fuzz/serve_request.dict build-fuzz/corpus_serve
echo "== all tests passed"
