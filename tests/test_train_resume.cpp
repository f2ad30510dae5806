// `moe train --resume` continues bit-identically: N steps straight == N/2 steps, stop, resume, N/2 steps
// (parameters, Adam moments, selection biases and loss curves equal to the bit), also after a real SIGKILL at a
// random moment, for routing options with state (aux-loss-free bias) and noise (EvoMoE gate).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "support/testdata.h"
#include "train/checkpoint.h"

using namespace moe;
using namespace moe::train;
namespace fs = std::filesystem;

extern char** environ;

namespace {

std::string make_corpus(const std::string& dir) {
  std::string text;
  const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "runs", "home"};
  uint32_t s = 12345;
  for (int i = 0; i < 6000; ++i) {
    s = s * 1664525u + 1013904223u;
    text += words[(s >> 16) % 12];
    text += (i % 11 == 10) ? ".\n" : " ";
  }
  const std::string path = dir + "/corpus.txt";
  test::write_file(path, text);
  return path;
}

std::vector<std::string> train_args(const std::string& corpus, const std::string& out, const std::string& router,
                                    int steps) {
  return {"train", "--train", corpus, "--out", out, "--router", router, "--steps", std::to_string(steps),
          "--layers", "2", "--hidden", "32", "--heads", "2", "--kv-heads", "1", "--head-dim", "16",
          "--experts", "4", "--top-k", "2", "--expert-ffn", "32", "--ctx", "32", "--batch", "4", "--accum", "2",
          "--warmup", "3", "--lr", "3e-3", "--eval-every", "5", "--eval-tokens", "256", "--log-every", "2",
          "--threads", "2", "--seed", "9", "--val-fraction", "0.05", "--quiet"};
}

void expect_same_run(const std::string& a, const std::string& b) {
  const Checkpoint x = load_checkpoint(a), y = load_checkpoint(b);
  EXPECT_EQ(x.progress.step, y.progress.step);
  EXPECT_EQ(x.progress.sample, y.progress.sample);
  ASSERT_EQ(x.params.size(), y.params.size());
  EXPECT_EQ(std::memcmp(x.params.data(), y.params.data(), x.params.size() * sizeof(float)), 0) << "params differ";
  EXPECT_EQ(std::memcmp(x.adam_m.data(), y.adam_m.data(), x.adam_m.size() * sizeof(float)), 0) << "Adam m differs";
  EXPECT_EQ(std::memcmp(x.adam_v.data(), y.adam_v.data(), x.adam_v.size() * sizeof(float)), 0) << "Adam v differs";
  EXPECT_EQ(x.sel_bias, y.sel_bias);
  EXPECT_EQ(x.progress.train_curve, y.progress.train_curve);
}

void straight_vs_stopped(const std::string& router, const std::vector<std::string>& extra) {
  const std::string dir = test::scratch_dir("resume_" + router);
  const std::string corpus = make_corpus(dir);
  auto args = [&](const std::string& out, int steps) {
    auto a = train_args(corpus, out, router, steps);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto r = test::run_moe(args(dir + "/straight", 12));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = args(dir + "/stopped", 12);
  a.insert(a.end(), {"--stop-after", "6"});
  r = test::run_moe(a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stopped after step 6"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir + "/stopped/model.gguf"));
  EXPECT_EQ(load_checkpoint(dir + "/stopped/checkpoint.bin").progress.step, 6);
  r = test::run_moe({"train", "--resume", dir + "/stopped/checkpoint.bin", "--out", dir + "/stopped", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(dir + "/straight/checkpoint.bin", dir + "/stopped/checkpoint.bin");
  EXPECT_TRUE(fs::exists(dir + "/stopped/model.gguf"));
  EXPECT_TRUE(fs::exists(dir + "/stopped/loss.svg"));
}

}  // namespace

TEST(TrainResume, TopKStopAndResumeIsBitIdentical) { straight_vs_stopped("topk", {}); }

TEST(TrainResume, AuxLossFreeBiasSurvivesResume) { straight_vs_stopped("auxfree", {"--bias-rate", "0.01"}); }

TEST(TrainResume, DenseToSparseNoiseSurvivesResume) {
  straight_vs_stopped("dts", {"--dts-decay", "8", "--dts-hard-step", "9", "--dts-threshold", "0.05"});
}

TEST(TrainResume, SigkillAtARandomMomentThenResume) {
  const std::string dir = test::scratch_dir("resume_kill");
  const std::string corpus = make_corpus(dir);
  auto base = train_args(corpus, dir + "/straight", "topk", 40);
  base.insert(base.end(), {"--save-every", "2"});
  auto r = test::run_moe(base);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto killed = train_args(corpus, dir + "/killed", "topk", 40);
  killed.insert(killed.end(), {"--save-every", "2"});
  std::vector<char*> argv;
  std::string exe = MOE_CLI_PATH;
  argv.push_back(exe.data());
  for (auto& s : killed) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  const std::string ckpt = dir + "/killed/checkpoint.bin";
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(ckpt) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(std::rand() % 40));  // somewhere mid-run, maybe mid-write
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(fs::exists(ckpt));
  const int64_t at = load_checkpoint(ckpt).progress.step;  // a complete checkpoint, never a torn one
  std::printf("killed the run; its last checkpoint is at step %lld\n", static_cast<long long>(at));
  r = test::run_moe({"train", "--resume", ckpt, "--out", dir + "/killed", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(dir + "/straight/checkpoint.bin", ckpt);
  for (const auto& e : fs::directory_iterator(dir + "/killed"))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << "leftover " << e.path();
}
