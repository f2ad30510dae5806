// The expert store under a memory budget: same logits as with every expert in memory for any budget (evictions
// in every layer, chunked prefill), with prefetch on or off and any thread count; budgets too small, bad sizes,
// pin files of other models and model files changed while running are clear errors; the replacement policies
// beat LRU where they should.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "experts/expert_stats.h"
#include "model/context.h"
#include "model/expert_memory.h"
#include "model/model.h"
#include "model/synth.h"
#include "model/synth_routing.h"
#include "moe/cache_policy.h"
#include "moe/cached_store.h"
#include "support/testdata.h"

using namespace moe;

namespace {

std::string synth_model(const std::string& dir, DType type, const std::string& arch = "qwen3moe") {
  SynthSpec s;
  s.arch = arch;
  s.layers = 3;
  s.hidden = 256;  // Q4_K needs rows of 256
  s.heads = 4;
  s.kv_heads = arch == "olmoe" ? 4 : 2;  // OLMoE has no grouped-query attention
  s.experts = 8;
  s.top_k = 2;
  s.expert_ffn = 256;
  s.vocab = 300;
  s.type = type;
  s.seed = 5;
  const std::string path = dir + "/" + arch + "-" + dtype_name(type) + ".gguf";
  write_synth_model(s, path);
  return path;
}

const std::vector<int32_t> kPrompt = {5, 77, 120, 33, 250, 9, 64, 100, 299, 0, 17, 42, 8, 200, 150, 3};

// Logits of a prompt (all rows) and then 6 single-token decodes, with the given store (null: resident).
std::vector<float> run(const Model& m, std::shared_ptr<ExpertStore> store, int threads, bool prefetch = true,
                       int n_batch = 256) {
  ThreadPool pool(threads);
  Context ctx(m, pool, {.n_ctx = 64, .n_batch = n_batch, .experts = store, .prefetch = prefetch});
  const int V = m.config().n_vocab;
  std::vector<float> out(kPrompt.size() * V), one(V);
  ctx.decode(kPrompt, out.data(), true);
  for (int i = 0; i < 6; ++i) {
    const int32_t id = (i * 37 + 11) % V;
    ctx.decode(std::span<const int32_t>(&id, 1), one.data(), false);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

std::shared_ptr<ExpertStore> budget_store(const Model& m, size_t slots, CachePolicyKind policy = CachePolicyKind::Slru,
                                          bool pack = true) {
  const WeightMemory w = weight_memory(m, pack, m.config().n_expert_used);
  MemoryBudget b;
  b.bytes = w.resident + slots * w.expert_slot;
  b.policy = policy;
  return make_budget_store(m, b, pack, m.config().n_expert_used);
}

}  // namespace

TEST(ExpertStore, AnyBudgetGivesTheFullRamLogitsBitForBit) {
  const std::string dir = moe::test::scratch_dir("store_budget");
  for (DType t : {DType::Q8_0, DType::F32, DType::Q4_K}) {
    auto m = Model::load(synth_model(dir, t));
    const auto full = run(*m, nullptr, 2);
    // 2 slots: every layer evicts the previous layer's experts and prompts run in chunks of 2 experts.
    for (size_t slots : {2, 3, 7, 24}) {
      for (CachePolicyKind p : {CachePolicyKind::Lru, CachePolicyKind::Lfu, CachePolicyKind::Slru}) {
        auto store = budget_store(*m, slots, p);
        EXPECT_EQ(run(*m, store, 2), full) << dtype_name(t) << " slots " << slots << " " << cache_policy_name(p);
        const ExpertStoreStats s = store->stats();
        EXPECT_GT(s.loads, 0u);
        if (slots < 8) {
          EXPECT_LT(s.hits, s.requests) << "a small cache must miss";
        }
      }
    }
  }
}

// Every expert in memory, packed on use (the default) or all at construction: the same logits bit for bit. The
// first step (a 2-token prompt) runs its experts on their file layout; later steps pack what they use. A second
// context sharing the packed weights then starts with some experts packed and others not, so its first step mixes
// both layouts in single layers. A reference model with Q4_K and Q6_K experts (gate/up and down in different
// formats, some layers not packable) is included.
TEST(ExpertStore, PackingExpertsOnUseGivesTheEagerLogitsBitForBit) {
  const std::string dir = moe::test::scratch_dir("store_lazy");
  std::vector<std::string> paths;
  for (DType t : {DType::Q8_0, DType::Q4_K, DType::Q4_0}) paths.push_back(synth_model(dir, t));
  const std::string reference = moe::test::testdata_path("reference/qwen3moe-tiny-q4_k_m.gguf");
  if (!reference.empty()) paths.push_back(reference);
  else if (moe::test::oracles_required()) ADD_FAILURE() << "test data missing";
  for (const std::string& path : paths) {
    auto m = Model::load(path);
    const int V = m->config().n_vocab;
    ThreadPool pool(2);
    // Logits of a 2-token prompt, then 12 decodes, and the store's statistics after the prompt and at the end.
    auto run_lazy = [&](Context& ctx, ExpertStoreStats* after_prompt, ExpertStoreStats* at_end) {
      std::vector<float> out(2 * static_cast<size_t>(V)), one(V);
      ctx.decode(std::span<const int32_t>(kPrompt.data(), 2), out.data(), true);
      if (after_prompt) *after_prompt = ctx.expert_store().stats();
      for (int i = 0; i < 12; ++i) {
        const int32_t id = (i * 37 + 11) % V;
        ctx.decode(std::span<const int32_t>(&id, 1), one.data(), false);
        out.insert(out.end(), one.begin(), one.end());
      }
      if (at_end) *at_end = ctx.expert_store().stats();
      return out;
    };
    Context eager(*m, pool, {.n_ctx = 64, .pack_experts_on_use = false});
    ExpertStoreStats s0, s1;
    const auto expect = run_lazy(eager, nullptr, &s0);
    EXPECT_EQ(s0.file_layout_uses + s0.packed_on_use, 0u) << path;
    Context lazy(*m, pool, {.n_ctx = 64, .pack_experts_on_use = true});
    EXPECT_EQ(run_lazy(lazy, &s0, &s1), expect) << path;
    EXPECT_GT(s0.file_layout_uses, 0u) << path;
    EXPECT_EQ(s0.packed_on_use, 0u) << path << ": the first step packs nothing";
    EXPECT_GT(s1.packed_on_use, 0u) << path << ": later steps pack what they use";
    EXPECT_EQ(s1.file_layout_uses, s0.file_layout_uses) << path << ": ... and run nothing on the file layout";
    // A context sharing the weights of one that packed only what one decode used: its first step mixes layouts.
    Context half(*m, pool, {.n_ctx = 64, .pack_experts_on_use = true});
    {
      std::vector<float> one(2 * static_cast<size_t>(V));
      half.decode(std::span<const int32_t>(kPrompt.data(), 2), one.data(), false);
      half.decode(std::span<const int32_t>(kPrompt.data() + 2, 1), one.data(), false);
    }
    Context shared(*m, pool, {.n_ctx = 64, .packed = half.packed_weights()});
    std::vector<float> out(kPrompt.size() * static_cast<size_t>(V));
    Context eager_all(*m, pool, {.n_ctx = 64, .pack_experts_on_use = false});
    std::vector<float> want(out.size());
    shared.decode(kPrompt, out.data(), true);
    eager_all.decode(kPrompt, want.data(), true);
    const ExpertStoreStats s2 = shared.expert_store().stats();
    EXPECT_GT(s2.file_layout_uses, 0u) << path;
    EXPECT_LT(s2.file_layout_uses, s2.requests) << path << ": some experts were packed by the other context";
    EXPECT_EQ(out, want) << path;
  }
}

TEST(ExpertStore, PrefetchAndThreadsDoNotChangeResults) {
  const std::string dir = moe::test::scratch_dir("store_prefetch");
  auto m = Model::load(synth_model(dir, DType::Q8_0));
  const auto full = run(*m, nullptr, 1);
  EXPECT_EQ(run(*m, budget_store(*m, 5), 1, false), full);
  EXPECT_EQ(run(*m, budget_store(*m, 5), 3, true), full);
  EXPECT_EQ(run(*m, budget_store(*m, 5), 2, true, 4), full);  // prompt in steps of 4 tokens
  auto store = budget_store(*m, 12);
  run(*m, store, 2, true);
  const ExpertStoreStats s = store->stats();
  EXPECT_GT(s.prefetch_hinted, 0u);
  EXPECT_LE(s.prefetch_hint_hits, s.prefetch_hinted);
  EXPECT_LE(s.prefetch_hint_hits, s.acquired_after_hint);
}

TEST(ExpertStore, ReferenceModelsGiveTheSameLogitsUnderABudget) {
  MOE_REQUIRE_TESTDATA();
  for (const char* name : {"qwen3moe-tiny-q8_0.gguf", "qwen3moe-tiny-q4_k_m.gguf", "llama-moe-tiny-f32.gguf",
                           "qwen3moe-tiny-f32.gguf", "qwen3moe-h256-q4_k_m.gguf"}) {
    const std::string path = moe::test::testdata_path(std::string("reference/") + name);
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    auto m = Model::load(path);
    const auto full = run(*m, nullptr, 2);
    EXPECT_EQ(run(*m, budget_store(*m, static_cast<size_t>(m->config().n_expert_used)), 2), full) << name;
  }
}

TEST(ExpertStore, EachExpertIsReadOncePerBatchWhenTheCacheIsSmall) {
  // A 16-token prompt routes to most of a layer's 8 experts; with 3 slots the layer runs in chunks and reads
  // each routed expert exactly once (no thrashing inside a batch).
  const std::string dir = moe::test::scratch_dir("store_chunks");
  auto m = Model::load(synth_model(dir, DType::Q8_0));
  auto store = budget_store(*m, 3);
  ThreadPool pool(2);
  Context ctx(*m, pool, {.n_ctx = 64, .experts = store, .prefetch = false});
  struct Distinct : RoutingObserver {
    uint64_t n = 0;
    void on_route(const RoutingEvent& ev) override {
      std::vector<uint8_t> seen(static_cast<size_t>(ev.n_expert), 0);
      for (int t = 0; t < ev.n_tokens; ++t)
        for (int j = 0; j < ev.n_used[t]; ++j) seen[static_cast<size_t>(ev.ids[t * ev.slot_stride + j])] = 1;
      for (uint8_t s : seen) n += s;
    }
  } distinct;
  ctx.set_observer(&distinct);
  std::vector<float> logits(m->config().n_vocab);
  ctx.decode(kPrompt, logits.data(), false);
  EXPECT_EQ(store->stats().loads, distinct.n);
}

TEST(ExpertStore, BudgetTooSmallNamesTheMinimum) {
  const std::string dir = moe::test::scratch_dir("store_small");
  auto m = Model::load(synth_model(dir, DType::Q8_0));
  const WeightMemory w = weight_memory(*m, true, 2);
  MemoryBudget b;
  b.bytes = w.min_budget() - 1;
  try {
    make_budget_store(*m, b, true, 2);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(w.min_budget()) + " bytes"), std::string::npos) << e.what();
  }
  b.bytes = w.min_budget();
  EXPECT_NO_THROW(make_budget_store(*m, b, true, 2));
}

