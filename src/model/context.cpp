#include "model/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/quant.h"
#include "ops/matmul.h"
#include "ops/packed_weights.h"

namespace moe {

namespace {

constexpr int64_t kQueryBlock = 16;  // queries per attention task (prompt batches)

size_t max_act_bytes(int64_t k) {
  // The largest activation row of k elements in any format (F32 activations for F32 weights).
  return row_bytes(DType::F32, k);
}

// Packed copies of every matrix the forward pass multiplies with (types without a packed layout are skipped).
std::shared_ptr<const PackedWeights> build_packed(const Model& m, ThreadPool& pool) {
  auto p = std::make_shared<PackedWeights>();
  for (const LayerWeights& lw : m.layers) {
    for (const Mat* w : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.ffn_gate, &lw.ffn_up, &lw.ffn_down, &lw.gate_shexp,
                         &lw.up_shexp, &lw.down_shexp, &lw.moe.router})
      p->add(*w);
    for (const ExpertMats* e : {&lw.moe.gate, &lw.moe.up, &lw.moe.down}) p->add(*e);
  }
  p->add(m.output);
  p->build(pool);
  return p;
}

std::shared_ptr<const PackedWeights> packed_for(const Model& m, ThreadPool& pool, const ContextParams& p) {
  if (p.packed) return p.packed;
  // The reference kernels are the oracle for the file layouts; repacking only pays with the SIMD ones.
  if (!p.repack || (p.kernels && p.kernels == &reference_kernels())) return nullptr;
  return build_packed(m, pool);
}

// Activation rows for weight format f from n float rows of k: the floats themselves for F32 weights, else
// converted into buf. Returns the rows and sets their stride.
const uint8_t* acts_for(const Exec& ex, const ActFormat& f, const float* x, int64_t n, int64_t k, uint8_t* buf,
                        size_t* stride) {
  if (acts_are_floats(f)) {
    *stride = sizeof(float) * static_cast<size_t>(k);
    return reinterpret_cast<const uint8_t*>(x);
  }
  *stride = act_bytes(f, k);
  convert_acts(ex, f, x, k, n, k, buf, *stride);
  return buf;
}

}  // namespace

Context::Context(const Model& model, ThreadPool& pool, ContextParams p)
    : model_(model),
      pool_(pool),
      packed_(packed_for(model, pool, p)),
      ex_{p.kernels ? *p.kernels : simd_kernels(), pool, packed_.get()} {
  const ModelConfig& c = model.config();
  n_ctx_ = p.n_ctx > 0 ? p.n_ctx : default_context_length(c);
  if (n_ctx_ <= 0) throw UsageError("context size must be positive");
  n_batch_ = std::max(1, std::min(p.n_batch, n_ctx_));
  const size_t B = static_cast<size_t>(n_batch_);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  const size_t ctx_padded = static_cast<size_t>((n_ctx_ + kKeyBlock - 1) / kKeyBlock * kKeyBlock);
  k_cache_.assign(static_cast<size_t>(c.n_layer), std::vector<float>(ctx_padded * kv_dim));
  v_cache_.assign(static_cast<size_t>(c.n_layer), std::vector<float>(static_cast<size_t>(n_ctx_) * kv_dim));
  x_.assign(B * c.n_embd, 0.f);
  xn_.assign(B * c.n_embd, 0.f);
  q_.assign(B * q_dim, 0.f);
  k_.assign(B * kv_dim, 0.f);
  v_.assign(B * kv_dim, 0.f);
  attn_.assign(B * q_dim, 0.f);
  out_.assign(B * c.n_embd, 0.f);
  shexp_.assign(B * c.n_embd, 0.f);
  shexp_gate_.assign(B, 0.f);
  rope_cs_.assign(B * c.n_rot, 0.f);
  att_scratch_.assign(static_cast<size_t>(pool.size()) * kQueryBlock * ctx_padded, 0.f);
  const size_t act = std::max(max_act_bytes(c.n_embd), max_act_bytes(static_cast<int64_t>(q_dim)));
  act_q_.assign(B * act + 64, 0);
  act_q2_.assign(B * act + 64, 0);
  size_t ffn_bytes = 0;
  for (const LayerWeights& lw : model.layers) {
    if (lw.ffn_gate.present()) ffn_bytes = std::max(ffn_bytes, ffn_scratch_bytes(lw.ffn_gate, lw.ffn_down, n_batch_));
    if (lw.gate_shexp.present())
      ffn_bytes = std::max(ffn_bytes, ffn_scratch_bytes(lw.gate_shexp, lw.down_shexp, n_batch_));
  }
  ffn_scratch_.assign(ffn_bytes, 0);
  set_routing(RoutingControl{});
}

