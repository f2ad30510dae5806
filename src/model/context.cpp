#include "model/context.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "core/error.h"
#include "core/quant.h"
#include "model/model_info.h"
#include "ops/matmul.h"
#include "ops/packed_weights.h"

namespace moe {

namespace {

// Packed copies of every matrix the forward pass multiplies with (types without a packed layout are skipped);
// the experts too unless another store serves them, packed eagerly or each on use (lazy). The rows are read from
// the file, not through its mapping; with another store (a memory budget) past the page cache.
std::shared_ptr<const PackedWeights> build_packed(const Model& m, ThreadPool& pool, bool experts, bool lazy) {
  auto p = std::make_shared<PackedWeights>();
  for (const LayerWeights& lw : m.layers) {
    for (const Mat* w : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.ffn_gate, &lw.ffn_up, &lw.ffn_down, &lw.gate_shexp,
                         &lw.up_shexp, &lw.down_shexp, &lw.moe.router, &lw.mla.q_a, &lw.mla.q_b, &lw.mla.kv_a})
      p->add(*w);
    p->add(lw.mla.k_b);
    p->add(lw.mla.v_b);
    if (experts)
      for (const ExpertMats* e : {&lw.moe.gate, &lw.moe.up, &lw.moe.down}) p->add(*e, 16, lazy);
  }
  p->add(m.output);
  const GgufFile& f = m.file();
  const PackedWeights::Source src{f.base(), f.file_size(), f.path(), !experts};
  // Packing on use: the other matrices wait for the second step too (the first runs them on the file's layout).
  p->build(pool, f.mapped() ? &src : nullptr, experts && lazy);
  return p;
}

std::shared_ptr<const PackedWeights> packed_for(const Model& m, ThreadPool& pool, const ContextParams& p) {
  if (p.packed) return p.packed;
  // The reference kernels are the oracle for the file layouts; repacking only pays with the SIMD ones.
  if (!p.repack || (p.kernels && p.kernels == &reference_kernels())) return nullptr;
  return build_packed(m, pool, p.experts == nullptr, p.pack_experts_on_use);
}

// Physical memory of the machine (0 if unknown).
double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

// What n_ctx positions cost, for the error a too-large --ctx gets instead of std::bad_alloc (or the OOM killer
// while the cache is zero-filled). The estimate counts f32 keys and values of every KV head in every layer.
std::string context_cost(double per_pos, int n_ctx, int n_seq) {
  return "the KV cache for " + std::to_string(n_ctx) + " positions" +
         (n_seq > 1 ? " x " + std::to_string(n_seq) + " sequences" : std::string()) + " would need " +
         human_bytes(per_pos * n_ctx * n_seq) + " (" + human_bytes(per_pos) + " per position)";
}

}  // namespace

