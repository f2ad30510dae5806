// The qwen3moe decoder for training: parameters, gradients, saved activations and the forward / backward
// over a micro-batch of B sequences of T = n_ctx tokens. All buffers are allocated once for the largest
// batch; a step allocates nothing.
//
//   x = token_embd[tokens]
//   per layer:  h = x + Wo · attn(rope(qnorm(Wq·n1(x))), rope(knorm(Wk·n1(x))), Wv·n1(x))
//               x = h + MoE(n2(h))
//   logits = W_out · n_out(x),  loss = mean cross-entropy + sum of the layers' aux and z losses
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "train/moe_layer_train.h"
#include "train/ops.h"
#include "train/params.h"
#include "train/train_config.h"

namespace moe::train {

struct LayerActs {
  std::vector<float> x_in, xn1, rstd1;    // [N][d], [N][d], [N]
  std::vector<float> q_raw, k_raw, v;     // [N][q_dim], [N][kv_dim], [N][kv_dim]
  std::vector<float> q_rstd, k_rstd;      // [N * n_head], [N * n_head_kv]
  std::vector<float> q, k;                // after q/k norm and RoPE
  std::vector<float> P;                   // [B][n_head][T][T]
  std::vector<float> att;                 // [N][q_dim]
  std::vector<float> h, xn2, rstd2;       // [N][d], [N][d], [N]
  MoeActs moe;
};

struct MicroLoss {
  double ce_sum = 0;   // summed token cross-entropy (nats)
  int64_t count = 0;   // predicted tokens
  double aux = 0, z = 0;  // summed over layers
  double ce_mean() const { return count ? ce_sum / static_cast<double>(count) : 0.0; }
};

class TrainModel {
 public:
  TrainModel(const ModelShape& m, int max_batch, ThreadPool& pool);

  const ModelShape& shape() const { return m_; }
  const ParamLayout& layout() const { return layout_; }
  int max_batch() const { return max_batch_; }
  ThreadPool& pool() { return pool_; }

  std::vector<float> params;  // flat, layout() order
  std::vector<float> grads;   // same layout; backward() adds into it
  // Aux-loss-free selection bias per layer ([n_expert] each; empty when the routing has no bias).
  std::vector<std::vector<float>> sel_bias;

  // Runs B sequences (tokens [B][T]) up to the logits ([B*T][n_vocab], see logits()).
  void forward(const int32_t* tokens, int B, const RouteStep& rs);
  float* logits() { return logits_.data(); }
  // Cross-entropy against targets [B*T] (-1: ignored) on the logits of the last forward. With grad_scale != 0
  // the logits are replaced by their gradient, ready for backward(); nll (optional) gets per-token losses.
  MicroLoss loss(const int32_t* targets, float grad_scale, float* nll = nullptr);
  // Adds the gradients of (grad_scale-weighted CE given to loss()) + loss_scale * (aux + z) into grads.
  void backward(const int32_t* tokens, float loss_scale);

  // Per layer, the last forward's assignments per slot ([n_slots]).
  const std::vector<double>& layer_load(int il) const { return acts_[static_cast<size_t>(il)].moe.load; }
  const LayerActs& layer_acts(int il) const { return acts_[static_cast<size_t>(il)]; }

 private:
  MoeParams moe_params(int il) const;
  MoeGrads moe_grads(int il);

  ModelShape m_;
  ParamLayout layout_;
  int max_batch_;
  ThreadPool& pool_;
  int B_ = 0;
  std::vector<float> rope_cs_;  // [T][head_dim]
  std::vector<LayerActs> acts_;
  std::vector<float> x_out_, xnf_, rstdf_, logits_, moe_y_;
  // Backward scratch.
  std::vector<float> g_x_, g_xn_, g_att_, g_q_, g_k_, g_v_, g_qraw_, g_kraw_;
  OpsScratch ops_;
  MoeScratchTrain moe_scratch_;
};

}  // namespace moe::train
