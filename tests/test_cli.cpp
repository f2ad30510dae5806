// The command line: help on every command, one-line errors with exit code 2 for bad flags, exit 1 for bad
// files, and the stable hooks (`moe logits`, `moe run --print-ids`) in their documented form.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/synth.h"
#include "support/reference.h"
#include "support/testdata.h"

using namespace moe;
using moe::test::run_moe;

namespace {

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string tiny_model() {
  static std::string path;
  if (path.empty()) {
    path = moe::test::scratch_dir("cli_model") + "/tiny.gguf";
    SynthSpec s;
    s.hidden = 64;
    s.expert_ffn = 32;
    s.vocab = 300;
    write_synth_model(s, path);
  }
  return path;
}

}  // namespace

TEST(Cli, HelpOnEveryCommand) {
  auto top = run_moe({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"info", "run", "logits", "synth"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
    auto r = run_moe({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("--"), std::string::npos) << cmd;
  }
}

TEST(Cli, BadFlagsAreOneLineAndExitTwo) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"frobnicate"},
           {"run", "--no-such-flag"},
           {"run", "-m", tiny_model(), "--tokens", "1,2", "--temp", "-1"},
           {"run", "-m", tiny_model(), "--tokens", "1,x"},
           {"run", "-m", tiny_model(), "--tokens", "1,2", "-n", "abc"},
           {"run", "-m", tiny_model(), "--tokens", "1,999999"},
           {"run", "-m", tiny_model(), "--tokens", "1,2,3", "--ctx", "2"},
           {"run", "-m", tiny_model(), "--tokens", "1,2", "--pack-experts", "later"},
           {"logits", "-m", tiny_model(), "--tokens", "1"},
           {"synth", "--arch", "gpt5", "-o", "/tmp/x.gguf"},
           {"info", "--ctx", "-1", tiny_model()},
       }) {
    auto r = run_moe(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(Cli, BadFilesExitOneWithTheFileNamed) {
  std::string dir = moe::test::scratch_dir("cli_bad");
  moe::test::write_file(dir + "/junk.gguf", "this is not a model at all");
  std::string model = moe::test::read_file(tiny_model());
  moe::test::write_file(dir + "/cut.gguf", model.substr(0, model.size() / 2));
  for (const std::string& f : {dir + "/junk.gguf", dir + "/cut.gguf", dir + "/missing.gguf"}) {
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"info", f}, {"run", "-m", f, "--tokens", "1"}}) {
      auto r = run_moe(args);
      EXPECT_EQ(r.exit_code, 1) << f;
      EXPECT_EQ(count_lines(r.err), 1) << r.err;
      EXPECT_NE(r.err.find(f), std::string::npos) << r.err;
    }
  }
}

