// End-to-end parity with llama.cpp: logits for every prompt position and greedy continuations, for every
// model in testdata/reference (see its README for how they were produced).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "model/context.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "support/reference.h"
#include "support/testdata.h"

using namespace moe;
using namespace moe::test;

namespace {

struct Case {
  std::string model;  // file stem in reference/
  bool exact;         // F32: top-10 ids equal; quantized: top-5 overlap
  float tol;          // bound on max |logit - llama.cpp's logit|, prompt rows and greedy steps
};

// Tolerances at what we measure (max |diff| over the 3 prompts, prompt rows / teacher-forced greedy steps, 2 threads,
// 2026-12-05): qwen3moe-tiny-f32 3.0e-6 / 1.9e-6, llama-moe-tiny-f32 5.3e-6 / 2.4e-6, stories260K-f32 1.4e-5 /
// 7.6e-6 (logits up to 22); q8_0 7.2e-7 / 2.0e-2, tiny-q4_k_m 6.9e-2 / 3.1e-2, h256-q4_k_m 5.3e-6 / 5.4e-2. The
// quantized files differ where a rounding of the quantized activations flips (reference/README.md); most rows
// agree to 1e-6.
const Case kCases[] = {
    {"qwen3moe-tiny-f32", true, 1e-4f},   {"llama-moe-tiny-f32", true, 1e-4f},   {"stories260K-f32", true, 1e-4f},
    {"qwen3moe-tiny-q8_0", false, 0.1f}, {"qwen3moe-tiny-q4_k_m", false, 0.1f}, {"qwen3moe-h256-q4_k_m", false, 0.1f},
};

class Parity : public ::testing::TestWithParam<Case> {};

TEST_P(Parity, PromptLogitsMatchLlamaCpp) {
  MOE_REQUIRE_TESTDATA();
  const Case& c = GetParam();
  const std::string ref = testdata_path("reference/");
  auto model = Model::load(ref + c.model + ".gguf");
  ThreadPool pool(2);
  const int n_vocab = model->config().n_vocab;
  for (int p = 1; p <= 3; ++p) {
    const std::string stem = ref + c.model + ".prompt" + std::to_string(p);
    auto ids = read_ids(stem + ".tokens.txt");
    auto expect = read_f32(stem + ".logits.f32");
    ASSERT_EQ(expect.size(), ids.size() * static_cast<size_t>(n_vocab));
    Context ctx(*model, pool, {.n_ctx = 512});
    std::vector<float> logits(expect.size());
    ctx.decode(ids, logits.data(), true);
    float worst = 0;
    int top5_overlap_min = 5;
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* a = logits.data() + t * n_vocab;
      const float* b = expect.data() + t * n_vocab;
      worst = std::max(worst, max_abs_diff(a, b, n_vocab));
      if (c.exact) {
        EXPECT_EQ(top_k(a, n_vocab, 10), top_k(b, n_vocab, 10)) << stem << " position " << t;
      } else {
        auto ta = top_k(a, n_vocab, 5), tb = top_k(b, n_vocab, 5);
        int overlap = 0;
        for (int x : ta) overlap += std::count(tb.begin(), tb.end(), x) ? 1 : 0;
        top5_overlap_min = std::min(top5_overlap_min, overlap);
      }
    }
    EXPECT_LE(worst, c.tol) << stem;
    if (!c.exact) EXPECT_GE(top5_overlap_min, 4) << stem;
    std::printf("%s prompt%d: %zu tokens, max |diff| %.3g\n", c.model.c_str(), p, ids.size(), worst);
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, Parity, ::testing::ValuesIn(kCases),
                         [](const auto& info) {
                           std::string n = info.param.model;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace

namespace {

// One line of greedy16.top10.txt: "step chosen id:logit id:logit ..."
struct StepTop {
  int chosen;
  std::vector<std::pair<int, float>> top;
};

std::vector<StepTop> read_top10(const std::string& path) {
  std::vector<StepTop> steps;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    int step;
    StepTop s;
    if (!(ls >> step >> s.chosen)) continue;
    std::string item;
    while (ls >> item) {
      auto colon = item.find(':');
      s.top.emplace_back(std::stoi(item.substr(0, colon)), std::stof(item.substr(colon + 1)));
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

int argmax(const std::vector<float>& v) { return top_k(v.data(), v.size(), 1)[0]; }

// Teacher-forced: feed llama.cpp's greedy ids one at a time (1-token decodes through the KV cache) and compare
// each step's logits with the recorded top-10. Free-running greedy must choose llama.cpp's id at every step whose
// recorded margin between the two best logits exceeds the tolerance; at a closer step where our choice differs,
// llama.cpp's id is fed instead, so the later steps are still checked (the check used to stop at the first).
void check_greedy(const Case& c, const std::string& stem, const std::vector<int32_t>& prompt, int n_steps) {
  auto model = Model::load(testdata_path("reference/" + c.model + ".gguf"));
  ThreadPool pool(2);
  const int n_vocab = model->config().n_vocab;
  auto greedy = read_ids(stem + ".txt");
  auto tops = read_top10(stem + ".top10.txt");
  ASSERT_EQ(static_cast<int>(greedy.size()), n_steps);
  ASSERT_EQ(static_cast<int>(tops.size()), n_steps);
  // The recorded logits have 6 decimals: half a unit in the last place on top of the tolerance.
  const float tol = c.tol + 5e-7f;
  const float decisive = tol;

  Context forced(*model, pool, {.n_ctx = 512});
  std::vector<float> logits(n_vocab);
  forced.decode(prompt, logits.data(), false);
  float worst = 0;
  for (int s = 0; s < n_steps; ++s) {
    for (auto [id, val] : tops[s].top) {
      EXPECT_NEAR(logits[id], val, tol) << stem << " step " << s << " id " << id;
      worst = std::max(worst, std::abs(logits[id] - val));
    }
    const float margin = tops[s].top[0].second - tops[s].top[1].second;
    if (margin > decisive) {
      EXPECT_EQ(argmax(logits), greedy[s]) << stem << " step " << s;
    }
    forced.decode(std::vector<int32_t>{greedy[s]}, logits.data(), false);
  }

  Context run(*model, pool, {.n_ctx = 512});
  run.decode(prompt, logits.data(), false);
  int compared = 0, resynced = 0;
  for (int s = 0; s < n_steps; ++s) {
    const float margin = tops[s].top[0].second - tops[s].top[1].second;
    int id = argmax(logits);
    if (margin > decisive) {
      ++compared;
      ASSERT_EQ(id, greedy[s]) << stem << " free-running step " << s << " (margin " << margin << ")";
    } else if (id != greedy[s]) {
      id = greedy[s];
      ++resynced;
    }
    run.decode(std::vector<int32_t>{id}, logits.data(), false);
  }
  std::printf("%s: greedy-step max |diff| %.3g; free-running ids compared at %d of %d steps (%d near-ties resynced)\n",
              stem.substr(stem.rfind('/') + 1).c_str(), worst, compared, n_steps, resynced);
}

TEST_P(Parity, GreedyContinuationsMatchLlamaCpp) {
  MOE_REQUIRE_TESTDATA();
  const Case& c = GetParam();
  for (int p = 1; p <= 3; ++p) {
    const std::string stem = testdata_path("reference/" + c.model + ".prompt" + std::to_string(p));
    check_greedy(c, stem + ".greedy16", read_ids(stem + ".tokens.txt"), 16);
  }
}

TEST(ParityStories, TwoHundredGreedyStepsFromBosAndFromPrompt) {
  MOE_REQUIRE_TESTDATA();
  const Case c = kCases[2];
  ASSERT_EQ(c.model, "stories260K-f32");
  auto model = Model::load(testdata_path("reference/stories260K-f32.gguf"));
  const Tokenizer tok = Tokenizer::from_gguf(model->file());
  ThreadPool pool(2);
  const int n_vocab = model->config().n_vocab;
  for (const char* run : {"once", "bos"}) {
    const std::string stem = testdata_path(std::string("reference/stories260K-f32.") + run);
    const auto prompt = read_ids(stem + ".tokens.txt");
    // Prompt rows, as for the three prompts.
    const auto expect = read_f32(stem + ".logits.f32");
    ASSERT_EQ(expect.size(), prompt.size() * static_cast<size_t>(n_vocab));
    Context ctx(*model, pool, {.n_ctx = 512});
    std::vector<float> logits(expect.size());
    ctx.decode(prompt, logits.data(), true);
    EXPECT_LE(max_abs_diff(logits.data(), expect.data(), expect.size()), c.tol) << stem;
    check_greedy(c, stem + ".greedy200", prompt, 200);
    // The text: llama2.c's run.c prints these bytes (the bos run's equal its test_all.py expected_stdout).
    std::vector<int32_t> all = prompt;
    const auto greedy = read_ids(stem + ".greedy200.txt");
    all.insert(all.end(), greedy.begin(), greedy.end());
    EXPECT_EQ(tok.decode(all, true), read_file(stem + ".greedy200.text.txt")) << stem;
  }
}

}  // namespace
