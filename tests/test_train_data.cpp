// Training data: parallel tokenization equals whole-text tokenization, the held-out split, the token cache,
// a deterministic seeded order that covers every window once per epoch, evaluation byte counts, the learning
// rate schedule and AdamW against a scalar reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/score_windows.h"
#include "format/gguf.h"
#include "support/testdata.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/params.h"

using namespace moe;
using namespace moe::train;
namespace fs = std::filesystem;

namespace {

// Pseudo-random lines of letters (no repeated windows).
std::string text_of(int lines, int seed) {
  std::string t;
  uint32_t s = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (int i = 0; i < lines; ++i) {
    for (int j = 0; j < 40; ++j) {
      s = s * 1664525u + 1013904223u;
      t += static_cast<char>('a' + (s >> 24) % 27);
    }
    t += '\n';
  }
  return t;
}

}  // namespace

TEST(TrainData, ParallelPiecesEncodeLikeTheWholeText) {
  const std::string corpus = test::testdata_path("corpus/moby-dick.txt");
  if (corpus.empty() || !fs::exists(corpus)) MOE_ORACLE_MISSING("no testdata corpus");
  const std::string dir = test::scratch_dir("train_data_vocab");
  auto r = test::run_moe({"train-tokenizer", "--text", corpus, "--vocab-size", "1024", "-o", dir + "/v.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto codec = make_gguf_codec(dir + "/v.gguf");
  const std::string text = test::read_file(corpus).substr(0, 3'000'000);
  ThreadPool pool(2);
  const auto pieces = encode_parallel(*codec, text, pool);  // cut in ~1 MB pieces
  const auto whole = codec->encode(text);
  EXPECT_EQ(pieces, whole);
  size_t bytes = 0;
  for (int32_t id : whole) bytes += codec->piece_bytes(id);
  EXPECT_EQ(bytes, text.size());
  EXPECT_EQ(codec->decode(whole), text);
}

TEST(TrainData, SplitCacheAndSeededOrder) {
  const std::string dir = test::scratch_dir("train_data");
  test::write_file(dir + "/a.txt", text_of(300, 1));
  test::write_file(dir + "/b.txt", text_of(200, 2));
  auto codec = make_byte_codec();
  ThreadPool pool(2);
  const Corpus c = load_corpus({dir + "/a.txt", dir + "/b.txt"}, *codec, 0.1, pool, dir + "/cache");
  ASSERT_EQ(c.files.size(), 2u);
  EXPECT_EQ(c.files[0].tokens, c.files[0].bytes);
  EXPECT_EQ(c.files[0].val_tokens, c.files[0].tokens / 10);
  EXPECT_EQ(c.train.size(), static_cast<size_t>(c.files[0].tokens - c.files[0].val_tokens + c.files[1].tokens -
                                                 c.files[1].val_tokens + 2));
  EXPECT_EQ(c.train.back(), codec->eos());
  // The second load comes from the cache and is identical.
  ASSERT_EQ(std::distance(fs::directory_iterator(dir + "/cache"), fs::directory_iterator{}), 1);
  const Corpus c2 = load_corpus({dir + "/a.txt", dir + "/b.txt"}, *codec, 0.1, pool, dir + "/cache");
  EXPECT_EQ(c2.train, c.train);
  EXPECT_EQ(c2.val, c.val);
  EXPECT_EQ(c2.fingerprint, c.fingerprint);
  // A changed file changes the fingerprint.
  test::write_file(dir + "/b.txt", text_of(200, 3));
  EXPECT_NE(load_corpus({dir + "/a.txt", dir + "/b.txt"}, *codec, 0.1, pool, "").fingerprint, c.fingerprint);

  const int T = 16;
  BatchSampler s1(c.train, T, 42), s2(c.train, T, 42), s3(c.train, T, 43);
  const int64_t W = s1.windows_per_epoch();
  std::vector<int32_t> t1(T * W), y1(T * W), t2(T * W), y2(T * W), t3(T * W), y3(T * W);
  s1.fill(0, static_cast<int>(W), t1.data(), y1.data());
  for (int64_t g = 0; g < W; g += 5) s2.fill(g, static_cast<int>(std::min<int64_t>(5, W - g)), t2.data() + g * T, y2.data() + g * T);
  s3.fill(0, static_cast<int>(W), t3.data(), y3.data());
  EXPECT_EQ(t1, t2);  // same seed, any batching: same order
  EXPECT_NE(t1, t3);  // another seed: another order
  // Every window of the epoch appears once; targets are the next tokens.
  std::set<std::vector<int32_t>> seen;
  for (int64_t w = 0; w < W; ++w) {
    seen.insert(std::vector<int32_t>(t1.begin() + w * T, t1.begin() + (w + 1) * T));
    for (int t = 0; t + 1 < T; ++t) EXPECT_EQ(y1[w * T + t], t1[w * T + t + 1]);
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), W);
}

TEST(TrainData, MissingFileIsAUsageError) {
  auto codec = make_byte_codec();
  ThreadPool pool(1);
  EXPECT_THROW(load_corpus({"/nonexistent/file.txt"}, *codec, 0.01, pool, ""), UsageError);
  EXPECT_THROW(load_corpus({}, *codec, 0.01, pool, ""), UsageError);
  EXPECT_THROW(make_gguf_codec("/nonexistent/vocab.gguf"), UsageError);
}

TEST(TrainData, TextEvaluationPredictsEveryByteOnce) {
  ModelShape m;
  m.n_layer = 1;
  m.n_embd = 16;
  m.n_head = 2;
  m.n_head_kv = 1;
  m.head_dim = 8;
  m.n_vocab = 257;
  m.n_ctx = 12;
  m.n_expert = 2;
  m.n_expert_used = 1;
  m.n_ff_exp = 8;
  ThreadPool pool(1);
  TrainModel model(m, 3, pool);
  init_params(model.layout(), m, 0.02f, 1, model.params.data());
  auto codec = make_byte_codec();
  const std::string text = text_of(4, 0);  // ~150 bytes, several windows
  std::vector<int32_t> toks{codec->eos()};
  const auto enc = codec->encode(text);
  toks.insert(toks.end(), enc.begin(), enc.end());
  for (int stride : {1, 5, 6, 12}) {
    const EvalResult r = evaluate_text(model, *codec, toks, stride);
    EXPECT_EQ(r.tokens, static_cast<int64_t>(enc.size())) << stride;
    EXPECT_EQ(r.bytes, static_cast<int64_t>(text.size())) << stride;
    EXPECT_NEAR(r.loss(), std::log(257.0), 0.1);  // an untrained model is near uniform
  }
}

TEST(TrainOptim, ScheduleWarmupAndCosine) {
  OptimConfig o;
  o.steps = 110;
  o.warmup = 10;
  o.lr = 1e-3f;
  o.min_lr = 1e-4f;
  EXPECT_FLOAT_EQ(o.lr_at(0), 1e-4f);
  EXPECT_FLOAT_EQ(o.lr_at(9), 1e-3f);
  EXPECT_FLOAT_EQ(o.lr_at(10), 1e-3f);
  EXPECT_NEAR(o.lr_at(60), 5.5e-4f, 1e-9);
  EXPECT_NEAR(o.lr_at(110), 1e-4f, 1e-9);
}

TEST(TrainOptim, AdamWMatchesAScalarReferenceAndClips) {
  ModelShape m;
  m.n_layer = 1;
  m.n_embd = 8;
  m.n_head = 1;
  m.n_head_kv = 1;
  m.head_dim = 8;
  m.n_vocab = 5;
  m.n_expert = 2;
  m.n_expert_used = 1;
  m.n_ff_exp = 4;
  ParamLayout layout(m);
  OptimConfig o;
  o.weight_decay = 0.1f;
  AdamW adam(layout, o);
  ThreadPool pool(2);
  std::vector<float> p(layout.total()), g(layout.total());
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] = std::sin(static_cast<float>(i));
    g[i] = std::cos(static_cast<float>(i) * 0.7f);
  }
  std::vector<double> rp(p.begin(), p.end()), rm(p.size(), 0), rv(p.size(), 0);
  const float lr = 1e-2f;
  for (int t = 1; t <= 3; ++t) {
    adam.step(pool, p.data(), g.data(), lr);
    for (const ParamTensor& tensor : layout.tensors())
      for (size_t i = tensor.offset; i < tensor.offset + tensor.size; ++i) {
        if (tensor.decay) rp[i] *= 1 - lr * o.weight_decay;
        rm[i] = o.beta1 * rm[i] + (1 - o.beta1) * g[i];
        rv[i] = o.beta2 * rv[i] + (1 - o.beta2) * g[i] * g[i];
        const double mh = rm[i] / (1 - std::pow(o.beta1, t)), vh = rv[i] / (1 - std::pow(o.beta2, t));
        rp[i] -= lr * mh / (std::sqrt(vh) + o.eps);
      }
  }
  for (const ParamTensor& tensor : layout.tensors())
    for (size_t i = tensor.offset; i < tensor.offset + tensor.size; ++i) ASSERT_NEAR(p[i], rp[i], 1e-6) << tensor.name;
  // Clipping: the norm is reported, the gradients scaled to the limit.
  const double norm = adam.grad_norm(pool, g.data());
  EXPECT_NEAR(adam.clip(pool, g.data(), 1.0f), norm, 1e-9);
  EXPECT_NEAR(adam.grad_norm(pool, g.data()), 1.0, 1e-5);
  EXPECT_FLOAT_EQ(AdamW::clip_factor(0.5, 1.0f), 1.0f);
}

// The sliding-window plan `moe perplexity` and training's evaluate_text share: every target once, each with at
// least span - stride tokens of context after the first window.
TEST(TrainData, ScoreWindowsPredictEachTokenOnceWithContext) {
  for (int64_t n : {0, 1, 2, 7, 100, 101}) {
    for (int64_t span : {1, 4, 16}) {
      for (int64_t stride = 1; stride <= span; stride += 3) {
        std::vector<int> seen(static_cast<size_t>(std::max<int64_t>(n, 1)), 0);
        for (const ScoreWindow& w : score_windows(n, span, stride)) {
          ASSERT_LE(w.first, w.last);
          ASSERT_LE(w.last, std::min(w.begin + span, n - 1));
          if (w.begin > 0) EXPECT_GE(w.first - 1 - w.begin, span - stride) << n << " " << span << " " << stride;
          for (int64_t t = w.first; t <= w.last; ++t) ++seen[static_cast<size_t>(t)];
        }
        for (int64_t t = 1; t < n; ++t) EXPECT_EQ(seen[static_cast<size_t>(t)], 1) << n << " " << span << " " << stride;
      }
    }
  }
  EXPECT_THROW(score_windows(10, 4, 5), moe::UsageError);
}
