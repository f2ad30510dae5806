// The fast paths end to end, on small random models of every MoE architecture and weight type:
// SIMD kernels with repacked weights agree with the scalar reference; the number of threads, the batch split
// and repacking change nothing (bit for bit); decoding allocates nothing once the context exists.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "kernels/packed.h"
#include "model/synth.h"
#include "ops/packed_weights.h"
#include "support/testdata.h"

using namespace moe;

// Allocation counter for the no-allocation test (counts every operator new in this process while armed).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<bool> g_count_allocs{false};
static std::atomic<long> g_allocs{0};
void* operator new(size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

struct Case {
  std::string arch;
  DType type, embd;
  std::string name() const { return arch + "_" + dtype_name(type) + "_" + dtype_name(embd); }
};

std::string synth(const Case& c) {
  const std::string path = test::scratch_dir("simd_moe_" + c.name()) + "/model.gguf";
  SynthSpec s;
  s.arch = c.arch;
  s.layers = 2;
  s.hidden = 256;
  s.heads = 4;
  s.kv_heads = c.arch == "olmoe" ? 4 : 2;
  s.experts = 8;
  s.top_k = 2;
  s.expert_ffn = 256;
  s.vocab = 300;
  s.type = c.type;
  s.embd_type = c.embd;
  s.seed = 7;
  write_synth_model(s, path, nullptr, 2);
  return path;
}

const std::vector<int32_t> kPrompt = {1, 17, 200, 5, 42, 299, 0, 123, 77, 8, 250};

std::vector<float> prompt_logits(const Model& m, ThreadPool& pool, ContextParams p) {
  Context ctx(m, pool, p);
  std::vector<float> out(kPrompt.size() * static_cast<size_t>(m.config().n_vocab));
  ctx.decode(kPrompt, out.data(), true);
  return out;
}

class SimdMoe : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    model_ = Model::load(synth(GetParam()));
  }
  std::unique_ptr<Model> model_;
};

TEST_P(SimdMoe, SimdWithRepackingMatchesReference) {
  ThreadPool pool(2);
  const auto ref = prompt_logits(*model_, pool, {.n_ctx = 64, .kernels = &reference_kernels()});
  Context fast_ctx(*model_, pool, {.n_ctx = 64});
  const bool any_packable = packable(GetParam().type) || packable(GetParam().embd);
  EXPECT_EQ(fast_ctx.packed_weights() != nullptr && fast_ctx.packed_weights()->count() > 0, any_packable);
  std::vector<float> fast(ref.size());
  fast_ctx.decode(kPrompt, fast.data(), true);
  // F32 weights: only summation order differs. Otherwise activations are re-quantized (or rounded to 16 bits)
  // before every product, so a last-bit difference can move a value across a rounding boundary; the logits
  // still agree closely.
  const bool quant = GetParam().type != DType::F32;  // F16/BF16 activations are rounded too
  const int n_vocab = model_->config().n_vocab;
  for (size_t t = 0; t < kPrompt.size(); ++t) {
    const float* a = fast.data() + t * n_vocab;
    const float* b = ref.data() + t * n_vocab;
    float scale = 0, worst = 0;
    for (int i = 0; i < n_vocab; ++i) {
      scale = std::max(scale, std::fabs(b[i]));
      worst = std::max(worst, std::fabs(a[i] - b[i]));
    }
    EXPECT_LE(worst, (quant ? 2e-2f : 1e-4f) * scale) << "position " << t;
    const int am = static_cast<int>(std::max_element(a, a + n_vocab) - a);
    const int bm = static_cast<int>(std::max_element(b, b + n_vocab) - b);
    if (!quant) {
      EXPECT_EQ(am, bm) << "position " << t;
    }
  }
}

TEST_P(SimdMoe, ThreadCountBatchSplitAndRepackingChangeNothing) {
  ThreadPool one(1), two(2), three(3);
  const auto base = prompt_logits(*model_, two, {.n_ctx = 64});
  EXPECT_EQ(prompt_logits(*model_, one, {.n_ctx = 64}), base) << "1 thread";
  EXPECT_EQ(prompt_logits(*model_, three, {.n_ctx = 64}), base) << "3 threads";
  EXPECT_EQ(prompt_logits(*model_, two, {.n_ctx = 64, .repack = false}), base) << "file layout";
  EXPECT_EQ(prompt_logits(*model_, two, {.n_ctx = 64, .n_batch = 3}), base) << "batches of 3";
  // One token at a time through the KV cache.
  Context ctx(*model_, two, {.n_ctx = 64});
  const size_t n_vocab = static_cast<size_t>(model_->config().n_vocab);
  std::vector<float> row(n_vocab);
  for (size_t t = 0; t < kPrompt.size(); ++t) {
    ctx.decode(std::span<const int32_t>(&kPrompt[t], 1), row.data(), false);
    ASSERT_EQ(0, std::memcmp(row.data(), base.data() + t * n_vocab, n_vocab * sizeof(float))) << "token " << t;
  }
}

TEST_P(SimdMoe, ContextsCanShareRepackedWeights) {
  ThreadPool pool(2);
  Context first(*model_, pool, {.n_ctx = 64});
  const auto shared = first.packed_weights();
  const auto own = prompt_logits(*model_, pool, {.n_ctx = 64});
  EXPECT_EQ(prompt_logits(*model_, pool, {.n_ctx = 64, .packed = shared}), own);
  Context second(*model_, pool, {.n_ctx = 64, .packed = shared});
  EXPECT_EQ(second.packed_weights(), shared);
}

TEST_P(SimdMoe, DecodingAllocatesNothing) {
  ThreadPool pool(2);
  Context ctx(*model_, pool, {.n_ctx = 64, .n_batch = 8});
  std::vector<float> logits(static_cast<size_t>(model_->config().n_vocab));
  ctx.decode(std::span<const int32_t>(kPrompt.data(), 8), logits.data(), false);  // warm-up
  ctx.truncate(0);
  g_allocs = 0;
  g_count_allocs = true;
  ctx.decode(std::span<const int32_t>(kPrompt.data(), 8), logits.data(), false);
  for (int i = 0; i < 3; ++i) ctx.decode(std::span<const int32_t>(&kPrompt[8 + i], 1), logits.data(), false);
  g_count_allocs = false;
  EXPECT_EQ(g_allocs.load(), 0);
}

const Case kCases[] = {
    {"olmoe", DType::Q8_0, DType::Q8_0},     {"olmoe", DType::Q4_K, DType::Q6_K},
    {"qwen3moe", DType::Q8_0, DType::F32},   {"qwen3moe", DType::Q4_K, DType::Q4_K},
    {"qwen2moe", DType::Q4_K, DType::Q6_K},  {"qwen2moe", DType::Q8_0, DType::Q8_0},
    {"llama", DType::Q8_0, DType::Q6_K},     {"olmoe", DType::F16, DType::F16},
    {"qwen3moe", DType::BF16, DType::BF16},  {"qwen3moe", DType::F32, DType::F32},
    {"olmoe", DType::Q4_0, DType::Q4_0},
};

INSTANTIATE_TEST_SUITE_P(Models, SimdMoe, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