TEST(ExpertStore, SizesParseAndBadSizesAreErrors) {
  EXPECT_EQ(parse_size("6G", "--mem-budget"), size_t{6} << 30);
  EXPECT_EQ(parse_size("6500M", "--mem-budget"), size_t{6500} << 20);
  EXPECT_EQ(parse_size("1.5GiB", "--mem-budget"), size_t{3} << 29);
  EXPECT_EQ(parse_size("123456", "--mem-budget"), size_t{123456});
  EXPECT_EQ(parse_size("64k", "--mem-budget"), size_t{65536});
  for (const char* bad : {"", "G", "6X", "-1G", "6 G", "1e30G", "6GG", "abc", "1..2M"})
    EXPECT_THROW(parse_size(bad, "--mem-budget"), UsageError) << bad;
}

TEST(ExpertStore, ModelFileTruncatedOrRewrittenWhileRunningIsAClearError) {
  const std::string dir = moe::test::scratch_dir("store_changed");
  const std::string src = synth_model(dir, DType::Q8_0);
  for (const char* how : {"truncate", "rewrite"}) {
    const std::string path = dir + "/changing-" + how + ".gguf";
    std::filesystem::copy_file(src, path, std::filesystem::copy_options::overwrite_existing);
    auto m = Model::load(path);
    auto store = budget_store(*m, 2);
    ThreadPool pool(2);
    Context ctx(*m, pool, {.n_ctx = 64, .experts = store});
    std::vector<float> logits(m->config().n_vocab);
    ctx.decode(std::span<const int32_t>(kPrompt).first(4), logits.data(), false);
    if (std::string(how) == "truncate") {
      ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(std::filesystem::file_size(path) / 2)), 0);
    } else {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) - 100));
      f.write("changed", 7);
      f.close();
      // Make sure the modification time differs even on coarse-grained clocks.
      struct timespec ts[2] = {{0, UTIME_OMIT}, {1, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
    }
    try {
      ctx.decode(kPrompt, logits.data(), false);  // misses: the store must read from the changed file
      FAIL() << how << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("while it was in use"), std::string::npos) << e.what();
    }
  }
}

