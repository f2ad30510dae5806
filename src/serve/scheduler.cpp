#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moe::serve {

Job::Output Job::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return pending_.done || !pending_.text.empty() || !pending_.logprobs.empty() ||
                                          !pending_.trace.empty(); });
  Output out = std::move(pending_);
  pending_ = Output{};
  if (out.done) pending_.done = true, pending_.finish_reason = out.finish_reason;  // later calls see done, no data
  return out;
}

TokenLogprob token_logprob(const Tokenizer& tok, std::span<const float> logits, int32_t id, int n_top,
                           std::vector<int32_t>& order) {
  float mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, v);
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  TokenLogprob lp{tok.token_to_piece(id), logits[static_cast<size_t>(id)] - lse, {}};
  if (n_top > 0) {
    const size_t n = std::min(static_cast<size_t>(n_top), logits.size());
    order.resize(logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(), [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    });
    for (size_t i = 0; i < n; ++i) lp.top.push_back({tok.token_to_piece(order[i]), logits[static_cast<size_t>(order[i])] - lse});
  }
  return lp;
}

Scheduler::Scheduler(Context& ctx, const Tokenizer& tok, SchedulerParams p) : ctx_(ctx), tok_(tok), p_(p) {
  const int n_vocab = ctx.config().n_vocab;
  slots_.resize(static_cast<size_t>(ctx.n_seq()));
  for (Slot& s : slots_) s.seen.assign(static_cast<size_t>(n_vocab), 0);
  inputs_.reserve(slots_.size());
  keys_.reserve(slots_.size());
  input_slot_.reserve(slots_.size());
  row_slot_.assign(static_cast<size_t>(ctx.n_batch()), -1);
  logits_.assign(slots_.size() * static_cast<size_t>(n_vocab), 0.f);
  work_.assign(static_cast<size_t>(n_vocab), 0.f);
  m_.slots = static_cast<int>(slots_.size());
  if (p_.prefill_chunk <= 0) throw UsageError("prefill chunk must be positive");
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whoever still waits hears that the server is going away.
  for (Slot& s : slots_)
    if (s.job) finish(s, "error", "the server is shutting down");
  for (auto& job : queue_) {
    std::lock_guard lock(job->mu_);
    job->pending_.done = true;
    job->pending_.finish_reason = "error";
    job->pending_.error = "the server is shutting down";
    job->cv_.notify_all();
  }
}

void Scheduler::start() { thread_ = std::thread([this] { loop(); }); }

bool Scheduler::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mu_);
    // Room: a free slot (the job passes through the queue on its way there) or a place among the waiting.
    if (draining_.load() || stop_ || static_cast<int>(queue_.size()) + m_.active >= p_.max_queue + m_.slots) return false;
    queue_.push_back(std::move(job));
    m_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return true;
}

void Scheduler::drain() {
  draining_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerMetrics Scheduler::metrics() const {
  std::lock_guard lock(mu_);
  return m_;
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      auto busy = [&] { return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job != nullptr; }); };
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || busy() || draining_.load(); });
      if (stop_) return;
      if (draining_.load() && queue_.empty() && !busy()) return;
    }
    try {
      admit();
      step();
    } catch (const std::exception& e) {
      // Nothing may take the server down: the requests in this step fail, the others go on.
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (!s.job) continue;
        ctx_.truncate(static_cast<int>(i), std::min(ctx_.n_past(static_cast<int>(i)), static_cast<int>(s.cached.size())));
        s.cached.resize(static_cast<size_t>(ctx_.n_past(static_cast<int>(i))));
        finish(s, "error", e.what());
      }
    }
  }
}