void Context::set_routing(const RoutingControl& ctl) {
  const ModelConfig& c = config();
  if (ctl.top_k < 0) throw UsageError("top-k override must be positive");
  auto check_flags = [&](const std::vector<std::vector<uint8_t>>& v, const char* what) {
    if (v.size() > static_cast<size_t>(c.n_layer)) throw UsageError(std::string(what) + ": more layers than the model has");
    for (const auto& l : v)
      if (!l.empty() && l.size() != static_cast<size_t>(c.n_expert))
        throw UsageError(std::string(what) + ": expert flags do not match the model's expert count");
  };
  check_flags(ctl.banned, "ban");
  check_flags(ctl.forced, "force");
  routing_ = ctl;
  for (const LayerWeights& lw : model_.layers)
    if (lw.moe.gate.present()) {
      const int max_k = std::max(1, ctl.max_experts_per_token(c.n_expert + c.router.n_null, c.n_expert_used));
      moe_scratch_.reserve(c, lw.moe, n_batch_, std::max(max_k, std::min(c.n_expert + c.router.n_null, c.n_expert_used)));
      break;
    }
}

double Context::mean_experts_per_token() const {
  return routed_tokens_ ? static_cast<double>(routed_experts_) / static_cast<double>(routed_tokens_) : 0.0;
}

void Context::reset_expert_stats() { routed_tokens_ = routed_experts_ = 0; }

void Context::truncate(int n) {
  if (n < 0 || n > n_past_) throw UsageError("truncate: position out of range");
  n_past_ = n;
}

void Context::decode(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  const ModelConfig& c = config();
  if (tokens.empty()) throw UsageError("decode: no tokens");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab)
      throw UsageError("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary [0, " + std::to_string(c.n_vocab) + ")");
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_)
    throw UsageError("context length " + std::to_string(n_ctx_) + " exceeded: " + std::to_string(n_past_) +
                     " positions used, " + std::to_string(tokens.size()) + " more requested (raise --ctx)");
  const size_t n_vocab = static_cast<size_t>(c.n_vocab);
  for (size_t done = 0; done < tokens.size();) {
    const int n = static_cast<int>(std::min<size_t>(n_batch_, tokens.size() - done));
    const bool last_chunk = done + n == tokens.size();
    float* out = all_logits ? logits + done * n_vocab : (last_chunk ? logits : nullptr);
    decode_batch(tokens.data() + done, n, out, all_logits);
    done += static_cast<size_t>(n);
  }
}

// cos/sin per (token, rotary pair) for the batch's positions, computed as ggml does (theta advanced by
// repeated multiplication in float) so that results agree with llama.cpp to float rounding.
void Context::rope_cache(int n) {
  const ModelConfig& c = config();
  const int half = c.n_rot / 2;
  const float theta_scale = std::pow(c.rope_theta, -2.0f / static_cast<float>(c.n_rot));
  const float* ff = model_.rope_freqs.present() ? model_.rope_freqs.data : nullptr;
  for (int t = 0; t < n; ++t) {
    float theta = static_cast<float>(n_past_ + t);
    float* cs = rope_cs_.data() + static_cast<size_t>(t) * c.n_rot;  // cos[half] then sin[half]
    for (int i = 0; i < half; ++i) {
      const float th = c.rope_freq_scale * (theta / (ff ? ff[i] : 1.0f));
      cs[i] = std::cos(th);
      cs[half + i] = std::sin(th);
      theta *= theta_scale;
    }
  }
}

