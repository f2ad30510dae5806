// Grouped-query attention: q/k/v projections (one parallel loop when they share an activation format), optional
// biases, clamping and q/k RMSNorm, RoPE on the first n_rot dims of each head (none on NoPE layers), append to the
// cache, causal attention per (sequence run, block of queries, head) (windowed and/or with a sink logit where the
// model says so: the masked kernel; the plain kernel otherwise, so other models' numbers stay as they were), output
// projection.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/scratch_vector.h"
#include "core/quant.h"
#include "model/attention.h"
#include "model/model.h"
#include "model/rope.h"
#include "ops/matmul.h"

namespace moe {

namespace {

constexpr int64_t kQueryBlock = 16;  // queries per attention task (prompt batches)

class GqaAttention final : public AttentionBlock {
 public:
  GqaAttention(const Model& model, const Exec& ex, int max_tokens, int n_ctx, DType kv_type);
  std::vector<KvLayerShape> cache_shapes() const override;
  void begin_step(const int32_t* pos, int n) override;
  void forward(int il, const float* xn, int n, std::span<const SeqRun> runs, KvCache& cache, float* out) override;

 private:
  void project_qkv(const LayerWeights& lw, const float* xn, int n);
  void norm_and_rope(int il, const LayerWeights& lw, int n);
  void append_to_cache(int il, int n, std::span<const SeqRun> runs, KvCache& cache);
  void attend(int il, int n, std::span<const SeqRun> runs, KvCache& cache);

