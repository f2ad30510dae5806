// Our trainer against an independent PyTorch implementation (tests/train/reference_model.py), llm.c style:
// same initial weights and batches; compare the logits, the loss terms, the selected experts, every parameter
// gradient, the loss of each of 10 AdamW steps (with clipping, warmup + cosine and the aux-loss-free bias
// update) and all parameters after them. One test per routing option.
//
// Tolerances come from fp32 numerics: both sides round every product and sum to float (relative error
// ~6e-8 per operation) but in different orders, through ~10 dependent ops per layer, so values and gradients
// agree to ~1e-6 relative to the tensor's largest element; we allow 1e-5 for logits and 1e-4 for gradients.
// After 10 Adam steps a parameter moves by at most ~lr per step whatever its gradient's size; elements whose
// gradient is at the fp32 noise floor (|g| ~ 1e-7 max|g|) can get a differently rounded update, so parameters
// are compared to 1e-3 * lr * steps absolute.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "support/python.h"
#include "support/testdata.h"
#include "train/blas.h"
#include "train/model_train.h"
#include "train/optimizer.h"

using namespace moe;
using namespace moe::train;

namespace {

bool python_has_torch() {
  static const bool ok = [] {
    const std::string py = test::python3_path();
    if (py.empty()) return false;
    return std::system((py + " -c 'import torch' > /dev/null 2>&1").c_str()) == 0;
  }();
  return ok;
}

template <class T>
void write_raw(const std::string& path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

template <class T>
std::vector<T> read_raw(const std::string& path) {
  const std::string b = test::read_file(path);
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

struct Diff {
  double max_abs = 0, scale = 0;
  double rel() const { return max_abs / std::max(scale, 1e-30); }
};

Diff diff(const float* a, const float* b, size_t n) {
  Diff d;
  for (size_t i = 0; i < n; ++i) {
    d.max_abs = std::max(d.max_abs, static_cast<double>(std::fabs(a[i] - b[i])));
    d.scale = std::max(d.scale, static_cast<double>(std::fabs(b[i])));
  }
  return d;
}

ModelShape tiny_shape() {
  ModelShape m;
  m.n_layer = 2;
  m.n_embd = 32;
  m.n_head = 4;
  m.n_head_kv = 2;
  m.head_dim = 8;
  m.n_vocab = 64;
  m.n_ctx = 16;
  m.n_expert = 4;
  m.n_expert_used = 2;
  m.n_ff_exp = 16;
  return m;
}

void run_case(const std::string& name, ModelShape m) {
  if (!python_has_torch()) MOE_ORACLE_MISSING("python3 with torch not found");
  const int B = 3, steps = 10, T = m.n_ctx;
  const size_t N = static_cast<size_t>(B) * T;
  OptimConfig o;
  o.steps = steps;
  o.warmup = 2;
  o.lr = 3e-3f;
  o.min_lr = 3e-4f;
  o.weight_decay = 0.1f;
  o.clip = 1.0f;
  o.seed = 5;
  blas_setup();
  ThreadPool pool(2);
  TrainModel model(m, B, pool);
  init_params(model.layout(), m, 0.1f, o.seed, model.params.data());
  const std::vector<float> init = model.params;

  std::mt19937 rng(3);
  std::vector<int32_t> tokens(steps * N), targets(steps * N);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % m.n_vocab);
  // A learnable next-token rule, so that 10 steps visibly lower the loss.
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = (tokens[i] * 7 + 3) % m.n_vocab;

  const std::string dir = test::scratch_dir("torch_" + name);
  TrainConfig tc;
  tc.model = m;
  tc.optim = o;
  const nlohmann::json full = to_json(tc);
  nlohmann::json cfg = full["model"];
  cfg["optim"] = full["optim"];
  cfg["steps"] = steps;
  cfg["batch"] = B;
  nlohmann::json layout = nlohmann::json::array();
  for (const ParamTensor& t : model.layout().tensors())
    layout.push_back({{"name", t.name}, {"shape", t.shape}, {"offset", t.offset}, {"size", t.size}, {"decay", t.decay}});
  cfg["layout"] = layout;
  test::write_file(dir + "/config.json", cfg.dump(1));
  write_raw(dir + "/params.bin", model.params);
  write_raw(dir + "/tokens.bin", tokens);
  write_raw(dir + "/targets.bin", targets);
  const int S = m.n_slots();
  if (m.routing.dts) {
    std::vector<float> noise;
    for (int s = 0; s < steps; ++s)
      for (int il = 0; il < m.n_layer; ++il)
        for (size_t t = 0; t < N; ++t)
          for (int i = 0; i < S; ++i) noise.push_back(dts_gumbel(o.seed, s, 0, il, static_cast<int64_t>(t), i));
    write_raw(dir + "/noise.bin", noise);
  }
  std::string log;
  ASSERT_EQ(test::run_python("tests/train/reference_model.py", {dir}, &log), 0) << log;
  const auto ref = nlohmann::json::parse(test::read_file(dir + "/ref_result.json"));

  // Step 0: logits, losses, routing, gradients.
  AdamW adam(model.layout(), o);
  std::vector<double> losses;
  std::vector<float> logits0;
  for (int s = 0; s < steps; ++s) {
    std::fill(model.grads.begin(), model.grads.end(), 0.0f);
    RouteStep rs;
    rs.step = s;
    rs.seed = o.seed;
    model.forward(tokens.data() + s * N, B, rs);
    if (s == 0) logits0.assign(model.logits(), model.logits() + N * m.n_vocab);
    const MicroLoss l = model.loss(targets.data() + s * N, 1.0f / static_cast<float>(N));
    model.backward(tokens.data() + s * N, 1.0f);
    losses.push_back(l.ce_mean() + l.aux + l.z);
    if (s == 0) {
      const auto rl = read_raw<float>(dir + "/ref_logits.bin");
      ASSERT_EQ(rl.size(), logits0.size());
      const Diff dl = diff(logits0.data(), rl.data(), rl.size());
      std::printf("[torch] %-14s logits        max abs %.3e rel %.3e\n", name.c_str(), dl.max_abs, dl.rel());
      EXPECT_LE(dl.rel(), 1e-5);
      std::printf("[torch] %-14s ce %.7f/%.7f aux %.7f/%.7f z %.7f/%.7f\n", name.c_str(), l.ce_mean(),
                  ref["ce"].get<double>(), l.aux, ref["aux"].get<double>(), l.z, ref["z"].get<double>());
      EXPECT_NEAR(l.ce_mean(), ref["ce"].get<double>(), 1e-5 * ref["ce"].get<double>());
      EXPECT_NEAR(l.aux, ref["aux"].get<double>(), 1e-5 * (1e-3 + ref["aux"].get<double>()));
      EXPECT_NEAR(l.z, ref["z"].get<double>(), 1e-5 * (1e-3 + ref["z"].get<double>()));
      // Same experts for every token (as sets: MoGE lists them group by group).
      const auto rids = read_raw<int32_t>(dir + "/ref_ids.bin");
      const size_t per_layer = rids.size() / static_cast<size_t>(m.n_layer);
      const size_t K = per_layer / N;
      for (int il = 0; il < m.n_layer; ++il) {
        const MoeActs& a = model.layer_acts(il).moe;
        for (size_t t = 0; t < N; ++t) {
          std::vector<int32_t> ours(a.ids.begin() + static_cast<int64_t>(t * a.K),
                                    a.ids.begin() + static_cast<int64_t>(t * a.K + a.n_used[t]));
          std::vector<int32_t> theirs;
          for (size_t j = 0; j < K; ++j)
            if (rids[il * per_layer + t * K + j] >= 0) theirs.push_back(rids[il * per_layer + t * K + j]);
          std::sort(ours.begin(), ours.end());
          std::sort(theirs.begin(), theirs.end());
          ASSERT_EQ(ours, theirs) << "layer " << il << " token " << t;
        }
      }
      const auto rg = read_raw<float>(dir + "/ref_grads.bin");
      double worst = 0;
      std::string worst_name;
      for (const ParamTensor& t : model.layout().tensors()) {
        const Diff dg = diff(model.grads.data() + t.offset, rg.data() + t.offset, t.size);
        if (dg.scale == 0) {
          EXPECT_EQ(dg.max_abs, 0.0) << t.name;
          continue;
        }
        EXPECT_LE(dg.rel(), 1e-4) << t.name;
        if (dg.rel() > worst) {
          worst = dg.rel();
          worst_name = t.name;
        }
      }
      std::printf("[torch] %-14s gradients     worst tensor %s: rel %.3e (all %zu tensors)\n", name.c_str(),
                  worst_name.c_str(), worst, model.layout().tensors().size());
    }
    adam.clip(pool, model.grads.data(), o.clip);
    adam.step(pool, model.params.data(), model.grads.data(), o.lr_at(s));
    if (m.routing.bias_rate > 0)
      for (int il = 0; il < m.n_layer; ++il)
        update_selection_bias(model.sel_bias[static_cast<size_t>(il)], model.layer_load(il), m.routing.bias_rate);
  }
  double worst_loss = 0;
  for (int s = 0; s < steps; ++s) {
    const double r = ref["losses"][static_cast<size_t>(s)].get<double>();
    worst_loss = std::max(worst_loss, std::fabs(losses[static_cast<size_t>(s)] - r) / r);
    EXPECT_NEAR(losses[static_cast<size_t>(s)], r, 1e-4 * r) << "step " << s;
  }
  const auto rp = read_raw<float>(dir + "/ref_params.bin");
  const Diff dp = diff(model.params.data(), rp.data(), rp.size());
  const Diff moved = diff(model.params.data(), init.data(), init.size());
  std::printf("[torch] %-14s 10 AdamW steps: loss %.5f -> %.5f, worst loss rel diff %.2e; params max abs diff %.3e "
              "(moved up to %.3e)\n",
              name.c_str(), losses.front(), losses.back(), worst_loss, dp.max_abs, moved.max_abs);
  EXPECT_LT(losses.back(), losses.front());
  EXPECT_LE(dp.max_abs, 1e-3 * o.lr * steps);
  if (m.routing.bias_rate > 0) {
    const auto rb = read_raw<float>(dir + "/ref_bias.bin");
    std::vector<float> ours;
    for (const auto& b : model.sel_bias) ours.insert(ours.end(), b.begin(), b.end());
    ASSERT_EQ(ours.size(), rb.size());
    for (size_t i = 0; i < rb.size(); ++i) EXPECT_NEAR(ours[i], rb[i], 1e-6) << "bias " << i;
  }
}

}  // namespace

TEST(TrainTorch, SoftmaxTopKAuxZLoss) {
  ModelShape m = tiny_shape();
  m.routing.aux_alpha = 0.01f;
  m.routing.z_beta = 0.001f;
  run_case("topk", m);
}

TEST(TrainTorch, AuxLossFreeSigmoidBias) {
  ModelShape m = tiny_shape();
  m.routing.gating = Gating::Sigmoid;
  m.routing.bias_rate = 0.01f;
  run_case("auxfree", m);
}

TEST(TrainTorch, MoGEGroups) {
  ModelShape m = tiny_shape();
  m.n_expert = 8;
  m.n_expert_used = 4;
  m.routing.n_group = 2;
  m.routing.aux_alpha = 0.01f;
  m.routing.z_beta = 0.001f;
  run_case("moge", m);
}

TEST(TrainTorch, NullExperts) {
  ModelShape m = tiny_shape();
  m.routing.n_null = 4;
  m.n_expert_used = 3;
  m.routing.aux_alpha = 0.01f;
  m.routing.z_beta = 0.001f;
  run_case("null", m);
}

TEST(TrainTorch, DenseToSparseGate) {
  ModelShape m = tiny_shape();
  m.routing.dts = true;
  m.routing.dts_decay_steps = 6;
  m.routing.dts_hard_step = 7;  // soft phase for steps 0-6, then top-k
  m.routing.dts_threshold = 0.1f;
  m.routing.aux_alpha = 0.01f;
  run_case("dts", m);
}

TEST(TrainTorch, SharedExpertGatedFineGrainedUntied) {
  ModelShape m = tiny_shape();
  m.n_expert = 8;
  m.n_expert_used = 4;
  m.n_ff_exp = 8;
  m.n_ff_shexp = 16;
  m.shared_gate = true;
  m.tied = false;
  m.routing.norm_topk = false;
  m.routing.weights_scale = 2.0f;
  m.routing.aux_alpha = 0.01f;
  run_case("shared-fine", m);
}

TEST(TrainTorch, DenseBaseline) {
  ModelShape m = tiny_shape();
  m.n_expert = 1;
  m.n_expert_used = 1;
  m.n_ff_exp = 32;
  run_case("dense", m);
}