void Context::attention_block(int il, int n) {
  const ModelConfig& c = config();
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  const int64_t E = c.n_embd, hd = c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.n_head) * hd, kv_dim = static_cast<int64_t>(c.n_head_kv) * hd;

  {
    OpTimer timer(ex_.times, OpTimes::kNorm);
    for (int t = 0; t < n; ++t) ex_.k.rms_norm(x_.data() + t * E, lw.attn_norm.data, c.rms_eps, E, xn_.data() + t * E);
  }

  // q, k, v projections in one parallel loop when they share an activation format (the usual case).
  OpTimer qkv_timer(ex_.times, OpTimes::kQkv);  // then the following steps, each under its own op
  const WeightRef wq = weight_ref(ex_, lw.wq), wk = weight_ref(ex_, lw.wk), wv = weight_ref(ex_, lw.wv);
  const ActFormat qf = act_format(wq);
  size_t qb = 0;
  const uint8_t* xq = acts_for(ex_, qf, xn_.data(), n, E, act_q_.data(), &qb);
  MatmulJob jobs[3] = {{&wq, q_.data(), q_dim}};
  int n_jobs = 1;
  for (auto [w, y] : {std::pair{&wk, k_.data()}, std::pair{&wv, v_.data()}}) {
    if (act_format(*w) == qf) {
      jobs[n_jobs++] = {w, y, kv_dim};
    } else {
      size_t b = 0;
      const uint8_t* x2 = acts_for(ex_, act_format(*w), xn_.data(), n, E, act_q2_.data(), &b);
      matmul(ex_, *w, x2, b, n, y, kv_dim);
    }
  }
  matmul_many(ex_, jobs, n_jobs, xq, qb, n);
  auto add_bias = [&](const Vec& b, float* y, int64_t dim) {
    if (!b.present()) return;
    for (int t = 0; t < n; ++t)
      for (int64_t i = 0; i < dim; ++i) y[t * dim + i] += b.data[i];
  };
  add_bias(lw.bq, q_.data(), q_dim);
  add_bias(lw.bk, k_.data(), kv_dim);
  add_bias(lw.bv, v_.data(), kv_dim);
  if (c.clamp_kqv > 0.f) {
    auto clamp = [&](float* y, size_t m) {
      for (size_t i = 0; i < m; ++i) y[i] = std::clamp(y[i], -c.clamp_kqv, c.clamp_kqv);
    };
    clamp(q_.data(), static_cast<size_t>(n) * q_dim);
    clamp(k_.data(), static_cast<size_t>(n) * kv_dim);
    clamp(v_.data(), static_cast<size_t>(n) * kv_dim);
  }

  qkv_timer.next(OpTimes::kNorm);
  qk_norm_rope(il, n);
  qkv_timer.next(OpTimes::kAttention);

  // Append to the cache, then attend causally: tasks of up to kQueryBlock consecutive queries of one head share
  // every cache load.
  float* kc = k_cache_[static_cast<size_t>(il)].data();
  float* vc = v_cache_[static_cast<size_t>(il)].data();
  const int64_t ctx_blocks = (n_ctx_ + kKeyBlock - 1) / kKeyBlock;
  for (int t = 0; t < n; ++t) {
    const int64_t p = n_past_ + t;
    for (int h = 0; h < c.n_head_kv; ++h) {
      const float* kt = k_.data() + t * kv_dim + h * hd;
      float* kb = kc + (h * ctx_blocks + p / kKeyBlock) * kKeyBlock * hd + p % kKeyBlock;
      for (int64_t d = 0; d < hd; ++d) kb[d * kKeyBlock] = kt[d];
      std::memcpy(vc + (h * n_ctx_ + p) * hd, v_.data() + t * kv_dim + h * hd, sizeof(float) * static_cast<size_t>(hd));
    }
  }
  const float scale = c.attn_scale != 0.f ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = c.n_head / c.n_head_kv;
  const int64_t n_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  auto attend = [&](int64_t task, int tid) {
    const int64_t blk = n_blocks - 1 - task / c.n_head;  // longest (latest) query blocks first
    const int h = static_cast<int>(task % c.n_head), kvh = h / group;
    const int64_t t0 = blk * kQueryBlock, nq = std::min<int64_t>(kQueryBlock, n - t0);
    ex_.k.attention_kt(q_.data() + t0 * q_dim + h * hd, q_dim, nq, kc + kvh * ctx_blocks * kKeyBlock * hd,
                       vc + kvh * n_ctx_ * hd, hd, n_past_ + t0, hd, scale,
                       att_scratch_.data() + static_cast<size_t>(tid) * kQueryBlock * ctx_blocks * kKeyBlock,
                       attn_.data() + t0 * q_dim + h * hd, q_dim);
  };
  // Short contexts make this a few microseconds of work: then the calling thread does it alone.
  const int64_t n_tasks = n_blocks * c.n_head;
  if (static_cast<int64_t>(n) * c.n_head * (n_past_ + n) * hd < (int64_t{1} << 16)) {
    for (int64_t task = 0; task < n_tasks; ++task) attend(task, 0);
  } else {
    pool_.parallel_for(n_tasks, attend);
  }

  qkv_timer.next(OpTimes::kWo);
  const WeightRef wo = weight_ref(ex_, lw.wo);
  size_t ob = 0;
  const uint8_t* xa = acts_for(ex_, act_format(wo), attn_.data(), n, q_dim, act_q_.data(), &ob);
  matmul(ex_, wo, xa, ob, n, out_.data(), E);
  qkv_timer.next(OpTimes::kNorm);
  for (int t = 0; t < n; ++t)
    for (int64_t i = 0; i < E; ++i) x_[t * E + i] += out_[t * E + i] + (lw.bo.present() ? lw.bo.data[i] : 0.f);
}

