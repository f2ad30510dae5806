// Expert surgery: pruning keeps the file loadable and the outputs on the kept experts; keeping everything is
// an identity on tensor data and logits; bad requests are clear errors that write nothing; steering specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "experts/expert_stats.h"
#include "experts/profiler.h"
#include "experts/prune.h"
#include "experts/steering.h"
#include "format/gguf.h"
#include "model/context.h"
#include "model/synth.h"
#include "support/testdata.h"

using namespace moe;

namespace {

std::string make_model(const std::string& dir, const std::string& arch = "qwen3moe") {
  SynthSpec s;
  s.arch = arch;
  s.layers = 3;
  s.hidden = 64;
  s.heads = 4;
  s.kv_heads = arch == "olmoe" ? 4 : 2;
  s.experts = 8;
  s.top_k = 2;
  s.expert_ffn = 32;
  s.vocab = 300;
  s.type = DType::Q8_0;
  s.seed = 5;
  std::string p = dir + "/" + arch + ".gguf";
  write_synth_model(s, p);
  return p;
}

// Stats with a made-up preference: in every layer expert e has frequency (e * 7 % 8) / 8.
ExpertStatsFile fake_stats(const Model& m) {
  ExpertStatsFile st;
  st.model = ModelFingerprint::of(m);
  st.layer_is_moe = m.config().layer_is_moe;
  st.top_k = 2;
  TaskStats t;
  t.name = "code";
  t.resize(m.config().n_layer, m.config().n_expert);
  t.n_tokens = 100;
  for (auto& row : t.count)
    for (size_t e = 0; e < row.size(); ++e) row[e] = static_cast<double>((e * 7) % 8);
  t.tcess_sum = t.count;
  st.tasks.push_back(t);
  return st;
}

std::vector<float> logits(const Model& m, const RoutingControl& ctl = {}) {
  ThreadPool pool(2);
  Context ctx(m, pool, {.n_ctx = 32});
  if (ctl.any()) ctx.set_routing(ctl);
  std::vector<int32_t> ids = {3, 100, 42, 7, 250, 19, 64};
  std::vector<float> out(ids.size() * m.config().n_vocab);
  ctx.decode(ids, out.data(), true);
  return out;
}

}  // namespace

TEST(Prune, KeepingEveryExpertIsAnIdentity) {
  std::string dir = moe::test::scratch_dir("prune_all");
  auto m = Model::load(make_model(dir));
  auto st = fake_stats(*m);
  auto ids = choose_experts(st, st.task(""), PruneMethod::Frequency, 8, 0);
  write_pruned_model(*m, ids, dir + "/all.gguf");
  GgufFile a(m->file().path()), b(dir + "/all.gguf");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    ASSERT_EQ(a.tensors()[i].nbytes, b.tensors()[i].nbytes);
    EXPECT_EQ(std::memcmp(a.tensors()[i].data, b.tensors()[i].data, a.tensors()[i].nbytes), 0) << a.tensors()[i].name;
  }
  EXPECT_EQ(logits(*m), logits(*Model::load(dir + "/all.gguf")));
}

TEST(Prune, PrunedModelKeepsTheOutputsOfItsExperts) {
  std::string dir = moe::test::scratch_dir("prune_half");
  auto m = Model::load(make_model(dir));
  auto st = fake_stats(*m);
  auto ids = choose_experts(st, st.task("code"), PruneMethod::Frequency, 4, 0);
  // frequencies (e*7)%8: e=1->7, 2->6, 3->5, 4->4 are the top four
  for (int l = 0; l < 3; ++l) EXPECT_EQ(ids[l], (std::vector<int>{1, 2, 3, 4}));
  write_pruned_model(*m, ids, dir + "/half.gguf");
  auto p = Model::load(dir + "/half.gguf");
  EXPECT_EQ(p->config().n_expert, 4);
  EXPECT_LT(std::filesystem::file_size(dir + "/half.gguf"), std::filesystem::file_size(m->file().path()));
  // The unpruned model with the other experts banned routes the same way; with renormalised top-k weights
  // (qwen3moe) the outputs agree up to float rounding of the softmax.
  RoutingControl ban;
  ban.banned.assign(3, std::vector<uint8_t>{1, 0, 0, 0, 0, 1, 1, 1});
  auto a = logits(*m, ban), b = logits(*p);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << i;
}

