#include "train/model_train.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "train/blas.h"

namespace moe::train {

namespace {

constexpr size_t kAbsent = SIZE_MAX;

void add_into(ThreadPool& pool, const float* a, float* y, int64_t n) {
  pool.parallel_for(pool.size(), [&](int64_t part, int) {
    int64_t b, e;
    split_range(n, pool.size(), static_cast<int>(part), b, e);
    for (int64_t i = b; i < e; ++i) y[i] += a[i];
  });
}

}  // namespace

TrainModel::TrainModel(const ModelShape& m, int max_batch, ThreadPool& pool)
    : m_(m), layout_(m), max_batch_(max_batch), pool_(pool) {
  if (max_batch < 1) throw UsageError("batch must be >= 1");
  const size_t T = static_cast<size_t>(m.n_ctx), N = static_cast<size_t>(max_batch) * T;
  const size_t d = static_cast<size_t>(m.n_embd), qd = static_cast<size_t>(m.q_dim());
  const size_t kvd = static_cast<size_t>(m.kv_dim());
  params.assign(layout_.total(), 0.f);
  grads.assign(layout_.total(), 0.f);
  sel_bias.assign(static_cast<size_t>(m.n_layer),
                  m.routing.bias_rate > 0 ? std::vector<float>(static_cast<size_t>(m.n_expert), 0.f)
                                          : std::vector<float>());
  rope_cs_.assign(T * static_cast<size_t>(m.head_dim), 0.f);
  rope_table(m.n_ctx, m.head_dim, m.rope_theta, rope_cs_.data());
  acts_.resize(static_cast<size_t>(m.n_layer));
  for (LayerActs& a : acts_) {
    a.x_in.assign(N * d, 0.f);
    a.xn1.assign(N * d, 0.f);
    a.rstd1.assign(N, 0.f);
    a.q_raw.assign(N * qd, 0.f);
    a.k_raw.assign(N * kvd, 0.f);
    a.v.assign(N * kvd, 0.f);
    a.q_rstd.assign(N * static_cast<size_t>(m.n_head), 0.f);
    a.k_rstd.assign(N * static_cast<size_t>(m.n_head_kv), 0.f);
    a.q.assign(N * qd, 0.f);
    a.k.assign(N * kvd, 0.f);
    a.P.assign(static_cast<size_t>(max_batch) * static_cast<size_t>(m.n_head) * T * T, 0.f);
    a.att.assign(N * qd, 0.f);
    a.h.assign(N * d, 0.f);
    a.xn2.assign(N * d, 0.f);
    a.rstd2.assign(N, 0.f);
    a.moe.reserve(m, static_cast<int64_t>(N));
  }
  x_out_.assign(N * d, 0.f);
  xnf_.assign(N * d, 0.f);
  rstdf_.assign(N, 0.f);
  logits_.assign(N * static_cast<size_t>(m.n_vocab), 0.f);
  moe_y_.assign(N * d, 0.f);
  g_x_.assign(N * d, 0.f);
  g_xn_.assign(N * d, 0.f);
  g_att_.assign(N * qd, 0.f);
  g_q_.assign(N * qd, 0.f);
  g_k_.assign(N * kvd, 0.f);
  g_v_.assign(N * kvd, 0.f);
  g_qraw_.assign(N * qd, 0.f);
  g_kraw_.assign(N * kvd, 0.f);
  ops_.reserve(pool.size(), std::max<int64_t>(m.n_embd, m.head_dim), m.n_ctx);
  moe_scratch_.reserve(m, static_cast<int64_t>(N));
}

MoeParams TrainModel::moe_params(int il) const {
  const LayerOffsets& L = layout_.layers[static_cast<size_t>(il)];
  const float* P = params.data();
  MoeParams p;
  p.router = P + L.router;
  p.gate = P + L.gate_exps;
  p.up = P + L.up_exps;
  p.down = P + L.down_exps;
  if (L.gate_sh != kAbsent) {
    p.gate_sh = P + L.gate_sh;
    p.up_sh = P + L.up_sh;
    p.down_sh = P + L.down_sh;
  }
  if (L.sh_gate != kAbsent) p.sh_gate = P + L.sh_gate;
  if (!sel_bias[static_cast<size_t>(il)].empty()) p.sel_bias = sel_bias[static_cast<size_t>(il)].data();
  return p;
}

MoeGrads TrainModel::moe_grads(int il) {
  const LayerOffsets& L = layout_.layers[static_cast<size_t>(il)];
  float* G = grads.data();
  MoeGrads g;
  g.router = G + L.router;
  g.gate = G + L.gate_exps;
  g.up = G + L.up_exps;
  g.down = G + L.down_exps;
  if (L.gate_sh != kAbsent) {
    g.gate_sh = G + L.gate_sh;
    g.up_sh = G + L.up_sh;
    g.down_sh = G + L.down_sh;
  }
  if (L.sh_gate != kAbsent) g.sh_gate = G + L.sh_gate;
  return g;
}

void TrainModel::forward(const int32_t* tokens, int B, const RouteStep& rs) {
  if (B < 1 || B > max_batch_) throw Error("forward: batch of " + std::to_string(B) + " sequences exceeds the reserved " +
                                           std::to_string(max_batch_));
  B_ = B;
  const int64_t T = m_.n_ctx, N = static_cast<int64_t>(B) * T, d = m_.n_embd, hd = m_.head_dim;
  const int64_t qd = m_.q_dim(), kvd = m_.kv_dim(), V = m_.n_vocab;
  const float* P = params.data();
  for (int64_t i = 0; i < N; ++i)
    if (tokens[i] < 0 || tokens[i] >= V) throw Error("forward: token id " + std::to_string(tokens[i]) + " out of range");
  embedding_fwd(P + layout_.tok_embd, tokens, N, d, acts_[0].x_in.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int il = 0; il < m_.n_layer; ++il) {
    LayerActs& a = acts_[static_cast<size_t>(il)];
    const LayerOffsets& L = layout_.layers[static_cast<size_t>(il)];
    rmsnorm_fwd(pool_, a.x_in.data(), P + L.attn_norm, N, d, m_.rms_eps, a.xn1.data(), a.rstd1.data());
    linear_fwd(pool_, a.xn1.data(), P + L.wq, N, d, qd, a.q_raw.data());
    linear_fwd(pool_, a.xn1.data(), P + L.wk, N, d, kvd, a.k_raw.data());
    linear_fwd(pool_, a.xn1.data(), P + L.wv, N, d, kvd, a.v.data());
    rmsnorm_fwd(pool_, a.q_raw.data(), P + L.q_norm, N * m_.n_head, hd, m_.rms_eps, a.q.data(), a.q_rstd.data());
    rmsnorm_fwd(pool_, a.k_raw.data(), P + L.k_norm, N * m_.n_head_kv, hd, m_.rms_eps, a.k.data(), a.k_rstd.data());
    rope_apply(pool_, a.q.data(), N, m_.n_head, hd, T, rope_cs_.data(), false);
    rope_apply(pool_, a.k.data(), N, m_.n_head_kv, hd, T, rope_cs_.data(), false);
    attention_fwd(pool_, a.q.data(), a.k.data(), a.v.data(), B, T, m_.n_head, m_.n_head_kv, hd, scale, a.P.data(),
                  a.att.data());
    std::memcpy(a.h.data(), a.x_in.data(), sizeof(float) * static_cast<size_t>(N * d));
    linear_fwd(pool_, a.att.data(), P + L.wo, N, qd, d, a.h.data(), true);
    rmsnorm_fwd(pool_, a.h.data(), P + L.ffn_norm, N, d, m_.rms_eps, a.xn2.data(), a.rstd2.data());
    RouteStep lrs = rs;
    lrs.layer = il;
    moe_forward(pool_, m_, moe_params(il), a.xn2.data(), N, moe_y_.data(), a.moe, lrs);
    float* x_next = il + 1 < m_.n_layer ? acts_[static_cast<size_t>(il) + 1].x_in.data() : x_out_.data();
    std::memcpy(x_next, a.h.data(), sizeof(float) * static_cast<size_t>(N * d));
    add_into(pool_, moe_y_.data(), x_next, N * d);
  }
  rmsnorm_fwd(pool_, x_out_.data(), P + layout_.output_norm, N, d, m_.rms_eps, xnf_.data(), rstdf_.data());
  linear_fwd(pool_, xnf_.data(), P + layout_.output, N, d, V, logits_.data());
}

MicroLoss TrainModel::loss(const int32_t* targets, float grad_scale, float* nll) {
  const int64_t N = static_cast<int64_t>(B_) * m_.n_ctx;
  for (int64_t i = 0; i < N; ++i)
    if (targets[i] >= m_.n_vocab) throw Error("loss: target id " + std::to_string(targets[i]) + " out of range");
  MicroLoss r;
  const CeResult ce = cross_entropy(pool_, ops_, logits_.data(), targets, N, m_.n_vocab, grad_scale, nll);
  r.ce_sum = ce.loss_sum;
  r.count = ce.count;
  for (const LayerActs& a : acts_) {
    r.aux += a.moe.aux_loss;
    r.z += a.moe.z_loss;
  }
  return r;
}

void TrainModel::backward(const int32_t* tokens, float loss_scale) {
  const int64_t T = m_.n_ctx, N = static_cast<int64_t>(B_) * T, d = m_.n_embd, hd = m_.head_dim;
  const int64_t qd = m_.q_dim(), kvd = m_.kv_dim(), V = m_.n_vocab;
  const float* P = params.data();
  float* G = grads.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  // Head: logits_ holds dlogits.
  linear_bwd_x(pool_, logits_.data(), P + layout_.output, N, d, V, g_xn_.data(), false);
  linear_bwd_w(pool_, logits_.data(), xnf_.data(), N, d, V, G + layout_.output);
  rmsnorm_bwd(pool_, ops_, g_xn_.data(), x_out_.data(), P + layout_.output_norm, rstdf_.data(), N, d, g_x_.data(), false,
              G + layout_.output_norm);

  for (int il = m_.n_layer - 1; il >= 0; --il) {
    LayerActs& a = acts_[static_cast<size_t>(il)];
    const LayerOffsets& L = layout_.layers[static_cast<size_t>(il)];
    // x_next = h + MoE(n2(h)): g_x_ is dL/dx_next = dL/dMoE-out, and the residual part of dL/dh.
    MoeGrads mg = moe_grads(il);
    moe_backward(pool_, m_, moe_params(il), mg, a.xn2.data(), N, g_x_.data(), g_xn_.data(), a.moe, moe_scratch_,
                 loss_scale);
    rmsnorm_bwd(pool_, ops_, g_xn_.data(), a.h.data(), P + L.ffn_norm, a.rstd2.data(), N, d, g_x_.data(), true,
                G + L.ffn_norm);
    // h = x + Wo att: g_x_ is now dL/dh.
    linear_bwd_x(pool_, g_x_.data(), P + L.wo, N, qd, d, g_att_.data(), false);
    linear_bwd_w(pool_, g_x_.data(), a.att.data(), N, qd, d, G + L.wo);
    attention_bwd(pool_, ops_, g_att_.data(), a.q.data(), a.k.data(), a.v.data(), a.P.data(), B_, T, m_.n_head,
                  m_.n_head_kv, hd, scale, g_q_.data(), g_k_.data(), g_v_.data());
    rope_apply(pool_, g_q_.data(), N, m_.n_head, hd, T, rope_cs_.data(), true);
    rope_apply(pool_, g_k_.data(), N, m_.n_head_kv, hd, T, rope_cs_.data(), true);
    rmsnorm_bwd(pool_, ops_, g_q_.data(), a.q_raw.data(), P + L.q_norm, a.q_rstd.data(), N * m_.n_head, hd,
                g_qraw_.data(), false, G + L.q_norm);
    rmsnorm_bwd(pool_, ops_, g_k_.data(), a.k_raw.data(), P + L.k_norm, a.k_rstd.data(), N * m_.n_head_kv, hd,
                g_kraw_.data(), false, G + L.k_norm);
    linear_bwd_x(pool_, g_qraw_.data(), P + L.wq, N, d, qd, g_xn_.data(), false);
    linear_bwd_x(pool_, g_kraw_.data(), P + L.wk, N, d, kvd, g_xn_.data(), true);
    linear_bwd_x(pool_, g_v_.data(), P + L.wv, N, d, kvd, g_xn_.data(), true);
    linear_bwd_w(pool_, g_qraw_.data(), a.xn1.data(), N, d, qd, G + L.wq);
    linear_bwd_w(pool_, g_kraw_.data(), a.xn1.data(), N, d, kvd, G + L.wk);
    linear_bwd_w(pool_, g_v_.data(), a.xn1.data(), N, d, kvd, G + L.wv);
    rmsnorm_bwd(pool_, ops_, g_xn_.data(), a.x_in.data(), P + L.attn_norm, a.rstd1.data(), N, d, g_x_.data(), true,
                G + L.attn_norm);
  }
  embedding_bwd(g_x_.data(), tokens, N, d, G + layout_.tok_embd);
}

}  // namespace moe::train