// q/k RMSNorm, then RoPE, for the batch's n tokens.
void Context::qk_norm_rope(int il, int n) {
  const ModelConfig& c = config();
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  const int64_t hd = c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.n_head) * hd, kv_dim = static_cast<int64_t>(c.n_head_kv) * hd;
  const bool neox = c.rope_type == RopeType::Neox;
  for (int t = 0; t < n; ++t) {
    float* qt = q_.data() + t * q_dim;
    float* kt = k_.data() + t * kv_dim;
    if (c.qk_norm == QkNorm::PerHead) {
      for (int h = 0; h < c.n_head; ++h) ex_.k.rms_norm(qt + h * hd, lw.q_norm.data, c.rms_eps, hd, qt + h * hd);
      for (int h = 0; h < c.n_head_kv; ++h) ex_.k.rms_norm(kt + h * hd, lw.k_norm.data, c.rms_eps, hd, kt + h * hd);
    } else if (c.qk_norm == QkNorm::Full) {
      ex_.k.rms_norm(qt, lw.q_norm.data, c.rms_eps, q_dim, qt);
      ex_.k.rms_norm(kt, lw.k_norm.data, c.rms_eps, kv_dim, kt);
    }
    const float* cs = rope_cs_.data() + static_cast<size_t>(t) * c.n_rot;
    ex_.k.rope(qt, c.n_head, hd, c.n_rot, cs, neox);
    ex_.k.rope(kt, c.n_head_kv, hd, c.n_rot, cs, neox);
  }
}

