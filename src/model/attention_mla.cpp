// Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2), in the absorbed form that caches only the compressed
// latent and the shared rope key:
//   q = q_b · rmsnorm(q_a · x)  (or attn_q · x)            per head [q_nope (nope) | q_pe (rope)]
//   [c | k_pe] = kv_a · x,  c = rmsnorm(c)                  c: kv_lora latent, k_pe: one rope key for all heads
//   RoPE on q_pe and k_pe; cache [c | k_pe] per position
//   per head: q_lat = k_b[h] · q_nope  (so q_lat·c_j = q_nope·k_nope_j without ever forming k_nope)
//             score_j = scale * ([q_lat | q_pe] · [c_j | k_pe_j]),  o_lat = sum_j softmax_j c_j,  o[h] = v_b[h] · o_lat
//   out = attn_output · concat_h o[h]
// Every projection goes through ops/matmul (the weight's activation format, as llama.cpp quantizes activations).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/quant.h"
#include "model/attention.h"
#include "model/model.h"
#include "model/rope.h"
#include "ops/matmul.h"

namespace moe {

namespace {

class MlaAttention final : public AttentionBlock {
 public:
  MlaAttention(const Model& model, const Exec& ex, int max_tokens, int n_ctx);
  std::vector<KvLayerShape> cache_shapes() const override;
  void begin_step(const int32_t* pos, int n) override;
  void forward(int il, const float* xn, int n, std::span<const SeqRun> runs, KvCache& cache, float* out) override;

 private:
  // y[t * ldy + r] = W x[t] for n rows of x (k floats each, contiguous).
  void project(const WeightRef& w, const float* x, int n, int64_t k, float* y, int64_t ldy);
  void project(const Mat& w, const float* x, int n, int64_t k, float* y, int64_t ldy) {
    project(weight_ref(ex_, w), x, n, k, y, ldy);
  }
  void project_q_kv(const LayerWeights& lw, const float* xn, int n);
  void absorb_q(const MlaWeights& m, int n);
  void attend(int il, std::span<const SeqRun> runs, KvCache& cache);
  void attend_one(const float* kc, int64_t n_kv, int t, int h, float* scratch);