TEST(Cli, InfoDescribesTheModel) {
  auto r = run_moe({"info", tiny_model()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"qwen3moe", "8 routed, top-2", "parameters:", "active per token", "tokenizer:", "memory:"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

// `bench --parallel N` decodes N sequences per step and reports the distinct experts a step read, which is what
// bounds batched decoding: between one token's k and min(n_expert, N * k).
TEST(Cli, BenchParallelReportsDistinctExpertsPerStep) {
  auto r = run_moe({"bench", "-m", tiny_model(), "-p", "4", "-n", "3", "-r", "1", "-t", "1", "--bw-mib", "64",
                    "--parallel", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("parallel").get<int>(), 4);
  const double distinct = j.at("tg_distinct_experts_per_layer_step").get<double>();
  EXPECT_GE(distinct, 2.0);  // tiny model: 8 experts, top-2
  EXPECT_LE(distinct, 8.0);
  EXPECT_GT(j.at("tg_tokens_per_s").get<double>(), 0.0);
  // A step of 4 tokens reads the non-expert weights once: fewer bytes per token than one sequence reads.
  EXPECT_LT(j.at("tg_bytes_per_token").get<double>(), j.at("bytes_per_token").get<double>());
  EXPECT_EQ(run_moe({"bench", "-m", tiny_model(), "--parallel", "0"}).exit_code, 2);
}

// `synth --type mxfp4` writes experts in MXFP4 and the other matrices (embeddings included) in Q8_0; info lists
// the types and run generates with both kernel sets alike.
TEST(Cli, SynthMxfp4ExpertsInfoAndRun) {
  const std::string path = moe::test::scratch_dir("cli_mxfp4") + "/mx.gguf";
  auto w = run_moe({"synth", "--layers", "2", "--hidden", "64", "--heads", "2", "--kv-heads", "2", "--experts", "4",
                    "--expert-ffn", "32", "--vocab", "300", "--type", "mxfp4", "-o", path});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto r = run_moe({"info", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mxfp4 x6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("q8_0 x10"), std::string::npos) << r.out;  // q, k, v, output x 2 layers, embd, head
  std::string ids[2];
  for (int i = 0; i < 2; ++i) {
    auto g = run_moe({"run", "-m", path, "--tokens", "5,77,120", "-n", "8", "--temp", "0", "--print-ids",
                      "--ignore-eos", "--kernels", i ? "ref" : "simd"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    ids[i] = g.out;
  }
  EXPECT_FALSE(ids[0].empty());
  EXPECT_EQ(ids[0], ids[1]) << "SIMD and reference kernels chose different tokens";
}

TEST(Cli, LogitsHookAndPrintIdsMatchTheReference) {
  MOE_REQUIRE_TESTDATA();
  const std::string ref = moe::test::testdata_path("reference/qwen3moe-tiny-f32");
  auto ids = moe::test::read_ids(ref + ".prompt1.tokens.txt");
  std::string list;
  for (size_t i = 0; i < ids.size(); ++i) list += (i ? "," : "") + std::to_string(ids[i]);
  std::string out = moe::test::scratch_dir("cli_logits") + "/logits.f32";
  auto r = run_moe({"logits", "-m", ref + ".gguf", "--tokens", list, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ours = moe::test::read_f32(out);
  auto expect = moe::test::read_f32(ref + ".prompt1.logits.f32");
  ASSERT_EQ(ours.size(), expect.size());
  EXPECT_LE(moe::test::max_abs_diff(ours.data(), expect.data(), ours.size()), 1e-3f);

  auto g = run_moe({"run", "-m", ref + ".gguf", "--tokens", list, "-n", "16", "--temp", "0", "--print-ids"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  auto greedy = moe::test::read_ids(ref + ".prompt1.greedy16.txt");
  std::string want;
  for (size_t i = 0; i < greedy.size(); ++i) want += (i ? " " : "") + std::to_string(greedy[i]);
  EXPECT_EQ(g.out, want + "\n");

  // --greedy: the same logits file, then llama.cpp's greedy continuation (bench/parity_llama.sh relies on it).
  auto lg = run_moe({"logits", "-m", ref + ".gguf", "--tokens", list, "--out", out, "--greedy", "16"});
  ASSERT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, want + "\n");
  auto again = moe::test::read_f32(out);
  ASSERT_EQ(again.size(), expect.size());
  EXPECT_LE(moe::test::max_abs_diff(again.data(), expect.data(), again.size()), 1e-3f);
}

// --pack-experts: the experts packed before the first token or on use after the first step, the same tokens
// (a Q8_0 model, so that there is something to pack).
TEST(Cli, PackExpertsAtLoadOrOnUseGiveTheSameTokens) {
  MOE_REQUIRE_TESTDATA();
  const std::string model = moe::test::testdata_path("reference/qwen3moe-tiny-q8_0.gguf");
  std::string out[2];
  for (int i = 0; i < 2; ++i) {
    auto r = run_moe({"run", "-m", model, "--tokens", "5,77,120", "-n", "24", "--temp", "0", "--print-ids",
                      "--pack-experts", i == 0 ? "load" : "use"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    out[i] = r.out;
  }
  EXPECT_FALSE(out[0].empty());
  EXPECT_EQ(out[1], out[0]);
}

TEST(Cli, SameSeedSameTokens) {
  auto a = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2,3", "-n", "20", "--temp", "1.0", "--seed", "42", "--print-ids"});
  auto b = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2,3", "-n", "20", "--temp", "1.0", "--seed", "42", "--print-ids"});
  auto c = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2,3", "-n", "20", "--temp", "1.0", "--seed", "43", "--print-ids"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

// The committed models/default.gguf is what `moe run` and `moe perplexity` use without -m. It must still load,
// generate, and predict text its training held out (the last 1% of each corpus, here the end of the KJV) as
// well as it did when trained: 1.33 bits per byte measured; an untrained model scores ~3.3.
TEST(Cli, BundledDefaultModelGeneratesAndPredictsHeldOutText) {
  MOE_REQUIRE_TESTDATA();
  const std::string kjv = moe::test::read_file(moe::test::testdata_path("corpus/kjv-bible.txt"));
  ASSERT_GT(kjv.size(), 100000u);
  std::string tail = kjv.substr(kjv.size() - 40000);
  tail = tail.substr(tail.find('\n') + 1);
  const std::string path = moe::test::scratch_dir("cli_default") + "/kjv-tail.txt";
  moe::test::write_file(path, tail);
  auto ppl = run_moe({"perplexity", "--text", path, "--ctx", "512", "--json"});
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  const auto j = nlohmann::json::parse(ppl.out);
  EXPECT_LT(j.at("bits_per_byte").get<double>(), 1.45);
  EXPECT_EQ(j.at("bytes").get<int64_t>(), static_cast<int64_t>(tail.size()));

  auto gen = run_moe({"run", "-p", "The President said that", "-n", "16", "--temp", "0", "--ignore-eos"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_GT(gen.out.size(), 16u);
}
