// Tokenizer throughput on the State of the Union corpus (10.8 MB of English): encode and decode, in MB/s of
// text, for a byte-level BPE vocabulary (deepseek-coder), a SentencePiece one (llama-spm) and Qwen3's
// (151k tokens, through the tokenizer.json converter). The test data folder comes from $MOE_TESTDATA or
// ../shared/testdata next to the source tree.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <unistd.h>

#include "format/gguf.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

std::string testdata_dir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MOE_TESTDATA")) candidates.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / "../../shared/testdata");  // <repo>/build/bench_tokenizer
    candidates.push_back(exe.parent_path() / "../shared/testdata");
  }
  candidates.emplace_back("../shared/testdata");
  for (const auto& c : candidates)
    if (fs::is_directory(c / "tokenizer")) return fs::canonical(c).string();
  return "";
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Loaded once per process: the benchmark measures encode/decode, not loading.
const moe::Tokenizer* vocabulary(const std::string& name) {
  static std::map<std::string, std::unique_ptr<moe::Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  const std::string dir = testdata_dir();
  if (dir.empty()) return nullptr;
  std::unique_ptr<moe::Tokenizer> tok;
  if (name == "qwen3-json") {
    tok = std::make_unique<moe::Tokenizer>(
        moe::Tokenizer::from_metadata(moe::tokenizer_metadata_from_hf(dir + "/tokenizer/hf/qwen3/tokenizer.json")));
  } else {
    moe::GgufFile f(dir + "/tokenizer/gguf/ggml-vocab-" + name + ".gguf");
    tok = std::make_unique<moe::Tokenizer>(moe::Tokenizer::from_gguf(f));
  }
  return cache.emplace(name, std::move(tok)).first->second.get();
}

const std::string& sotu() {
  static const std::string text = [] {
    const std::string dir = testdata_dir();
    return dir.empty() ? std::string() : read_all(dir + "/corpus/sotu-1790-2021.txt");
  }();
  return text;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const moe::Tokenizer* tok = vocabulary(name);
  if (!tok || sotu().empty()) {
    state.SkipWithError("no test data (set MOE_TESTDATA)");
    return;
  }
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(sotu(), false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * sotu().size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n_tokens * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const moe::Tokenizer* tok = vocabulary(name);
  if (!tok || sotu().empty()) {
    state.SkipWithError("no test data (set MOE_TESTDATA)");
    return;
  }
  const auto ids = tok->encode(sotu(), false, false);
  for (auto _ : state) {
    auto text = tok->decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * sotu().size()));
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, deepseek_coder, std::string("deepseek-coder"))->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_Encode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_Encode, qwen3_json, std::string("qwen3-json"))->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_Decode, deepseek_coder, std::string("deepseek-coder"))->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK_CAPTURE(BM_Decode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond)->Iterations(5);

BENCHMARK_MAIN();