Context::Context(const Model& model, ThreadPool& pool, ContextParams p)
    : model_(model),
      pool_(pool),
      packed_(packed_for(model, pool, p)),
      ex_{p.kernels ? *p.kernels : simd_kernels(), pool, packed_.get()},
      store_(p.experts) {
  const ModelConfig& c = model.config();
  if (!store_) {
    std::vector<LayerExperts> layers;
    for (const LayerWeights& lw : model.layers) layers.push_back(lw.moe.experts());
    store_ = std::make_shared<ResidentExpertStore>(std::move(layers), ex_);
  }
  moe_spec_.router = c.router;
  moe_spec_.ffn = c.expert_ffn;
  moe_spec_.model_k = c.n_expert_used;
  n_ctx_ = p.n_ctx > 0 ? p.n_ctx : default_context_length(c);
  if (n_ctx_ <= 0) throw UsageError("context size must be positive");
  if (p.n_seq <= 0) throw UsageError("the number of parallel sequences must be positive");
  n_batch_ = std::max(1, std::min(p.n_batch, n_ctx_ * p.n_seq));
  // Refuse a context the machine cannot hold before anything sized by it is allocated (a sanitizer build aborts
  // on a huge allocation instead of throwing bad_alloc).
  const double kv_value_bytes = p.cache_type == DType::F32 ? 4.0 : p.cache_type == DType::F16 ? 2.0 : 34.0 / 32.0;
  const double per_pos = c.kv_lora_rank > 0 ? static_cast<double>(c.n_layer) * (c.kv_lora_rank + c.n_rot) * 4.0
                                            : 2.0 * c.n_layer * c.n_head_kv * c.head_dim * kv_value_bytes;
  if (const double ram = physical_memory_bytes(); ram > 0 && per_pos * n_ctx_ * p.n_seq > ram)
    throw UsageError(context_cost(per_pos, n_ctx_, p.n_seq) + ", more than the " + human_bytes(ram) +
                     " of memory here (lower --ctx)");
  try {
    // The architecture picks its attention block (null: grouped-query attention, the only one with a quantized
    // cache layout so far).
    if (model.arch().make_attention) {
      if (p.cache_type != DType::F32)
        throw UsageError(std::string("--cache-type ") + dtype_name(p.cache_type) + ": this model's attention (" +
                         c.arch + ") keeps an f32 cache");
      attention_ = model.arch().make_attention(model, ex_, n_batch_, n_ctx_);
    } else {
      attention_ = make_gqa_attention(model, ex_, n_batch_, n_ctx_, p.cache_type);
    }
    cache_ = std::make_unique<KvCache>(attention_->cache_shapes(), p.n_seq, n_ctx_, static_cast<int>(kKeyBlock),
                                       p.cache_type);
  } catch (const std::bad_alloc&) {
    throw UsageError(context_cost(per_pos, n_ctx_, p.n_seq) + ": not enough memory (lower --ctx)");
  }

  const size_t B = static_cast<size_t>(n_batch_);
  tokens_.assign(B, 0);
  pos_.assign(B, 0);
  out_rows_.assign(B, 0);
  runs_.reserve(static_cast<size_t>(p.n_seq));
  x_.assign(B * c.n_embd, 0.f);
  xn_.assign(B * c.n_embd, 0.f);
  out_.assign(B * c.n_embd, 0.f);
  shexp_.assign(B * c.n_embd, 0.f);
  shexp_gate_.assign(B, 0.f);
  act_q_.assign(B * row_bytes(DType::F32, c.n_embd) + 64, 0);
  size_t ffn_bytes = 0;
  for (const LayerWeights& lw : model.layers) {
    if (lw.ffn_gate.present()) ffn_bytes = std::max(ffn_bytes, ffn_scratch_bytes(lw.ffn_gate, lw.ffn_down, n_batch_));
    if (lw.gate_shexp.present())
      ffn_bytes = std::max(ffn_bytes, ffn_scratch_bytes(lw.gate_shexp, lw.down_shexp, n_batch_));
  }
  ffn_scratch_.assign(ffn_bytes, 0);
  prefetcher_.ctx = this;
  prefetch_ = p.prefetch && store_->wants_prefetch();
  set_routing(RoutingControl{});
}

Context::~Context() = default;

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
      const int k = std::max(max_k, std::min(c.n_expert + c.router.n_null, c.n_expert_used));
      moe_scratch_.reserve(lw.moe, c.router, c.n_embd, n_batch_, k);
      if (prefetch_) {
        ahead_.reserve(lw.moe, c.router, c.n_embd, n_batch_, k);
        ahead_xn_.assign(static_cast<size_t>(n_batch_) * c.n_embd, 0.f);
        ahead_ids_.reserve(static_cast<size_t>(c.n_expert));
        ahead_seen_.assign(static_cast<size_t>(c.n_expert), 0);
      }
      break;
    }
}

double Context::mean_experts_per_token() const {
  return routed_tokens_ ? static_cast<double>(routed_experts_) / static_cast<double>(routed_tokens_) : 0.0;
}

void Context::reset_expert_stats() { routed_tokens_ = routed_experts_ = 0; }

void Context::truncate(int seq, int n) {
  if (seq < 0 || seq >= n_seq()) throw UsageError("truncate: sequence out of range");
  if (n < 0 || n > cache_->n_past(seq)) throw UsageError("truncate: position out of range");
  cache_->set_n_past(seq, n);
}

void Context::check_tokens(std::span<const int32_t> tokens) const {
  const int n_vocab = config().n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= n_vocab)
      throw UsageError("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
}