// REAP saliency comes from the experts' real outputs: an expert whose down projection is zero is selected
// but scores 0, every other selected expert scores > 0, and pruning by REAP drops the silent expert first.
TEST(Prune, ReapScoresMeasureExpertOutputs) {
  std::string dir = moe::test::scratch_dir("prune_reap");
  const std::string path = make_model(dir);
  {
    GgufFile g(path);
    std::vector<std::pair<uint64_t, size_t>> zero;  // file offset, bytes of expert 3's down slice
    for (const auto& t : g.tensors())
      if (t.name.find("ffn_down_exps") != std::string::npos)
        zero.emplace_back(g.data_offset() + t.offset + 3 * (t.nbytes / 8), t.nbytes / 8);
    ASSERT_EQ(zero.size(), 3u);
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    for (auto [off, n] : zero) {
      std::vector<uint8_t> z(n, 0);
      ASSERT_EQ(std::fseek(f, static_cast<long>(off), SEEK_SET), 0);
      ASSERT_EQ(std::fwrite(z.data(), 1, n, f), n);
    }
    std::fclose(f);
  }
  auto m = Model::load(path);
  ExpertStatsFile st;
  st.model = ModelFingerprint::of(*m);
  st.layer_is_moe = m->config().layer_is_moe;
  st.top_k = 2;
  st.tasks.emplace_back();
  ExpertProfiler prof(m->config(), st.tasks[0]);
  ThreadPool pool(2);
  Context ctx(*m, pool, {.n_ctx = 64});
  std::vector<int32_t> ids;
  for (int i = 0; i < 300; ++i) ids.push_back((i * 53 + 11) % 300);
  profile_tokens(ctx, prof, ids, 64, -1);
  const auto reap = st.tasks[0].reap();
  for (int l = 0; l < 3; ++l)
    for (int e = 0; e < 8; ++e) {
      ASSERT_EQ(st.tasks[0].reap_count[l][e], st.tasks[0].count[l][e]) << l << ":" << e;
      if (st.tasks[0].count[l][e] == 0) continue;
      if (e == 3) {
        EXPECT_EQ(reap[l][e], 0.0) << "layer " << l;
      } else {
        EXPECT_GT(reap[l][e], 0.0) << l << ":" << e;
      }
    }
  ASSERT_GT(st.tasks[0].count[0][3] + st.tasks[0].count[1][3] + st.tasks[0].count[2][3], 0);
  auto keep = choose_experts(st, st.tasks[0], PruneMethod::Reap, 7, 0);
  for (int l = 0; l < 3; ++l)
    if (st.tasks[0].count[l][3] > 0) {
      EXPECT_EQ(std::count(keep[l].begin(), keep[l].end(), 3), 0) << l;
    }
}

// TCESS on hand-made routing events: expert 2 wins 3 of 4 tokens, expert 0 the other, and every token's logits
// sit far below zero (as a z-loss-trained softmax router's do). Centred markers ignore the per-token offset
// and rank the often-chosen expert first; PreMoe's raw markers rank it last.
TEST(Profiler, CenteredTcessIgnoresPerTokenLogitOffsets) {
  ModelConfig cfg;
  cfg.n_layer = 1;
  cfg.n_expert = 4;
  cfg.layer_is_moe = {true};
  const float base[4][4] = {{2, 0, 3, 1}, {0, 1, 2, 1}, {3, 1, 0, 0}, {1, 0, 2, 0}};
  const float shift[4] = {-10, -4, -7, -20};
  std::vector<float> logits, probs(16, 0.25f), weights(8, 0.5f);
  std::vector<int32_t> ids, n_used(4, 2);
  for (int t = 0; t < 4; ++t) {
    for (int e = 0; e < 4; ++e) logits.push_back(base[t][e] + shift[t]);
    int best = static_cast<int>(std::max_element(base[t], base[t] + 4) - base[t]);
    ids.push_back(best);
    ids.push_back(best == 1 ? 3 : 1);
  }
  RoutingEvent ev{.layer = 0, .n_tokens = 4, .n_expert = 4, .n_total = 4, .logits = logits.data(),
                  .probs = probs.data(), .ids = ids.data(), .weights = weights.data(), .n_used = n_used.data(),
                  .slot_stride = 2};
  TaskStats centred, raw;
  ExpertProfiler(cfg, centred, 1, -1.0, true).on_route(ev);
  ExpertProfiler(cfg, raw, 1, -1.0, false).on_route(ev);
  // Token means of the unshifted logits: 1.5, 1, 1, 0.75; the top-1 margins: 1.5, 1, 2, 1.25.
  const auto c = centred.tcess()[0];
  EXPECT_NEAR(c[2], (1.5 + 1 + 1.25) / 4, 1e-9);
  EXPECT_NEAR(c[0], 2.0 / 4, 1e-9);
  EXPECT_EQ(c[1], 0.0);
  EXPECT_EQ(c[3], 0.0);
  const auto r = raw.tcess()[0];
  EXPECT_NEAR(r[2], ((3 - 10) + (2 - 4) + (2 - 20)) / 4.0, 1e-9);
  EXPECT_NEAR(r[0], (3 - 7) / 4.0, 1e-9);
  EXPECT_GT(c[2], c[0]);  // chosen more often, ranked first
  EXPECT_LT(r[2], r[0]);  // the raw marker's inversion that centring removes
}