  const Model& model_;
  const ModelConfig& c_;
  const Exec& ex_;
  int64_t q_dim_, kv_dim_, ctx_padded_;
  // Scratch for one step of up to max_tokens tokens.
  ScratchVector<float> q_, k_, v_, attn_, rope_cs_, att_scratch_;
  // Quantized caches: per thread, one KV head's keys (transposed blocks) and values converted back to floats.
  ScratchVector<float> kt_tmp_, v_tmp_, row_tmp_;
  ScratchVector<uint8_t> act_q_, act_q2_;
  std::vector<int64_t> run_tasks_;  // [runs + 1] prefix sums of attention tasks per run
};

GqaAttention::GqaAttention(const Model& model, const Exec& ex, int max_tokens, int n_ctx, DType kv_type)
    : model_(model), c_(model.config()), ex_(ex) {
  const size_t B = static_cast<size_t>(max_tokens);
  q_dim_ = static_cast<int64_t>(c_.n_head) * c_.head_dim;
  kv_dim_ = static_cast<int64_t>(c_.n_head_kv) * c_.head_dim;
  ctx_padded_ = (n_ctx + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  q_.assign(B * q_dim_, 0.f);
  k_.assign(B * kv_dim_, 0.f);
  v_.assign(B * kv_dim_, 0.f);
  attn_.assign(B * q_dim_, 0.f);
  rope_cs_.assign(B * static_cast<size_t>(std::max(c_.n_rot, 2)), 0.f);
  att_scratch_.assign(static_cast<size_t>(ex.pool.size()) * kQueryBlock * ctx_padded_, 0.f);
  // The largest activation row in any format is the F32 row.
  const size_t act = row_bytes(DType::F32, std::max<int64_t>(c_.n_embd, q_dim_));
  act_q_.assign(B * act + 64, 0);
  act_q2_.assign(B * act + 64, 0);
  run_tasks_.assign(B + 1, 0);
  if (kv_type != DType::F32) {
    const size_t threads = static_cast<size_t>(ex.pool.size()), hd = static_cast<size_t>(c_.head_dim);
    kt_tmp_.assign(threads * static_cast<size_t>(ctx_padded_) * hd, 0.f);
    v_tmp_.assign(threads * static_cast<size_t>(n_ctx) * hd, 0.f);
    row_tmp_.assign(threads * hd, 0.f);
  }
}

std::vector<KvLayerShape> GqaAttention::cache_shapes() const {
  // Keys: per KV head, blocks of kKeyBlock positions [head_dim][16]; values: per KV head [n_ctx][head_dim].
  const int heads = static_cast<int>(c_.n_head_kv);
  return std::vector<KvLayerShape>(static_cast<size_t>(c_.n_layer), KvLayerShape{kv_dim_, kv_dim_, heads, heads});
}


void GqaAttention::project_qkv(const LayerWeights& lw, const float* xn, int n) {
  const int64_t E = c_.n_embd;
  const WeightRef wq = weight_ref(ex_, lw.wq), wk = weight_ref(ex_, lw.wk), wv = weight_ref(ex_, lw.wv);
  const ActFormat qf = act_format(wq);
  const ActRows xq = acts_for(ex_, qf, xn, n, E, act_q_.data());
  MatmulJob jobs[3] = {{&wq, q_.data(), q_dim_}};
  int n_jobs = 1;
  for (auto [w, y] : {std::pair{&wk, k_.data()}, std::pair{&wv, v_.data()}}) {
    if (act_format(*w) == qf) {
      jobs[n_jobs++] = {w, y, kv_dim_};
    } else {
      const ActRows x2 = acts_for(ex_, act_format(*w), xn, n, E, act_q2_.data());
      matmul(ex_, *w, x2.data, x2.stride, n, y, kv_dim_);
    }
  }
  matmul_many(ex_, jobs, n_jobs, xq.data, xq.stride, n);
  auto add_bias = [&](const Vec& b, float* y, int64_t dim) {
    if (!b.present()) return;
    for (int t = 0; t < n; ++t)
      for (int64_t i = 0; i < dim; ++i) y[t * dim + i] += b.data[i];
  };
  add_bias(lw.bq, q_.data(), q_dim_);
  add_bias(lw.bk, k_.data(), kv_dim_);
  add_bias(lw.bv, v_.data(), kv_dim_);
  if (c_.clamp_kqv > 0.f) {
    auto clamp = [&](float* y, size_t m) {
      for (size_t i = 0; i < m; ++i) y[i] = std::clamp(y[i], -c_.clamp_kqv, c_.clamp_kqv);
    };
    clamp(q_.data(), static_cast<size_t>(n) * q_dim_);
    clamp(k_.data(), static_cast<size_t>(n) * kv_dim_);
    clamp(v_.data(), static_cast<size_t>(n) * kv_dim_);
  }
}

void GqaAttention::begin_step(const int32_t* pos, int n) {
  const float* ff = model_.rope_freqs.present() ? model_.rope_freqs.data : nullptr;
  for (int t = 0; t < n; ++t) rope_cos_sin(c_, ff, pos[t], rope_cs_.data() + static_cast<size_t>(t) * c_.n_rot);
}

void GqaAttention::norm_and_rope(int il, const LayerWeights& lw, int n) {
  const int64_t hd = c_.head_dim;
  const bool neox = c_.rope_type == RopeType::Neox;
  const bool rope = c_.uses_rope(il);  // NoPE layers (SmallThinker) take positions from the causal mask alone
  for (int t = 0; t < n; ++t) {
    float* qt = q_.data() + t * q_dim_;
    float* kt = k_.data() + t * kv_dim_;
    if (c_.qk_norm == QkNorm::PerHead) {
      for (int h = 0; h < c_.n_head; ++h) ex_.k.rms_norm(qt + h * hd, lw.q_norm.data, c_.rms_eps, hd, qt + h * hd);
      for (int h = 0; h < c_.n_head_kv; ++h) ex_.k.rms_norm(kt + h * hd, lw.k_norm.data, c_.rms_eps, hd, kt + h * hd);
    } else if (c_.qk_norm == QkNorm::Full) {
      ex_.k.rms_norm(qt, lw.q_norm.data, c_.rms_eps, q_dim_, qt);
      ex_.k.rms_norm(kt, lw.k_norm.data, c_.rms_eps, kv_dim_, kt);
    }
    if (!rope) continue;
    const float* cs = rope_cs_.data() + static_cast<size_t>(t) * c_.n_rot;
    ex_.k.rope(qt, c_.n_head, hd, c_.n_rot, cs, neox);
    ex_.k.rope(kt, c_.n_head_kv, hd, c_.n_rot, cs, neox);
  }
}

void GqaAttention::append_to_cache(int il, int n, std::span<const SeqRun> runs, KvCache& cache) {
  const int64_t hd = c_.head_dim, ctx_blocks = ctx_padded_ / kKeyBlock, n_ctx = cache.n_ctx();
  if (cache.type() != DType::F32) {  // one row per position: [kv head][head_dim] in the cache's type
    const size_t kb = cache.k_row_bytes(il), vb = cache.v_row_bytes(il);
    for (const SeqRun& r : runs)
      for (int i = 0; i < r.n; ++i) {
        const int64_t t = r.first + i, p = r.pos0 + i;
        quantize_row(cache.type(), k_.data() + t * kv_dim_, cache.k_rows(il, r.seq) + p * kb, kv_dim_);
        quantize_row(cache.type(), v_.data() + t * kv_dim_, cache.v_rows(il, r.seq) + p * vb, kv_dim_);
      }
    return;
  }
  for (const SeqRun& r : runs) {
    float* kc = cache.k(il, r.seq);
    float* vc = cache.v(il, r.seq);
    for (int i = 0; i < r.n; ++i) {
      const int t = r.first + i;
      const int64_t p = r.pos0 + i;
      for (int h = 0; h < c_.n_head_kv; ++h) {
        const float* kt = k_.data() + t * kv_dim_ + h * hd;
        float* kb = kc + (h * ctx_blocks + p / kKeyBlock) * kKeyBlock * hd + p % kKeyBlock;
        for (int64_t d = 0; d < hd; ++d) kb[d * kKeyBlock] = kt[d];
        std::memcpy(vc + (h * n_ctx + p) * hd, v_.data() + t * kv_dim_ + h * hd, sizeof(float) * static_cast<size_t>(hd));
      }
    }
  }
  (void)n;
}

void GqaAttention::attend(int il, int n, std::span<const SeqRun> runs, KvCache& cache) {
  const int64_t hd = c_.head_dim, ctx_blocks = ctx_padded_ / kKeyBlock, n_ctx = cache.n_ctx();
  const float scale = c_.attn_scale != 0.f ? c_.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = c_.n_head / c_.n_head_kv;
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  const int64_t window = c_.is_swa(il) ? c_.n_swa : 0;
  const bool masked = window > 0 || lw.attn_sinks.present();
  const bool quantized = cache.type() != DType::F32;
  if (quantized && kt_tmp_.empty()) throw Error("attention: the KV cache's type is not the one the block was made for");
  auto scratch_row = [&](int tid) { return row_tmp_.data() + static_cast<size_t>(tid) * hd; };
  // Tasks: per run, its blocks of up to kQueryBlock queries (latest first: they are the longest) x heads.
  int64_t work = 0;
  run_tasks_[0] = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const int64_t blocks = (runs[i].n + kQueryBlock - 1) / kQueryBlock;
    run_tasks_[i + 1] = run_tasks_[i] + blocks * c_.n_head;
    work += static_cast<int64_t>(runs[i].n) * c_.n_head * (runs[i].pos0 + runs[i].n) * hd;
  }
  auto task_fn = [&](int64_t task, int tid) {
    const size_t ri = static_cast<size_t>(std::upper_bound(run_tasks_.begin(), run_tasks_.begin() +
                                                           static_cast<std::ptrdiff_t>(runs.size()) + 1, task) -
                                          run_tasks_.begin() - 1);
    const SeqRun& r = runs[ri];
    const int64_t local = task - run_tasks_[ri];
    const int64_t n_blocks = (r.n + kQueryBlock - 1) / kQueryBlock;
    const int64_t blk = n_blocks - 1 - local / c_.n_head;
    const int h = static_cast<int>(local % c_.n_head), kvh = h / group;
    const int64_t t0 = blk * kQueryBlock, nq = std::min<int64_t>(kQueryBlock, r.n - t0);
    const int64_t row = r.first + t0;
    const float* qh = q_.data() + row * q_dim_ + h * hd;
    // Windowed layers start at the key block holding the first position the block's first query sees, so their
    // cost follows the window, not the context (same numbers: the kernel masks relative to each query).
    const int64_t base = window > 0 ? std::max<int64_t>(0, r.pos0 + t0 + 1 - window) / kKeyBlock * kKeyBlock : 0;
    const float* kh;
    const float* vh;
    if (quantized) {
      // Convert the positions this block of queries sees back to floats in the float cache's layout.
      float* kt = kt_tmp_.data() + static_cast<size_t>(tid) * ctx_padded_ * hd;
      float* vt = v_tmp_.data() + static_cast<size_t>(tid) * n_ctx * hd;
      const int64_t n_kv = r.pos0 + t0 + nq;
      const size_t kb = cache.k_row_bytes(il), vb = cache.v_row_bytes(il), hb = row_bytes(cache.type(), hd);
      const uint8_t* krows = cache.k_rows(il, r.seq) + kvh * hb;
      const uint8_t* vrows = cache.v_rows(il, r.seq) + kvh * hb;
      float* tmp = scratch_row(tid);
      for (int64_t j = base; j < n_kv; ++j) {
        const int64_t jj = j - base;
        dequantize_row(cache.type(), krows + j * kb, tmp, hd);
        float* col = kt + (jj / kKeyBlock) * kKeyBlock * hd + jj % kKeyBlock;
        for (int64_t d = 0; d < hd; ++d) col[d * kKeyBlock] = tmp[d];
        dequantize_row(cache.type(), vrows + j * vb, vt + jj * hd, hd);
      }
      kh = kt;
      vh = vt;
    } else {
      kh = cache.k(il, r.seq) + kvh * ctx_blocks * kKeyBlock * hd + base * hd;
      vh = cache.v(il, r.seq) + kvh * n_ctx * hd + base * hd;
    }
    float* scratch = att_scratch_.data() + static_cast<size_t>(tid) * kQueryBlock * ctx_padded_;
    float* oh = attn_.data() + row * q_dim_ + h * hd;
    if (masked) {
      const float sink = lw.attn_sinks.present() ? lw.attn_sinks.data[h] : -INFINITY;
      ex_.k.attention_kt_masked(qh, q_dim_, nq, kh, vh, hd, r.pos0 + t0 - base, hd, scale, scratch, oh, q_dim_, window,
                                sink);
    } else {
      ex_.k.attention_kt(qh, q_dim_, nq, kh, vh, hd, r.pos0 + t0, hd, scale, scratch, oh, q_dim_);
    }
  };
  const int64_t n_tasks = run_tasks_[runs.size()];
  // Short contexts make this a few microseconds of work: then the calling thread does it alone.
  if (work < (int64_t{1} << 16)) {
    for (int64_t task = 0; task < n_tasks; ++task) task_fn(task, 0);
  } else {
    ex_.pool.parallel_for(n_tasks, task_fn);
  }
  (void)n;
}

void GqaAttention::forward(int il, const float* xn, int n, std::span<const SeqRun> runs, KvCache& cache,
                           float* out) {
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  OpTimer timer(ex_.times, OpTimes::kQkv);
  project_qkv(lw, xn, n);
  timer.next(OpTimes::kNorm);
  norm_and_rope(il, lw, n);
  timer.next(OpTimes::kAttention);
  append_to_cache(il, n, runs, cache);
  attend(il, n, runs, cache);
  timer.next(OpTimes::kWo);
  const WeightRef wo = weight_ref(ex_, lw.wo);
  const ActRows xa = acts_for(ex_, act_format(wo), attn_.data(), n, q_dim_, act_q_.data());
  matmul(ex_, wo, xa.data, xa.stride, n, out, c_.n_embd);
  if (lw.bo.present())
    for (int t = 0; t < n; ++t)
      for (int64_t i = 0; i < c_.n_embd; ++i) out[t * c_.n_embd + i] += lw.bo.data[i];
}

}  // namespace

std::unique_ptr<AttentionBlock> make_gqa_attention(const Model& model, const Exec& ex, int max_tokens, int n_ctx,
                                                   DType kv_type) {
  const ModelConfig& c = model.config();
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
    throw FormatError("attention: " + std::to_string(c.n_head) + " query heads cannot be grouped over " +
                      std::to_string(c.n_head_kv) + " KV heads");
  if (c.head_dim != c.head_dim_v)
    throw FormatError("attention: different key and value head sizes (" + std::to_string(c.head_dim) + ", " +
                      std::to_string(c.head_dim_v) + ") are not supported by grouped-query attention");
  if (c.head_dim % static_cast<int>(dtype_info(kv_type).block_size) != 0)
    throw UsageError(std::string("--cache-type ") + dtype_name(kv_type) + " needs a head size that is a multiple of " +
                     std::to_string(dtype_info(kv_type).block_size) + " (this model's is " +
                     std::to_string(c.head_dim) + ")");
  return std::make_unique<GqaAttention>(model, ex, max_tokens, n_ctx, kv_type);
}

}  // namespace moe
