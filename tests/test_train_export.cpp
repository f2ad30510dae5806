// The exported GGUF, loaded by our inference engine (Model::load + Context::decode), gives the logits of the
// trainer's own forward (evaluation routing) to 1e-4, for every routing option: the file states everything
// that changes inference (gating, normalisation, scale, MoGE groups, null experts, selection bias, shared
// expert and its gate).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "format/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "support/testdata.h"
#include "train/blas.h"
#include "train/data.h"
#include "train/export_gguf.h"
#include "train/model_train.h"

using namespace moe;
using namespace moe::train;

namespace {

ModelShape shape() {
  ModelShape m;
  m.n_layer = 2;
  m.n_embd = 32;
  m.n_head = 4;
  m.n_head_kv = 2;
  m.head_dim = 8;
  m.n_vocab = 257;
  m.n_ctx = 24;
  m.n_expert = 4;
  m.n_expert_used = 2;
  m.n_ff_exp = 16;
  return m;
}

// Max |logit difference| between the trainer's forward and the engine on the exported file.
double export_and_compare(const std::string& name, const ModelShape& m, DType type = DType::F32,
                          std::string* path_out = nullptr) {
  blas_setup();
  ThreadPool pool(2);
  TrainModel model(m, 1, pool);
  init_params(model.layout(), m, 0.15f, 11, model.params.data());
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.f, 0.05f);
  for (auto& b : model.sel_bias)
    for (float& x : b) x = nd(rng);
  auto codec = make_byte_codec();
  const std::string path = test::scratch_dir("export_" + name) + "/model.gguf";
  ExportOptions opt;
  opt.type = type;
  export_gguf(model, *codec, path, opt);
  if (path_out) *path_out = path;

  std::vector<int32_t> tokens(static_cast<size_t>(m.n_ctx));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % 257);
  RouteStep rs;
  rs.train = false;
  model.forward(tokens.data(), 1, rs);
  const float* ours = model.logits();

  auto loaded = Model::load(path);
  Context ctx(*loaded, pool, {.n_ctx = m.n_ctx, .n_batch = 7});  // several batches: exercises the KV cache
  std::vector<float> theirs(tokens.size() * 257);
  ctx.decode(tokens, theirs.data(), true);
  double worst = 0;
  for (size_t i = 0; i < theirs.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(theirs[i] - ours[i])));
  std::printf("[export] %-16s max |logit diff| %.3e\n", name.c_str(), worst);
  return worst;
}

}  // namespace

TEST(TrainExport, TopKSoftmax) { EXPECT_LE(export_and_compare("topk", shape()), 1e-4); }

TEST(TrainExport, NoNormScaled) {
  ModelShape m = shape();
  m.routing.norm_topk = false;
  m.routing.weights_scale = 2.5f;
  EXPECT_LE(export_and_compare("nonorm-scaled", m), 1e-4);
}

TEST(TrainExport, AuxLossFreeSigmoidWithBias) {
  ModelShape m = shape();
  m.routing.gating = Gating::Sigmoid;
  m.routing.bias_rate = 0.001f;
  std::string path;
  EXPECT_LE(export_and_compare("auxfree", m, DType::F32, &path), 1e-4);
  GgufFile f(path);
  EXPECT_NE(f.tensor("blk.1.exp_probs_b.bias"), nullptr);
  EXPECT_EQ(f.get_uint("qwen3moe.expert_gating_func").value_or(0), 2u);
}

TEST(TrainExport, MoGE) {
  ModelShape m = shape();
  m.n_expert = 8;
  m.n_expert_used = 4;
  m.routing.n_group = 2;
  EXPECT_LE(export_and_compare("moge", m), 1e-4);
}

TEST(TrainExport, NullExperts) {
  ModelShape m = shape();
  m.routing.n_null = 4;
  m.n_expert_used = 3;
  EXPECT_LE(export_and_compare("null", m), 1e-4);
}

TEST(TrainExport, DenseToSparseGateExportsTopK) {
  ModelShape m = shape();
  m.routing.dts = true;
  m.routing.dts_hard_step = 100;
  EXPECT_LE(export_and_compare("dts", m), 1e-4);
}

TEST(TrainExport, SharedExpertGatedUntied) {
  ModelShape m = shape();
  m.n_ff_shexp = 24;
  m.shared_gate = true;
  m.tied = false;
  EXPECT_LE(export_and_compare("shared-gated", m), 1e-4);
}

TEST(TrainExport, FineGrainedAndDense) {
  ModelShape m = shape();
  m.n_expert = 16;
  m.n_expert_used = 4;
  m.n_ff_exp = 4;
  EXPECT_LE(export_and_compare("fine-grained", m), 1e-4);
  ModelShape d = shape();
  d.n_expert = 1;
  d.n_expert_used = 1;
  d.n_ff_exp = 32;
  EXPECT_LE(export_and_compare("dense", d), 1e-4);
}

TEST(TrainExport, HalfPrecisionExportStaysClose) {
  // f16 matrices (the bundled model's format): rounding each weight to 11 bits moves logits by ~1e-3.
  EXPECT_LE(export_and_compare("topk-f16", shape(), DType::F16), 2e-2);
}
