// `moe train` from the command line: a small run writes a loadable GGUF, checkpoint, loss curve and metrics
// with the progress line; bad input (unknown flags, impossible configs, missing files, corrupt checkpoints)
// gives one clear line and a non-zero exit, and leaves no half-written files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/model.h"
#include "support/testdata.h"

using namespace moe;
namespace fs = std::filesystem;

namespace {

std::string corpus(const std::string& dir) {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "It was the best of times, it was the worst of times. Line " + std::to_string(i % 37) + "\n";
  test::write_file(dir + "/c.txt", text);
  return dir + "/c.txt";
}

std::vector<std::string> small(const std::string& c, const std::string& out) {
  return {"train", "--train", c, "--out", out, "--steps", "6", "--layers", "1", "--hidden", "32", "--heads", "2",
          "--kv-heads", "2", "--head-dim", "16", "--experts", "4", "--top-k", "2", "--expert-ffn", "16", "--ctx",
          "32", "--batch", "2", "--log-every", "3", "--threads", "1"};
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST(TrainCli, SmallRunWritesEverything) {
  const std::string dir = test::scratch_dir("train_cli_run");
  auto r = test::run_moe(small(corpus(dir), dir + "/out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Progress lines: step, loss, lr, tokens/s, ETA and the per-layer expert load.
  EXPECT_NE(r.err.find("step 3/6 | loss "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" tok/s | ETA "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("load max/mean "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("val_bpb"), std::string::npos) << r.out;
  for (const char* f : {"model.gguf", "checkpoint.bin", "loss.svg", "metrics.jsonl"})
    EXPECT_TRUE(fs::exists(dir + "/out/" + f)) << f;
  EXPECT_NE(test::read_file(dir + "/out/loss.svg").find("<svg"), std::string::npos);
  auto m = Model::load(dir + "/out/model.gguf");
  EXPECT_EQ(m->config().n_expert, 4);
  EXPECT_TRUE(m->config().router.norm_topk);
}

TEST(TrainCli, BadInputGivesOneClearLine) {
  const std::string dir = test::scratch_dir("train_cli_bad");
  const std::string c = corpus(dir);
  struct Bad {
    std::vector<std::string> extra;
    int code;
    const char* message;
  };
  const std::vector<Bad> cases = {
      {{"--no-such-flag"}, 2, "no-such-flag"},
      {{"--top-k", "5"}, 2, "--top-k 5 exceeds the 4 experts"},
      {{"--router", "moge", "--groups", "3"}, 2, "--groups 3 does not divide --experts 4"},
      {{"--router", "moge", "--groups", "4", "--top-k", "2"}, 2, "--groups 4 does not divide --top-k 2"},
      {{"--router", "bogus"}, 2, "--router must be"},
      {{"--heads", "3", "--kv-heads", "2"}, 2, "--heads must be a positive multiple of --kv-heads"},
      {{"--lr", "-1"}, 2, "--lr must be positive"},
      {{"--router", "dts", "--gating", "sigmoid"}, 2, "--dts needs softmax gating"},
  };
  for (const Bad& b : cases) {
    auto args = small(c, dir + "/out");
    args.insert(args.end(), b.extra.begin(), b.extra.end());
    auto r = test::run_moe(args);
    EXPECT_EQ(r.exit_code, b.code) << r.err;
    EXPECT_NE(r.err.find(b.message), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/out/model.gguf"));
    EXPECT_FALSE(fs::exists(dir + "/out/checkpoint.bin"));
  }
  auto r = test::run_moe({"train", "--train", dir + "/missing.txt", "--out", dir + "/out2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("training file not found: " + dir + "/missing.txt"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  r = test::run_moe({"train", "--out", dir + "/out3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--train"), std::string::npos) << r.err;
}

TEST(TrainCli, CorruptOrMissingCheckpointIsRefused) {
  const std::string dir = test::scratch_dir("train_cli_ckpt");
  auto args = small(corpus(dir), dir + "/out");
  args.insert(args.end(), {"--stop-after", "3"});
  auto r = test::run_moe(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ckpt = dir + "/out/checkpoint.bin";
  std::string bytes = test::read_file(ckpt);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  test::write_file(dir + "/flipped.bin", flipped);
  test::write_file(dir + "/truncated.bin", bytes.substr(0, bytes.size() / 3));
  test::write_file(dir + "/garbage.bin", "not a checkpoint at all");
  for (const char* f : {"flipped.bin", "truncated.bin", "garbage.bin", "nonexistent.bin"}) {
    r = test::run_moe({"train", "--resume", dir + "/" + f, "--out", dir + "/out"});
    EXPECT_EQ(r.exit_code, 1) << f << ": " << r.err;
    EXPECT_NE(r.err.find(dir + "/" + f), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
  EXPECT_EQ(test::read_file(ckpt), bytes);  // the good checkpoint is untouched
  EXPECT_FALSE(fs::exists(dir + "/out/model.gguf"));
}

TEST(TrainCli, BenchReportsTokensPerSecond) {
  auto r = test::run_moe({"train", "--bench", "--bench-steps", "1", "--layers", "1", "--hidden", "32", "--heads", "2",
                          "--kv-heads", "2", "--head-dim", "16", "--experts", "4", "--top-k", "2", "--expert-ffn",
                          "16", "--ctx", "16", "--batch", "2", "--vocab-size", "300", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(std::stod(r.out), 0.0);
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
}