void Context::decode(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  if (tokens.empty()) throw UsageError("decode: no tokens");
  check_tokens(tokens);
  if (n_past(0) + static_cast<int64_t>(tokens.size()) > n_ctx_)
    throw UsageError("context length " + std::to_string(n_ctx_) + " exceeded: " + std::to_string(n_past(0)) +
                     " positions used, " + std::to_string(tokens.size()) + " more requested (raise --ctx)");
  const size_t n_vocab = static_cast<size_t>(config().n_vocab);
  for (size_t done = 0; done < tokens.size();) {
    const int n = static_cast<int>(std::min<size_t>(n_batch_, tokens.size() - done));
    const bool last_chunk = done + n == tokens.size();
    const SeqInput in{0, tokens.subspan(done, static_cast<size_t>(n)), all_logits || last_chunk, all_logits};
    float* out = all_logits ? logits + done * n_vocab : (last_chunk ? logits : nullptr);
    decode_step(std::span<const SeqInput>(&in, 1), out);
    done += static_cast<size_t>(n);
  }
}

int Context::decode_step(std::span<const SeqInput> inputs, float* logits) {
  if (inputs.empty()) throw UsageError("decode: no sequences");
  int n = 0;
  for (const SeqInput& in : inputs) {
    if (in.seq < 0 || in.seq >= n_seq())
      throw UsageError("sequence " + std::to_string(in.seq) + " out of range [0, " + std::to_string(n_seq()) + ")");
    if (in.tokens.empty()) throw UsageError("decode: sequence " + std::to_string(in.seq) + " has no tokens");
    check_tokens(in.tokens);
    if (n_past(in.seq) + static_cast<int64_t>(in.tokens.size()) > n_ctx_)
      throw UsageError("context length " + std::to_string(n_ctx_) + " exceeded: " + std::to_string(n_past(in.seq)) +
                       " positions used, " + std::to_string(in.tokens.size()) + " more requested (raise --ctx)");
    n += static_cast<int>(in.tokens.size());
    if (n > n_batch_) throw UsageError("decode: more tokens in one step than the batch size " + std::to_string(n_batch_));
    for (const SeqInput& other : inputs)
      if (&other != &in && other.seq == in.seq) throw UsageError("decode: a sequence appears twice in one step");
  }
  // Lay the step out: tokens by sequence, their positions, and the rows that want logits.
  runs_.clear();
  int t = 0, n_rows = 0;
  for (const SeqInput& in : inputs) {
    const int m = static_cast<int>(in.tokens.size()), p0 = n_past(in.seq);
    runs_.push_back({in.seq, t, m, p0});
    for (int i = 0; i < m; ++i) {
      tokens_[static_cast<size_t>(t + i)] = in.tokens[static_cast<size_t>(i)];
      pos_[static_cast<size_t>(t + i)] = p0 + i;
      if (in.all_logits || (in.logits && i == m - 1)) out_rows_[static_cast<size_t>(n_rows++)] = t + i;
    }
    t += m;
  }
  for (const SeqRun& r : runs_) cache_->prefault(r.seq, r.pos0 + r.n);
  if (packed_ && stepped_) packed_->pack_deferred(pool_);  // after the first token, not before it
  stepped_ = true;
  forward(runs_, n);
  for (const SeqRun& r : runs_) cache_->set_n_past(r.seq, r.pos0 + r.n);
  if (logits && n_rows > 0) output_rows(out_rows_.data(), n_rows, logits);
  return logits ? n_rows : 0;
}