// Every expert in memory, packed on use: the first step reads the mapped file, later steps pack from it. A file
// truncated in between must give the same clear error, not a SIGBUS from a mapped page past the new end.
TEST(ExpertStore, ModelFileTruncatedBeforeExpertsArePackedIsAClearError) {
  const std::string dir = moe::test::scratch_dir("store_lazy_changed");
  const std::string path = dir + "/m.gguf";
  std::filesystem::copy_file(synth_model(dir, DType::Q8_0), path, std::filesystem::copy_options::overwrite_existing);
  auto m = Model::load(path);
  ThreadPool pool(2);
  Context ctx(*m, pool, {.n_ctx = 64, .pack_experts_on_use = true});
  std::vector<float> logits(m->config().n_vocab);
  ctx.decode(std::span<const int32_t>(kPrompt).first(2), logits.data(), false);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(std::filesystem::file_size(path) / 2)), 0);
  try {
    for (int i = 2; i < 12; ++i) ctx.decode(std::span<const int32_t>(&kPrompt[static_cast<size_t>(i)], 1), logits.data(), false);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("while it was in use"), std::string::npos) << e.what();
  }
}

// Packing on use defers the other matrices too: the first step runs them on the file's layout (the packed weights
// do not hand them out yet) and the second packs them first; the logits are those of packing everything at load.
TEST(ExpertStore, OtherMatricesArePackedAfterTheFirstStepWhenPackingOnUse) {
  const std::string dir = moe::test::scratch_dir("store_deferred");
  auto m = Model::load(synth_model(dir, DType::Q8_0));
  ThreadPool pool(2);
  Context eager(*m, pool, {.n_ctx = 64, .pack_experts_on_use = false});
  Context lazy(*m, pool, {.n_ctx = 64, .pack_experts_on_use = true});
  const uint8_t* wq = m->layers[0].wq.data;
  ASSERT_NE(eager.packed_weights()->find(wq), nullptr);
  EXPECT_EQ(lazy.packed_weights()->find(wq), nullptr);
  const size_t V = static_cast<size_t>(m->config().n_vocab);
  std::vector<float> a(V), b(V);
  for (size_t i = 0; i < 3; ++i) {
    const std::span<const int32_t> tok(&kPrompt[i], 1);
    eager.decode(tok, a.data(), false);
    lazy.decode(tok, b.data(), false);
    EXPECT_EQ(a, b) << "step " << i;
    EXPECT_EQ(lazy.packed_weights()->find(wq) != nullptr, i > 0) << "step " << i;
  }
}