void Context::ffn_block(int il, int n) {
  const ModelConfig& c = config();
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  const int64_t E = c.n_embd;
  {
    OpTimer timer(ex_.times, OpTimes::kNorm);
    for (int t = 0; t < n; ++t) ex_.k.rms_norm(x_.data() + t * E, lw.ffn_norm.data, c.rms_eps, E, xn_.data() + t * E);
  }

  if (c.layer_is_moe[static_cast<size_t>(il)]) {
    moe_ffn_forward(ex_, lw.moe, c.router, c.n_expert_used, routing_, il, xn_.data(), n, static_cast<int>(E),
                    out_.data(), moe_scratch_, observer_);  // times its own phases
    for (int t = 0; t < n; ++t) {
      int used = 0;
      for (int j = 0; j < moe_scratch_.n_used[t]; ++j) used += moe_scratch_.ids[t * moe_scratch_.slot_stride + j] < c.n_expert;
      routed_experts_ += used;
    }
    routed_tokens_ += n;
  } else {
    OpTimer timer(ex_.times, OpTimes::kGateUp);
    ffn_forward(ex_, lw.ffn_gate, lw.ffn_up, lw.ffn_down, xn_.data(), n, out_.data(), ffn_scratch_.data());
  }

  OpTimer timer(ex_.times, OpTimes::kGateUp);
  if (lw.gate_shexp.present()) {
    ffn_forward(ex_, lw.gate_shexp, lw.up_shexp, lw.down_shexp, xn_.data(), n, shexp_.data(), ffn_scratch_.data());
    if (lw.shexp_gate.present()) {
      const WeightRef sg = weight_ref(ex_, lw.shexp_gate);
      size_t gb = 0;
      const uint8_t* xg = acts_for(ex_, act_format(sg), xn_.data(), n, E, act_q_.data(), &gb);
      matmul(ex_, sg, xg, gb, n, shexp_gate_.data(), 1);
    }
    for (int t = 0; t < n; ++t) {
      // llama.cpp computes the sigmoid as silu(g)/g; the plain form agrees to float rounding.
      const float g = lw.shexp_gate.present() ? 1.0f / (1.0f + std::exp(-shexp_gate_[t])) : 1.0f;
      for (int64_t i = 0; i < E; ++i) out_[t * E + i] += shexp_[t * E + i] * g;
    }
  }
  timer.next(OpTimes::kNorm);
  for (size_t i = 0; i < static_cast<size_t>(n) * E; ++i) x_[i] += out_[i];
}

void Context::decode_batch(const int32_t* tokens, int n, float* logits, bool all_logits) {
  const ModelConfig& c = config();
  const int64_t E = c.n_embd;
  // Token embeddings (dequantized rows of token_embd).
  for (int t = 0; t < n; ++t) {
    const Mat& emb = model_.tok_embd;
    dequantize_row(emb.type, emb.data + static_cast<size_t>(tokens[t]) * emb.row_stride, x_.data() + t * E, E);
  }
  rope_cache(n);
  for (int il = 0; il < c.n_layer; ++il) {
    attention_block(il, n);
    ffn_block(il, n);
  }
  n_past_ += n;
  if (!logits) return;
  // Output head on the rows the caller wants.
  OpTimer timer(ex_.times, OpTimes::kOutput);
  const int first = all_logits ? 0 : n - 1;
  const int rows = n - first;
  for (int t = first; t < n; ++t)
    ex_.k.rms_norm(x_.data() + t * E, model_.output_norm.data, c.rms_eps, E, xn_.data() + (t - first) * E);
  const WeightRef out = weight_ref(ex_, model_.output);
  size_t ob = 0;
  const uint8_t* xo = acts_for(ex_, act_format(out), xn_.data(), rows, E, act_q_.data(), &ob);
  matmul(ex_, out, xo, ob, rows, logits, c.n_vocab);
}

}  // namespace moe