// Moves queued requests into free slots, each into the free slot that already holds the longest prefix of it.
void Scheduler::admit() {
  for (;;) {
    std::shared_ptr<Job> job;
    int best = -1;
    size_t best_common = 0;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
      for (size_t s = 0; s < slots_.size(); ++s) {
        if (slots_[s].job) continue;
        const auto& c = slots_[s].cached;
        const auto& pr = queue_.front()->prompt;
        size_t n = 0;
        while (n < c.size() && n < pr.size() && c[n] == pr[n]) ++n;
        if (best < 0 || n > best_common) best = static_cast<int>(s), best_common = n;
      }
      if (best < 0) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      m_.queued = static_cast<int>(queue_.size());
    }
    start_job(best, std::move(job));
  }
}

void Scheduler::start_job(int s, std::shared_ptr<Job> job) {
  Slot& slot = slots_[static_cast<size_t>(s)];
  slot.job = std::move(job);
  Job& j = *slot.job;
  // Keep the cached prefix, but evaluate at least the last prompt token: its logits start generation.
  size_t common = 0;
  while (common < slot.cached.size() && common + 1 < j.prompt.size() && slot.cached[common] == j.prompt[common]) ++common;
  ctx_.truncate(s, static_cast<int>(common));
  slot.cached.resize(common);
  slot.prompt_done = common;
  slot.next = -1;
  slot.generated = 0;
  for (int32_t id : slot.out) slot.seen[static_cast<size_t>(id)] = 0;
  slot.out.clear();
  slot.usage = Usage{static_cast<int>(j.prompt.size()), 0, static_cast<int>(common)};
  slot.stats = MoeStats{};
  if (j.stats) {
    slot.stats.counts.resize(static_cast<size_t>(ctx_.config().n_layer));
    for (int l = 0; l < ctx_.config().n_layer; ++l)
      if (ctx_.config().layer_is_moe[static_cast<size_t>(l)])
        slot.stats.counts[static_cast<size_t>(l)].assign(static_cast<size_t>(ctx_.config().n_expert), 0);
  }
  {
    std::lock_guard lock(mu_);
    m_.prompt_tokens += static_cast<int64_t>(j.prompt.size());
    m_.cached_prompt_tokens += static_cast<int64_t>(common);
    m_.active = static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& x) { return x.job != nullptr; }));
  }
  try {
    slot.sampler.emplace(j.sampler, ctx_.config().n_vocab);
  } catch (const std::exception& e) {
    finish(slot, "error", e.what());
    return;
  }
  slot.dec.emplace(tok_, true);
  slot.stops.emplace(j.stop);
  if (j.prompt.empty()) finish(slot, "error", "empty prompt");
  else if (j.max_tokens <= 0) finish(slot, "length");
}

void Scheduler::finish(Slot& slot, const std::string& reason, const std::string& error) {
  if (slot.dec && slot.stops && reason != "error") {
    std::string tail = slot.stops->push(slot.dec->flush());
    tail += slot.stops->flush();
    if (!tail.empty()) emit(slot, tail, nullptr, false);
  }
  std::shared_ptr<Job> job = std::move(slot.job);
  slot.sampler.reset();
  slot.dec.reset();
  slot.stops.reset();
  // A sampled token that was never fed is not in the cache; `cached` stays exactly what the KV cache holds.
  slot.next = -1;
  {  // the metrics first, so that whoever sees the job done also sees its slot free
    std::lock_guard lock(mu_);
    ++m_.requests_done;
    if (reason == "cancelled") ++m_.requests_cancelled;
    m_.active = static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& x) { return x.job != nullptr; }));
  }
  {
    std::lock_guard lock(job->mu_);
    job->pending_.done = true;
    job->pending_.finish_reason = reason;
    job->pending_.error = error;
    job->pending_.usage = slot.usage;
    job->pending_.stats = std::move(slot.stats);
    job->pending_.tokens = slot.out;
  }
  job->cv_.notify_all();
}

void Scheduler::emit(Slot& slot, const std::string& text, TokenLogprob* lp, bool with_trace) {
  Job& j = *slot.job;
  {
    std::lock_guard lock(j.mu_);
    j.pending_.text += text;
    if (lp) j.pending_.logprobs.push_back(std::move(*lp));
    if (with_trace) j.pending_.trace.push_back(slot.trace);
  }
  j.cv_.notify_all();
}

