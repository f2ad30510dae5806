#include "experts/profiler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/context.h"
#include "tokenizer/tokenizer.h"

namespace moe {

ExpertProfiler::ExpertProfiler(const ModelConfig& cfg, TaskStats& into, int tcess_k, double tcess_r,
                               bool tcess_centered)
    : cfg_(cfg), s_(into), tcess_k_(std::max(1, tcess_k)), tcess_r_(tcess_r), tcess_centered_(tcess_centered) {
  if (s_.count.empty()) s_.resize(cfg.n_layer, cfg.n_expert);
  for (int l = 0; l < cfg.n_layer; ++l)
    if (cfg.layer_is_moe[static_cast<size_t>(l)]) {
      first_moe_layer_ = l;
      break;
    }
}

void ExpertProfiler::on_route(const RoutingEvent& ev) {
  const int l = ev.layer, E = ev.n_expert;
  auto& count = s_.count[l];
  auto& prob = s_.prob_sum[l];
  auto& weight = s_.weight_sum[l];
  auto& tcess = s_.tcess_sum[l];
  top_.resize(static_cast<size_t>(E));
  if (l == first_moe_layer_) s_.n_tokens += ev.n_tokens;  // every token passes each MoE layer once
  for (int t = 0; t < ev.n_tokens; ++t) {
    const float* logits = ev.logits + static_cast<size_t>(t) * ev.n_total;
    const float* probs = ev.probs + static_cast<size_t>(t) * ev.n_total;
    for (int e = 0; e < E; ++e) prob[e] += probs[e];
    for (int j = 0; j < ev.n_used[t]; ++j) {
      const int e = ev.ids[t * ev.slot_stride + j];
      if (e >= E) continue;  // null expert
      count[e] += 1;
      weight[e] += ev.weights[t * ev.slot_stride + j];
    }
    // PreMoe marker: the logits of the top tcess_k experts (optionally only the confident ones), raw or
    // relative to the token's mean logit.
    const int k = std::min(tcess_k_, E);
    double offset = 0;
    if (tcess_centered_) {
      for (int e = 0; e < E; ++e) offset += logits[e];
      offset /= E;
    }
    for (int e = 0; e < E; ++e) top_[e] = e;
    std::partial_sort(top_.begin(), top_.begin() + k, top_.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    q_.assign(static_cast<size_t>(k), 0.0);
    double z = 0;
    for (int j = 0; j < k; ++j) z += q_[j] = std::exp(static_cast<double>(logits[top_[j]] - logits[top_[0]]));
    for (int j = 0; j < k; ++j)
      if (tcess_r_ < 0 || q_[j] / z >= tcess_r_) tcess[top_[j]] += logits[top_[j]] - offset;
  }
  if (trace_) {
    for (int t = 0; t < ev.n_tokens; ++t) {
      const int64_t pos = pos0_ + t;
      std::string piece = "?";
      if (tok_ && t < static_cast<int>(window_.size())) {
        piece = tok_->token_to_piece(window_[t]);
        for (char& c : piece)
          if (c == '\t' || c == '\n' || c == '\r') c = ' ';
      }
      *trace_ << pos << '\t' << piece << '\t' << l << '\t';
      for (int j = 0; j < ev.n_used[t]; ++j) *trace_ << (j ? "," : "") << ev.ids[t * ev.slot_stride + j];
      *trace_ << '\t';
      for (int j = 0; j < ev.n_used[t]; ++j) *trace_ << (j ? "," : "") << ev.weights[t * ev.slot_stride + j];
      *trace_ << '\n';
    }
  }
}

void ExpertProfiler::on_expert_outputs(const RoutingEvent& ev, const int32_t* slot_row, const float* out,
                                       int n_embd) {
  auto& sum = s_.reap_sum[ev.layer];
  auto& cnt = s_.reap_count[ev.layer];
  for (int t = 0; t < ev.n_tokens; ++t)
    for (int j = 0; j < ev.n_used[t]; ++j) {
      const int e = ev.ids[t * ev.slot_stride + j];
      const int r = slot_row[t * ev.slot_stride + j];
      if (e >= ev.n_expert || r < 0) continue;  // null expert
      const float* o = out + static_cast<size_t>(r) * n_embd;
      double sq = 0;
      for (int i = 0; i < n_embd; ++i) sq += static_cast<double>(o[i]) * o[i];
      sum[e] += std::fabs(static_cast<double>(ev.weights[t * ev.slot_stride + j])) * std::sqrt(sq);
      cnt[e] += 1;
    }
}

void profile_tokens(Context& ctx, ExpertProfiler& profiler, std::span<const int32_t> tokens, int window, int32_t bos,
                    const std::function<void(int64_t, int64_t)>& progress) {
  if (window < 2) throw UsageError("profiling window must be at least 2 tokens");
  const int body = bos >= 0 ? window - 1 : window;
  std::vector<int32_t> buf;
  std::vector<float> logits(static_cast<size_t>(ctx.config().n_vocab));
  ctx.set_observer(&profiler);
  int64_t done = 0;
  const int64_t total = static_cast<int64_t>(tokens.size());
  while (done < total) {
    const int64_t n = std::min<int64_t>(body, total - done);
    buf.clear();
    if (bos >= 0) buf.push_back(bos);
    buf.insert(buf.end(), tokens.begin() + done, tokens.begin() + done + n);
    ctx.truncate(0);
    profiler.set_window(buf, done - (bos >= 0 ? 1 : 0));
    ctx.decode(buf, logits.data(), false);
    done += n;
    if (progress) progress(done, total);
  }
  ctx.set_observer(nullptr);
}

}  // namespace moe