TEST(ExpertStore, PinFileFromAnotherModelIsAnError) {
  const std::string dir = moe::test::scratch_dir("store_pin");
  auto a = Model::load(synth_model(dir, DType::Q8_0));
  auto b = Model::load(synth_model(dir, DType::Q8_0, "olmoe"));
  ExpertStatsFile stats;
  stats.model = ModelFingerprint::of(*b);
  EXPECT_THROW(stats.check_model(*a, "b.json"), UsageError);
  // Pins outside the model are refused by the store itself.
  const WeightMemory w = weight_memory(*a, true, 2);
  MemoryBudget mb;
  mb.bytes = w.resident + 6 * w.expert_slot;
  mb.pinned = {{0, 99}};
  EXPECT_THROW(make_budget_store(*a, mb, true, 2), UsageError);
  mb.pinned = {{0, 1}, {1, 2}};
  auto store = make_budget_store(*a, mb, true, 2);
  EXPECT_EQ(store->stats().loads, 2u);  // pinned experts are loaded up front
  EXPECT_EQ(run(*a, store, 2), run(*a, nullptr, 2));
}

// Requests drawn independently from a skewed popularity (6 layers x 12 experts, top-2, a cache of half the experts,
// like the bundled model): the best online policy keeps the most popular experts, which needs a frequency estimate
// over enough uses. The model-shaped half-life (8 uses of an average expert) must beat the slot-count one.
TEST(CachePolicy, ModelShapedHalfLifeEstimatesPopularityBetter) {
  const int L = 6, E = 12, k = 2, tokens = 20000;
  std::mt19937 rng(7);
  std::vector<double> w(E);
  for (int e = 0; e < E; ++e) w[static_cast<size_t>(e)] = 1.0 / (1.0 + e);  // Zipf-like
  std::vector<int32_t> req;
  std::vector<uint8_t> epoch;
  for (int t = 0; t < tokens; ++t)
    for (int l = 0; l < L; ++l) {
      std::vector<double> p = w;
      std::shuffle(p.begin(), p.end(), std::mt19937(static_cast<uint32_t>(l)));  // each layer its own hot experts
      for (int j = 0; j < k; ++j) {
        const int e = std::discrete_distribution<int>(p.begin(), p.end())(rng);
        p[static_cast<size_t>(e)] = 0;  // distinct experts per token
        req.push_back(l * E + e);
        epoch.push_back(j == 0);
      }
    }
  const int slots = L * E / 2;
  const double n = static_cast<double>(req.size());
  const double old_rule = static_cast<double>(simulate_cache(CachePolicyKind::Lfu, slots, req, epoch, {})) / n;
  const double shaped =
      static_cast<double>(simulate_cache(CachePolicyKind::Lfu, slots, req, epoch, {}, lfu_half_life(L, E, k))) / n;
  EXPECT_EQ(lfu_half_life(L, E, k), 8.0 * E / k * L);
  EXPECT_GT(shaped, old_rule + 0.01) << "old " << old_rule << " shaped " << shaped;
}