void Context::forward(std::span<const SeqRun> runs, int n) {
  const ModelConfig& c = config();
  const int64_t E = c.n_embd;
  // Token embeddings (dequantized rows of token_embd).
  for (int t = 0; t < n; ++t) {
    const Mat& emb = model_.tok_embd;
    dequantize_row(emb.type, emb.data + static_cast<size_t>(tokens_[static_cast<size_t>(t)]) * emb.row_stride,
                   x_.data() + t * E, E);
  }
  attention_->begin_step(pos_.data(), n);
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
    {
      OpTimer timer(ex_.times, OpTimes::kNorm);
      for (int t = 0; t < n; ++t) ex_.k.rms_norm(x_.data() + t * E, lw.attn_norm.data, c.rms_eps, E, xn_.data() + t * E);
    }
    // A router on the layer input (SmallThinker) routes now, so the store can load the experts during attention.
    if (c.router_before_attention && c.layer_is_moe[static_cast<size_t>(il)]) route_early(il, n);
    attention_->forward(il, xn_.data(), n, runs, *cache_, out_.data());
    {
      OpTimer timer(ex_.times, OpTimes::kNorm);
      for (size_t i = 0; i < static_cast<size_t>(n) * E; ++i) x_[i] += out_[i];
    }
    ffn_block(il, n);
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
    // Router-ahead guesses the next layer's experts; a pre-attention router knows them exactly (route_early).
    const bool ahead = prefetch_ && !c.router_before_attention && store_->wants_prefetch();
    moe_ffn_forward(ex_, lw.moe, *store_, moe_spec_, routing_, il, xn_.data(), n, static_cast<int>(E), out_.data(),
                    moe_scratch_, observer_, ahead ? &prefetcher_ : nullptr,
                    c.router_before_attention);  // times its own phases
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
      const ActRows xg = acts_for(ex_, act_format(sg), xn_.data(), n, E, act_q_.data());
      matmul(ex_, sg, xg.data, xg.stride, n, shexp_gate_.data(), 1);
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

// Router-ahead: the next MoE layer's router on this layer's hidden state (normalised with the next layer's FFN
// norm), routed as that layer would, and the union of the chosen experts handed to the store as a prefetch hint.
void Context::prefetch_ahead(int il, int n) {
  const ModelConfig& c = config();
  int next = il + 1;
  while (next < c.n_layer && !c.layer_is_moe[static_cast<size_t>(next)]) ++next;
  if (next >= c.n_layer) return;
  const LayerWeights& lw = model_.layers[static_cast<size_t>(next)];
  const int64_t E = c.n_embd;
  OpTimer timer(ex_.times, OpTimes::kRouter);
  for (int t = 0; t < n; ++t) ex_.k.rms_norm(x_.data() + t * E, lw.ffn_norm.data, c.rms_eps, E, ahead_xn_.data() + t * E);
  moe_router_logits(ex_, lw.moe.router, ahead_xn_.data(), n, static_cast<int>(E), ahead_, lw.moe.router_bias);
  moe_route(moe_spec_, routing_, next, lw.moe.selection_bias, c.n_expert, n, ahead_);
  prefetch_routed(next, n, ahead_);
}

// The union of the experts routed in s, handed to the store as a prefetch hint for layer il.
void Context::prefetch_routed(int il, int n, const MoeScratch& s) {
  const int n_expert = config().n_expert;
  ahead_ids_.clear();
  std::fill(ahead_seen_.begin(), ahead_seen_.end(), 0);
  for (int t = 0; t < n; ++t)
    for (int j = 0; j < s.n_used[t]; ++j) {
      const int32_t e = s.ids[static_cast<size_t>(t) * s.slot_stride + j];
      if (e < n_expert && !ahead_seen_[static_cast<size_t>(e)]) {
        ahead_seen_[static_cast<size_t>(e)] = 1;
        ahead_ids_.push_back(e);
      }
    }
  store_->prefetch(il, ahead_ids_);
}

// SmallThinker: layer il's router on the layer input x (not normalised), routed into the MoE scratch that the
// layer's FFN then uses as is; the chosen experts go to the store before attention runs, so loads overlap it.
void Context::route_early(int il, int n) {
  const ModelConfig& c = config();
  const LayerWeights& lw = model_.layers[static_cast<size_t>(il)];
  {
    OpTimer timer(ex_.times, OpTimes::kRouter);
    moe_router_logits(ex_, lw.moe.router, x_.data(), n, c.n_embd, moe_scratch_, lw.moe.router_bias);
    timer.next(OpTimes::kRoute);
    moe_route(moe_spec_, routing_, il, lw.moe.selection_bias, c.n_expert, n, moe_scratch_);
  }
  if (prefetch_ && store_->wants_prefetch()) prefetch_routed(il, n, moe_scratch_);
}

// Output head on the given rows of the step.
void Context::output_rows(const int32_t* rows, int n_rows, float* logits) {
  const ModelConfig& c = config();
  const int64_t E = c.n_embd;
  OpTimer timer(ex_.times, OpTimes::kOutput);
  for (int i = 0; i < n_rows; ++i)
    ex_.k.rms_norm(x_.data() + static_cast<int64_t>(rows[i]) * E, model_.output_norm.data, c.rms_eps, E,
                   xn_.data() + static_cast<int64_t>(i) * E);
  const WeightRef out = weight_ref(ex_, model_.output);
  const ActRows xo = acts_for(ex_, act_format(out), xn_.data(), n_rows, E, act_q_.data());
  matmul(ex_, out, xo.data, xo.stride, n_rows, logits, c.n_vocab);
}

}  // namespace moe