bool Scheduler::step() {
  // Requests whose client left free their slot first.
  for (Slot& s : slots_)
    if (s.job && s.job->cancelled()) finish(s, "cancelled");
  // The group of equal routing controls this step serves: groups take turns, in slot order.
  keys_.clear();
  for (const Slot& s : slots_)
    if (s.job && std::none_of(keys_.begin(), keys_.end(), [&](const std::string* k) { return *k == s.job->routing_key; }))
      keys_.push_back(&s.job->routing_key);
  if (keys_.empty()) return false;
  const std::string& key = *keys_[group_turn_++ % keys_.size()];
  inputs_.clear();
  input_slot_.clear();
  int budget = ctx_.n_batch();
  const RoutingControl* ctl = nullptr;
  bool observe = false;
  // Decoding sequences first (one token each), then prompt chunks from the sequences still prefilling.
  // The first slot served rotates, so that a --batch smaller than the number of sequences starves none of them.
  const size_t first = rotate_++ % slots_.size();
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < slots_.size() && budget > 0; ++i) {
      const size_t si = (first + i) % slots_.size();
      Slot& s = slots_[si];
      if (!s.job || s.job->routing_key != key) continue;
      const bool decoding = s.prompt_done == s.job->prompt.size();
      if ((pass == 0) != decoding) continue;
      SeqInput in;
      in.seq = static_cast<int>(si);
      if (decoding) {
        in.tokens = std::span<const int32_t>(&s.next, 1);
        in.logits = true;
        budget -= 1;
      } else {
        const size_t left = s.job->prompt.size() - s.prompt_done;
        const size_t n = std::min({left, static_cast<size_t>(p_.prefill_chunk), static_cast<size_t>(budget)});
        in.tokens = std::span<const int32_t>(s.job->prompt.data() + s.prompt_done, n);
        in.logits = n == left;
        budget -= static_cast<int>(n);
      }
      ctl = &s.job->routing;
      observe = observe || s.job->stats || s.job->trace;
      inputs_.push_back(in);
      input_slot_.push_back(static_cast<int>(si));
    }
  if (inputs_.empty()) return false;
  if (key != current_key_) {
    ctx_.set_routing(*ctl);
    current_key_ = key;
  }
  // Token rows of the step -> slots, for the routing observer.
  int t = 0;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Slot& s = slots_[static_cast<size_t>(input_slot_[i])];
    for (size_t k = 0; k < inputs_[i].tokens.size(); ++k) row_slot_[static_cast<size_t>(t++)] = input_slot_[i];
    s.last_row = inputs_[i].logits ? t - 1 : -1;
    if (s.job->trace) s.trace.experts.assign(static_cast<size_t>(ctx_.config().n_layer), {});
    if (s.job->stats) s.stats.tokens += static_cast<int64_t>(inputs_[i].tokens.size());
  }
  ctx_.set_observer(observe ? this : nullptr);
  try {
    ctx_.decode_step(inputs_, logits_.data());
  } catch (const std::exception& e) {
    // A step that cannot run (should not happen: inputs are checked on admission) fails its requests, not the server.
    for (size_t i = 0; i < inputs_.size(); ++i) {
      Slot& s = slots_[static_cast<size_t>(input_slot_[i])];
      ctx_.truncate(input_slot_[i], static_cast<int>(s.cached.size()));
      finish(s, "error", e.what());
    }
    return true;
  }
  ctx_.set_observer(nullptr);
  int row = 0;
  const size_t V = static_cast<size_t>(ctx_.config().n_vocab);
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Slot& s = slots_[static_cast<size_t>(input_slot_[i])];
    s.cached.insert(s.cached.end(), inputs_[i].tokens.begin(), inputs_[i].tokens.end());
    if (s.prompt_done < s.job->prompt.size()) s.prompt_done += inputs_[i].tokens.size();
    if (inputs_[i].logits) after_logits(s, logits_.data() + static_cast<size_t>(row++) * V);
  }
  {
    std::lock_guard lock(mu_);
    ++m_.steps;
    m_.step_tokens += t;
    m_.step_sequences += static_cast<int64_t>(inputs_.size());
    m_.last_batch_sequences = static_cast<int>(inputs_.size());
    const ExpertStoreStats st = ctx_.expert_store().stats();
    m_.store_lookups = st.requests;
    m_.store_hits = st.hits;
    m_.has_store_stats = st.requests > 0;
  }
  return true;
}