  const Model& model_;
  const ModelConfig& c_;
  const Exec& ex_;
  int64_t H_, L_, R_, nope_, V_, hk_, kw_;  // heads, latent, rope, nope, value, q head width, cached width
  // Scratch for one step of up to max_tokens tokens.
  std::vector<float> qa_;    // [B][q_lora_rank]
  std::vector<float> q_;     // [B][H][nope + rope]
  std::vector<float> kva_;   // [B][L + R]: normed latent, roped k_pe
  std::vector<float> qabs_;  // [B][H][L + R]: absorbed query [q_lat | q_pe]
  std::vector<float> olat_;  // [H][B][L]: attention output in latent space
  std::vector<float> attn_;  // [B][H * V]
  std::vector<float> gather_, rope_cs_, scores_;
  std::vector<uint8_t> act_;
  std::vector<uint8_t> lat_act_;  // one latent row in a legacy kv_b's activation format
  std::vector<int32_t> tok_pos_;  // [B] position of each token in its sequence
  std::vector<int32_t> tok_run_;  // [B] run index of each token
  int64_t ctx_padded_ = 0;
  // Per thread: scores [ctx] and one head's output [L + R].
  size_t scratch_floats() const { return static_cast<size_t>(ctx_padded_ + kw_); }
};

MlaAttention::MlaAttention(const Model& model, const Exec& ex, int max_tokens, int n_ctx)
    : model_(model), c_(model.config()), ex_(ex) {
  H_ = c_.n_head;
  L_ = c_.kv_lora_rank;
  R_ = c_.n_rot;
  nope_ = c_.mla_head_k - c_.n_rot;
  V_ = c_.mla_head_v;
  hk_ = c_.mla_head_k;
  kw_ = L_ + R_;
  const size_t B = static_cast<size_t>(max_tokens);
  ctx_padded_ = (n_ctx + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  qa_.assign(B * static_cast<size_t>(std::max(c_.q_lora_rank, 1)), 0.f);
  q_.assign(B * H_ * hk_, 0.f);
  kva_.assign(B * kw_, 0.f);
  qabs_.assign(B * H_ * kw_, 0.f);
  olat_.assign(B * H_ * L_, 0.f);
  attn_.assign(B * H_ * V_, 0.f);
  gather_.assign(B * std::max(nope_, L_), 0.f);
  rope_cs_.assign(B * static_cast<size_t>(R_), 0.f);
  scores_.assign(static_cast<size_t>(ex.pool.size()) * scratch_floats(), 0.f);
  const int64_t widest = std::max({static_cast<int64_t>(c_.n_embd), static_cast<int64_t>(c_.q_lora_rank), H_ * V_, nope_, L_});
  act_.assign(B * row_bytes(DType::F32, widest) + 64, 0);
  lat_act_.assign(row_bytes(DType::F32, L_) + 64, 0);
  tok_pos_.assign(B, 0);
  tok_run_.assign(B, 0);
}

std::vector<KvLayerShape> MlaAttention::cache_shapes() const {
  // One row [c | k_pe] per position (the latent doubles as the value): no separate value part.
  return std::vector<KvLayerShape>(static_cast<size_t>(c_.n_layer), KvLayerShape{kw_, 0});
}

void MlaAttention::begin_step(const int32_t* pos, int n) {
  for (int t = 0; t < n; ++t) rope_cos_sin(c_, nullptr, pos[t], rope_cs_.data() + static_cast<size_t>(t) * R_);
}

void MlaAttention::project(const WeightRef& wr, const float* x, int n, int64_t k, float* y, int64_t ldy) {
  const ActRows xa = acts_for(ex_, act_format(wr), x, n, k, act_.data());
  matmul(ex_, wr, xa.data, xa.stride, n, y, ldy);
}

void MlaAttention::project_q_kv(const LayerWeights& lw, const float* xn, int n) {
  const MlaWeights& m = lw.mla;
  const int64_t E = c_.n_embd;
  if (m.q_a.present()) {
    const int64_t QL = c_.q_lora_rank;
    project(m.q_a, xn, n, E, qa_.data(), QL);
    for (int t = 0; t < n; ++t) ex_.k.rms_norm(qa_.data() + t * QL, m.q_a_norm.data, c_.rms_eps, QL, qa_.data() + t * QL);
    project(m.q_b, qa_.data(), n, QL, q_.data(), H_ * hk_);
  } else {
    project(lw.wq, xn, n, E, q_.data(), H_ * hk_);
  }
  project(m.kv_a, xn, n, E, kva_.data(), kw_);
  const DType lat_type = vec_dot_type(m.kv_b_type);
  for (int t = 0; t < n; ++t) {
    float* kv = kva_.data() + t * kw_;
    const float* cs = rope_cs_.data() + static_cast<size_t>(t) * R_;
    ex_.k.rms_norm(kv, m.kv_a_norm.data, c_.rms_eps, L_, kv);  // the latent only: k_pe is taken un-normed
    if (lat_type != DType::F32) {
      // Legacy attn_kv_b: llama.cpp forms k_nope and v from kv_b times the latent in kv_b's activation format
      // (e.g. Q8_0-rounded). Since k_b/v_b are the exact (dequantized) kv_b, using the rounded latent as key and
      // value here gives the same scores and outputs up to float rounding.
      ex_.k.quantize_rows(lat_type, kv, L_, 1, L_, lat_act_.data(), lat_act_.size());
      dequantize_row(lat_type, lat_act_.data(), kv, L_);
    }
    ex_.k.rope(kv + L_, 1, R_, R_, cs, false);
    ex_.k.rope(q_.data() + t * H_ * hk_ + nope_, H_, hk_, R_, cs, false);
  }
}

// qabs[t][h] = [k_b[h] · q_nope[t][h] | q_pe[t][h]].
void MlaAttention::absorb_q(const MlaWeights& m, int n) {
  for (int64_t h = 0; h < H_; ++h) {
    for (int t = 0; t < n; ++t)
      std::memcpy(gather_.data() + t * nope_, q_.data() + (t * H_ + h) * hk_, sizeof(float) * static_cast<size_t>(nope_));
    project(expert_ref(ex_, m.k_b, h), gather_.data(), n, nope_, qabs_.data() + h * kw_, H_ * kw_);
    for (int t = 0; t < n; ++t)
      std::memcpy(qabs_.data() + (t * H_ + h) * kw_ + L_, q_.data() + (t * H_ + h) * hk_ + nope_,
                  sizeof(float) * static_cast<size_t>(R_));
  }
}

// Head h of token t over cached positions [0, n_kv), with the kernel table's attention: the cached row [c | k_pe]
// serves as key and as value (kv_stride = its width), so the output's first L values are sum_j p_j c_j (the rope
// part of the output is discarded). Scratch: n_kv scores, then the kw-wide output.
void MlaAttention::attend_one(const float* kc, int64_t n_kv, int t, int h, float* scratch) {
  const float* q = qabs_.data() + (static_cast<int64_t>(t) * H_ + h) * kw_;
  float* o = scratch + ctx_padded_;
  ex_.k.attention(q, kc, kc, kw_, n_kv, kw_, c_.attn_scale, scratch, o);
  const int64_t B = static_cast<int64_t>(tok_pos_.size());
  std::memcpy(olat_.data() + (h * B + t) * L_, o, sizeof(float) * static_cast<size_t>(L_));
}

void MlaAttention::attend(int il, std::span<const SeqRun> runs, KvCache& cache) {
  int64_t n_tok = 0, work = 0;
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const SeqRun& r = runs[ri];
    for (int i = 0; i < r.n; ++i) {
      tok_pos_[static_cast<size_t>(r.first + i)] = r.pos0 + i;
      tok_run_[static_cast<size_t>(r.first + i)] = static_cast<int32_t>(ri);
    }
    n_tok += r.n;
    work += static_cast<int64_t>(r.n) * (r.pos0 + r.n) * H_ * kw_;
  }
  auto task = [&](int64_t task_id, int tid) {
    const int t = static_cast<int>(task_id / H_), h = static_cast<int>(task_id % H_);
    const SeqRun& r = runs[static_cast<size_t>(tok_run_[static_cast<size_t>(t)])];
    attend_one(cache.k(il, r.seq), tok_pos_[static_cast<size_t>(t)] + 1, t, h,
               scores_.data() + static_cast<size_t>(tid) * scratch_floats());
  };
  const int64_t n_tasks = n_tok * H_;
  // Short contexts are a few microseconds of work: the calling thread does them alone.
  if (work < (int64_t{1} << 16)) {
    for (int64_t i = 0; i < n_tasks; ++i) task(i, 0);
  } else {
    ex_.pool.parallel_for(n_tasks, task);
  }
}

void MlaAttention::forward(int il, const float* xn, int n, std::span<const SeqRun> runs, KvCache& cache, float* out) {
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  const MlaWeights& m = lw.mla;
  OpTimer timer(ex_.times, OpTimes::kQkv);
  project_q_kv(lw, xn, n);
  absorb_q(m, n);
  timer.next(OpTimes::kAttention);
  for (const SeqRun& r : runs) {
    float* kc = cache.k(il, r.seq);
    for (int i = 0; i < r.n; ++i)
      std::memcpy(kc + static_cast<int64_t>(r.pos0 + i) * kw_, kva_.data() + static_cast<int64_t>(r.first + i) * kw_,
                  sizeof(float) * static_cast<size_t>(kw_));
  }
  attend(il, runs, cache);
  timer.next(OpTimes::kWo);
  // olat_ is laid out [H][B][L] with B = the scratch's token capacity, so each head's rows are contiguous.
  const int64_t B = static_cast<int64_t>(tok_pos_.size());
  for (int64_t h = 0; h < H_; ++h) project(expert_ref(ex_, m.v_b, h), olat_.data() + h * B * L_, n, L_, attn_.data() + h * V_, H_ * V_);
  project(lw.wo, attn_.data(), n, H_ * V_, out, c_.n_embd);
}

}  // namespace

std::unique_ptr<AttentionBlock> make_mla_attention(const Model& model, const Exec& ex, int max_tokens, int n_ctx) {
  const ModelConfig& c = model.config();
  if (c.kv_lora_rank <= 0 || c.mla_head_k <= c.n_rot || c.mla_head_v <= 0)
    throw FormatError("attention: multi-head latent attention needs kv_lora_rank > 0 and MLA head sizes");
  return std::make_unique<MlaAttention>(model, ex, max_tokens, n_ctx);
}

}  // namespace moe
