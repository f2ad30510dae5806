// The expert-surgery commands end to end: profile -> stats + heatmaps, prune by every method, steer-find, and
// bad requests (stats from another model, out-of-range experts, keep counts of 0 or above the expert count,
// missing files) that fail with a clear one-line error and write no output file.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/synth.h"
#include "support/testdata.h"

using namespace moe;
using moe::test::run_moe;

namespace {

struct Fixture {
  std::string dir, model, other, text_a, text_b, stats;
};

const Fixture& fixture() {
  static Fixture f;
  if (!f.dir.empty()) return f;
  f.dir = moe::test::scratch_dir("cli_experts");
  SynthSpec s;
  s.layers = 2;
  s.hidden = 64;
  s.experts = 8;
  s.top_k = 2;
  s.expert_ffn = 32;
  s.vocab = 300;
  f.model = f.dir + "/a.gguf";
  write_synth_model(s, f.model);
  s.experts = 6;  // same shapes otherwise: a different model all the same
  f.other = f.dir + "/b.gguf";
  write_synth_model(s, f.other);
  std::string a, b;
  for (int i = 0; i < 60; ++i) {
    a += "def f" + std::to_string(i) + "(x): return x * " + std::to_string(i) + "\n";
    b += "The whale swam under the ship number " + std::to_string(i) + " at dawn.\n";
  }
  f.text_a = f.dir + "/code.txt";
  f.text_b = f.dir + "/prose.txt";
  moe::test::write_file(f.text_a, a);
  moe::test::write_file(f.text_b, b);
  f.stats = f.dir + "/stats";
  auto r = run_moe({"profile", "-m", f.model, "--text", f.text_a, "--text", f.text_b, "--task", "code", "--task",
                    "prose", "--ctx", "64", "--out", f.stats});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return f;
}

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

}  // namespace

TEST(CliExperts, ProfileWritesStatsAndHeatmaps) {
  const auto& f = fixture();
  for (const char* suffix : {".json", ".code.svg", ".prose.svg", ".diff.svg"})
    EXPECT_TRUE(std::filesystem::exists(f.stats + suffix)) << suffix;
}

TEST(CliExperts, PruneByEveryMethodLoadsWithFewerExperts) {
  const auto& f = fixture();
  for (const char* method : {"freq", "tcess", "reap", "random"}) {
    const std::string out = f.dir + "/pruned-" + method + ".gguf";
    auto r = run_moe({"prune", "-m", f.model, "--stats", f.stats + ".json", "--task", "code", "--keep", "4", "--method",
                      method, "-o", out});
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    auto info = run_moe({"info", out});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("4 routed"), std::string::npos) << info.out;
    auto gen = run_moe({"run", "-m", out, "--tokens", "1,2,3", "-n", "4", "--print-ids"});
    EXPECT_EQ(gen.exit_code, 0) << gen.err;
  }
}

TEST(CliExperts, BadRequestsFailWithOneLineAndWriteNothing) {
  const auto& f = fixture();
  const std::string out = f.dir + "/must-not-exist.gguf";
  struct Case {
    std::vector<std::string> args;
    int code;
  };
  const std::string st = f.stats + ".json";
  for (const Case& c : std::vector<Case>{
           {{"prune", "-m", f.other, "--stats", st, "--keep", "4", "-o", out}, 2},          // stats of another model
           {{"prune", "-m", f.model, "--stats", st, "--keep", "0", "-o", out}, 2},          // keep 0
           {{"prune", "-m", f.model, "--stats", st, "--keep", "9", "-o", out}, 2},          // keep > experts
           {{"prune", "-m", f.model, "--stats", st, "--keep-frac", "1.5", "-o", out}, 2},   // fraction > 1
           {{"prune", "-m", f.model, "--stats", st, "--keep", "4", "--task", "poetry", "-o", out}, 2},
           {{"prune", "-m", f.model, "--keep", "4", "--method", "freq", "-o", out}, 2},     // no stats
           {{"prune", "-m", f.model, "--stats", f.dir + "/nope.json", "--keep", "4", "-o", out}, 1},
           {{"prune", "-m", f.model, "--stats", f.text_a, "--keep", "4", "-o", out}, 1},   // not a stats file
           {{"profile", "-m", f.model, "--text", f.dir + "/nope.txt", "--out", f.dir + "/x"}, 1},
           {{"steer-find", "-m", f.model, "--with", f.text_a, "--without", f.dir + "/nope.txt"}, 1},
           {{"run", "-m", f.model, "--tokens", "1,2", "--ban", "2:0"}, 2},                   // layer out of range
           {{"run", "-m", f.model, "--tokens", "1,2", "--ban", "0:8"}, 2},                   // expert out of range
           {{"run", "-m", f.model, "--tokens", "1,2", "--force", "0:-1"}, 2},
           {{"run", "-m", f.model, "--tokens", "1,2", "--ban", "0:1", "--force", "0:1"}, 2},  // both
           {{"run", "-m", f.model, "--tokens", "1,2", "--experts-k", "9"}, 2},
           {{"run", "-m", f.model, "--tokens", "1,2", "--experts-from", f.dir + "/nope.json"}, 1},
       }) {
    auto r = run_moe(c.args);
    std::string what;
    for (const auto& a : c.args) what += a + " ";
    EXPECT_EQ(r.exit_code, c.code) << what << "-> " << r.err;
    EXPECT_TRUE(one_line(r.err)) << what << "-> [" << r.err << "]";
    EXPECT_FALSE(std::filesystem::exists(out)) << what;
  }
}

TEST(CliExperts, SteerFindRanksExpertsAndWritesABanFile) {
  const auto& f = fixture();
  const std::string ban = f.dir + "/ban.steer";
  auto r = run_moe({"steer-find", "-m", f.model, "--with", f.text_a, "--without", f.text_b, "--top", "3", "--ctx", "64",
                    "--steer-out", ban});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(ban));
  auto run = run_moe({"run", "-m", f.model, "--tokens", "1,2,3", "-n", "3", "--steer-file", ban, "--print-ids"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
}