TEST(CachePolicy, FrequencyAwarePoliciesBeatLruOnHotExpertsWithColdBursts) {
  // 4 hot experts used again and again, each time after a burst of 6 cold experts that are never reused: with 8
  // slots LRU lets each burst push the hot experts out before their next use; LFU and SLRU remember them (ghost
  // entries) and keep them after their second use.
  std::vector<int32_t> req;
  int cold = 100;
  for (int rep = 0; rep < 200; ++rep) {
    for (int h = 0; h < 4; ++h) req.push_back(h);
    for (int c = 0; c < 6; ++c) req.push_back(cold++);
  }
  const std::vector<uint8_t> epoch(req.size(), 1);  // every request its own epoch
  const uint64_t lru = simulate_cache(CachePolicyKind::Lru, 8, req, epoch, {});
  const uint64_t lfu = simulate_cache(CachePolicyKind::Lfu, 8, req, epoch, {});
  const uint64_t slru = simulate_cache(CachePolicyKind::Slru, 8, req, epoch, {});
  EXPECT_EQ(lru, 0u);
  EXPECT_GE(lfu, 4u * 195);  // all but the first few rounds
  EXPECT_GE(slru, 4u * 195);
  // Pinning the hot set makes even LRU hit them.
  const std::vector<int32_t> pins = {0, 1, 2, 3};
  EXPECT_GE(simulate_cache(CachePolicyKind::Lru, 8, req, epoch, pins), 4u * 200 - 4);
}