TEST(Prune, BadRequestsAreErrorsAndWriteNothing) {
  std::string dir = moe::test::scratch_dir("prune_bad");
  auto m = Model::load(make_model(dir));
  auto st = fake_stats(*m);
  EXPECT_THROW(choose_experts(st, st.task(""), PruneMethod::Frequency, 0, 0), UsageError);
  EXPECT_THROW(choose_experts(st, st.task(""), PruneMethod::Frequency, 9, 0), UsageError);
  EXPECT_THROW(choose_experts(st, st.task(""), PruneMethod::Reap, 4, 0), UsageError);  // no REAP data
  EXPECT_THROW(st.task("prose"), UsageError);
  auto other = Model::load(make_model(dir, "olmoe"));
  EXPECT_THROW(st.check_model(*other, "stats.json"), UsageError);
  st.save(dir + "/stats.json");
  auto back = ExpertStatsFile::load(dir + "/stats.json");
  EXPECT_NO_THROW(back.check_model(*m, "stats.json"));
  EXPECT_EQ(back.tasks[0].count, st.tasks[0].count);
  EXPECT_EQ(back.tcess_centered, st.tcess_centered);
  std::string json = moe::test::read_file(dir + "/stats.json");
  const size_t at = json.find("\"centered\"");
  ASSERT_NE(at, std::string::npos);
  moe::test::write_file(dir + "/marker.json", json.replace(at, 10, "\"logit\""));
  EXPECT_THROW(ExpertStatsFile::load(dir + "/marker.json"), FormatError);  // unknown TCESS marker
  moe::test::write_file(dir + "/broken.json", "{\"format\": \"moe-expert-stats\"");
  EXPECT_THROW(ExpertStatsFile::load(dir + "/broken.json"), FormatError);
  std::vector<std::vector<int>> uneven = {{0, 1}, {0, 1, 2}, {0, 1}};
  EXPECT_THROW(write_pruned_model(*m, uneven, dir + "/bad.gguf"), UsageError);
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.gguf"));
}

TEST(Steering, ParsesPairsAndRejectsBadOnes) {
  auto refs = parse_expert_refs("0:3, 2:7,*:1", 3, 8, "--ban");
  ASSERT_EQ(refs.size(), 5u);
  EXPECT_EQ(refs[0].layer, 0);
  EXPECT_EQ(refs[0].expert, 3);
  EXPECT_EQ(refs[4].layer, 2);
  EXPECT_EQ(refs[4].expert, 1);
  EXPECT_THROW(parse_expert_refs("3:1", 3, 8, "--ban"), UsageError);
  EXPECT_THROW(parse_expert_refs("0:8", 3, 8, "--ban"), UsageError);
  EXPECT_THROW(parse_expert_refs("0-1", 3, 8, "--ban"), UsageError);
  EXPECT_THROW(parse_expert_refs("", 3, 8, "--ban"), UsageError);
  RoutingControl ctl;
  std::vector<bool> moe(3, true);
  apply_steering(ctl, parse_expert_refs("1:2", 3, 8, "b"), parse_expert_refs("1:5", 3, 8, "f"), 3, 8, moe);
  EXPECT_EQ(ctl.banned[1][2], 1);
  EXPECT_EQ(ctl.forced[1][5], 1);
  RoutingControl both;
  EXPECT_THROW(apply_steering(both, parse_expert_refs("1:2", 3, 8, "b"), parse_expert_refs("1:2", 3, 8, "f"), 3, 8, moe), UsageError);
  RoutingControl all;
  EXPECT_THROW(apply_steering(all, parse_expert_refs("0:0,0:1,0:2,0:3,0:4,0:5,0:6,0:7", 3, 8, "b"), {}, 3, 8, moe), UsageError);
}

TEST(Steering, BannedNeverSelectedForcedAlwaysSelected) {
  std::string dir = moe::test::scratch_dir("steer_model");
  auto m = Model::load(make_model(dir));
  struct Check : RoutingObserver {
    int banned = -1, forced = -1, violations = 0, tokens = 0;
    void on_route(const RoutingEvent& ev) override {
      for (int t = 0; t < ev.n_tokens; ++t) {
        bool has_forced = false;
        for (int j = 0; j < ev.n_used[t]; ++j) {
          violations += ev.ids[t * ev.slot_stride + j] == banned;
          has_forced |= ev.ids[t * ev.slot_stride + j] == forced;
        }
        violations += !has_forced;
        ++tokens;
      }
    }
  } check;
  check.banned = 3;
  check.forced = 6;
  RoutingControl ctl;
  std::vector<bool> moe(3, true);
  apply_steering(ctl, parse_expert_refs("*:3", 3, 8, "b"), parse_expert_refs("*:6", 3, 8, "f"), 3, 8, moe);
  ThreadPool pool(1);
  Context ctx(*m, pool, {.n_ctx = 300});
  ctx.set_routing(ctl);
  ctx.set_observer(&check);
  std::vector<int32_t> ids;
  for (int i = 0; i < 200; ++i) ids.push_back((i * 37) % 300);
  std::vector<float> out(m->config().n_vocab);
  ctx.decode(ids, out.data(), false);
  EXPECT_EQ(check.tokens, 200 * 3);
  EXPECT_EQ(check.violations, 0);
  EXPECT_GT(ctx.mean_experts_per_token(), 2.0);  // the forced expert is added on top of top-2 most of the time
}