// The sequence has new logits: sample, report, and decide whether it goes on.
void Scheduler::after_logits(Slot& s, const float* logits) {
  Job& j = *s.job;
  const size_t V = static_cast<size_t>(ctx_.config().n_vocab);
  std::span<const float> lg(logits, V);
  if (j.presence_penalty != 0.f || j.frequency_penalty != 0.f || !j.logit_bias.empty()) {
    std::copy(logits, logits + V, work_.begin());
    for (int32_t id : s.out) {
      const size_t u = static_cast<size_t>(id);
      if (s.seen[u] == 0) continue;
      work_[u] = logits[u] - j.frequency_penalty * static_cast<float>(s.seen[u]) - j.presence_penalty;
    }
    for (const auto& [id, bias] : j.logit_bias) work_[static_cast<size_t>(id)] += bias;
    lg = std::span<const float>(work_.data(), V);
  }
  const int32_t id = s.sampler->sample(lg, {});
  ++s.generated;
  ++s.usage.completion_tokens;
  s.out.push_back(id);
  ++s.seen[static_cast<size_t>(id)];
  {
    std::lock_guard lock(mu_);
    ++m_.generated_tokens;
  }
  s.trace.id = id;
  const bool eog = !j.ignore_eos && tok_.is_eog(id);
  if (j.trace) s.trace.piece = eog ? "" : tok_.token_to_piece(id);
  std::optional<TokenLogprob> lp;
  if (j.logprobs >= 0) lp = token_logprob(tok_, std::span<const float>(logits, V), id, j.logprobs, order_);
  if (eog) {
    if (lp || j.trace) emit(s, "", lp ? &*lp : nullptr, j.trace);
    finish(s, "stop");
    return;
  }
  std::string text = s.stops->push(s.dec->push(id));
  emit(s, text, lp ? &*lp : nullptr, j.trace);
  if (s.stops->stopped()) return finish(s, "stop");
  if (s.generated >= j.max_tokens || static_cast<int>(s.cached.size()) >= ctx_.n_ctx()) return finish(s, "length");
  s.next = id;
}

void Scheduler::on_route(const RoutingEvent& ev) {
  for (int t = 0; t < ev.n_tokens; ++t) {
    Slot& s = slots_[static_cast<size_t>(row_slot_[static_cast<size_t>(t)])];
    if (!s.job) continue;
    const int32_t* ids = ev.ids + static_cast<size_t>(t) * static_cast<size_t>(ev.slot_stride);
    const int n = ev.n_used[t];
    if (s.job->stats) {
      auto& c = s.stats.counts[static_cast<size_t>(ev.layer)];
      for (int k = 0; k < n; ++k)
        if (ids[k] >= 0 && ids[k] < ev.n_expert && static_cast<size_t>(ids[k]) < c.size()) ++c[static_cast<size_t>(ids[k])];
    }
    if (s.job->trace && t == s.last_row) {
      auto& e = s.trace.experts[static_cast<size_t>(ev.layer)];
      for (int k = 0; k < n; ++k)
        if (ids[k] >= 0 && ids[k] < ev.n_expert) e.push_back(ids[k]);
    }
  }
}

}  // namespace moe::serve