// Realistic routing for synthetic models: the measured rank-popularity curve survives resampling to another
// expert count, and calibrated routers reproduce a skewed target that random routers miss by far.
// Belady's optimum on a hand-checked trace, and never below any policy on random skewed traces.
TEST(CachePolicy, OptimalReplacementIsABoundForEveryPolicy) {
  // 2 slots, one request per epoch, a b c a b c: c evicts b (a comes back sooner), a hits, b evicts a (never needed
  // again), c hits: 2 hits. LRU evicts exactly the expert needed next every time: 0.
  const std::vector<int32_t> abc = {0, 1, 2, 0, 1, 2};
  EXPECT_EQ(simulate_cache_optimal(2, abc, {}), 2u);
  EXPECT_EQ(simulate_cache(CachePolicyKind::Lru, 2, abc, {}, {}), 0u);  // LRU always evicts the next one needed
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int32_t> req;
    std::vector<uint8_t> epoch;
    std::discrete_distribution<int> pick({16, 8, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    for (int t = 0; t < 400; ++t)
      for (int j = 0; j < 2; ++j) {
        req.push_back(pick(rng));
        epoch.push_back(j == 0);
      }
    for (int slots : {2, 4, 8}) {
      const uint64_t best = simulate_cache_optimal(slots, req, epoch);
      for (CachePolicyKind k : {CachePolicyKind::Lru, CachePolicyKind::Lfu, CachePolicyKind::Slru})
        EXPECT_GE(best, simulate_cache(k, slots, req, epoch, {})) << cache_policy_name(k) << " slots " << slots;
      EXPECT_LE(best, req.size());
    }
  }
}

TEST(SynthRouting, ResampledTargetKeepsTheRankCurveAndSumsToTopK) {
  const std::vector<std::vector<double>> measured = {{0.9, 0.5, 0.3, 0.1, 0.1, 0.1}, {0.4, 0.4, 0.3, 0.3, 0.3, 0.3}};
  const auto t = resample_routing_target(measured, 2, 4, 12, 3, 7);
  ASSERT_EQ(t.size(), 4u);
  for (const auto& row : t) {
    ASSERT_EQ(row.size(), 12u);
    double sum = 0;
    for (double x : row) {
      EXPECT_GE(x, 0.0);
      EXPECT_LE(x, 1.0);
      sum += x;
    }
    EXPECT_NEAR(sum, 3.0, 1e-9);
  }
  // Layer 0 maps to measured layer 0: its top sixth of experts (2 of 12) hold 0.9 / 2 of the selections.
  std::vector<double> r0 = t[0];
  std::sort(r0.begin(), r0.end(), std::greater<>());
  EXPECT_NEAR((r0[0] + r0[1]) / 3.0, 0.45, 1e-9);
  // The last layer maps to the flatter measured layer 1.
  std::vector<double> r3 = t[3];
  std::sort(r3.begin(), r3.end(), std::greater<>());
  EXPECT_LT(r3[0] - r3[11], r0[0] - r0[11]);
  EXPECT_THROW(resample_routing_target({}, 2, 4, 12, 3, 7), UsageError);
  EXPECT_THROW(resample_routing_target({{0.0, 0.0}}, 2, 4, 12, 3, 7), UsageError);
  EXPECT_THROW(resample_routing_target(measured, 2, 4, 12, 13, 7), UsageError);
}

TEST(SynthRouting, CalibratedRoutersReproduceASkewedPopularity) {
  const std::string dir = testing::TempDir();
  SynthSpec s;
  s.layers = 3;
  s.hidden = 64;
  s.heads = 4;
  s.kv_heads = 2;
  s.experts = 8;
  s.top_k = 2;
  s.expert_ffn = 32;
  s.vocab = 300;
  s.seed = 11;
  // Zipf-like: the hottest expert serves 70% of tokens, the coldest about 6%.
  const std::vector<std::vector<double>> measured = {{0.7, 0.4, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08}};
  s.routing_target = resample_routing_target(measured, 2, s.layers, s.experts, s.top_k, s.seed);
  const std::string path = dir + "/routing.gguf";
  write_synth_model(s, path);
  ThreadPool pool(2);
  const RoutingFit before = calibrate_synth_routing(s, path, pool, 0, 512, 0.55, nullptr);
  const RoutingFit after = calibrate_synth_routing(s, path, pool, 4, 2048, 0.55, nullptr);
  std::printf("routing: mean |share - target| %.4f -> %.4f (max %.4f), reuse %.3f -> %.3f (target 0.55, "
              "independent tokens %.3f)\n", before.mean_abs_error, after.mean_abs_error, after.max_abs_error, before.reuse,
              after.reuse, after.reuse_floor);
  EXPECT_GT(before.mean_abs_error, 2 * after.mean_abs_error);
  EXPECT_LT(after.mean_abs_error, 0.05);
  EXPECT_LT(after.max_abs_error, 0.2);
  EXPECT_NEAR(after.reuse, 0.55, 0.08);
  EXPECT_LT(after.reuse_floor, 0.5);
  // The file is still a model that loads and routes to the hot expert most.
  auto m = Model::load(path);
  EXPECT_EQ(m->config().n_expert, 8);
}
