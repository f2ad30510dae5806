// Continuous batching: one thread owns the Context and runs every request's tokens through shared forward steps.
// Each step takes one token from every decoding sequence and a chunk of prompt from sequences still prefilling
// (at most n_batch tokens in all), so a long prompt never stalls the others for more than one chunk. Sequences
// join when a slot frees up and leave as soon as they finish or their client goes away; a new request takes the
// free slot whose cached tokens share the longest prefix with its prompt and re-evaluates only the rest.
//
// Routing controls belong to the Context (one set per forward step), so requests with different expert controls
// are not batched together: each step serves one group of equal controls, and groups take turns.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/context.h"
#include "model/sampling.h"
#include "serve/api.h"
#include "tokenizer/tokenizer.h"

namespace moe::serve {

// Which experts computed the step that produced a token: ids per layer (empty for dense layers).
struct TokenTrace {
  int32_t id = 0;
  std::string piece;
  std::vector<std::vector<int32_t>> experts;
};

// One request as the scheduler sees it. The HTTP side fills the inputs, submits, then takes output with wait().
class Job {
 public:
  // ---- inputs (not changed after submit)
  std::vector<int32_t> prompt;
  SamplerParams sampler;                 // top_k/min_p/repeat penalty off for OpenAI semantics
  float presence_penalty = 0, frequency_penalty = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // ids within the vocabulary
  int max_tokens = 0;                    // already clamped to the context
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int logprobs = -1;                     // -1: none; else the number of alternatives per token
  RoutingControl routing;
  std::string routing_key;               // equal keys may share a step
  bool stats = false, trace = false;

  // What the scheduler produced since the last take().
  struct Output {
    std::string text;
    std::vector<TokenLogprob> logprobs;
    std::vector<TokenTrace> trace;
    bool done = false;
    std::string finish_reason;           // stop | length | cancelled | error
    std::string error;
    Usage usage;
    MoeStats stats;
    std::vector<int32_t> tokens;         // every generated id (only filled in the final output)
  };
  // Waits up to `timeout` for new output; returns what arrived (and the final state once done).
  Output take(std::chrono::milliseconds timeout);
  // The client went away: the scheduler frees the slot before its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Scheduler;
  std::mutex mu_;
  std::condition_variable cv_;
  Output pending_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerParams {
  int max_queue = 64;      // requests that may wait while every slot is busy; more -> submit() refuses (HTTP 503)
  int prefill_chunk = 64;  // prompt tokens per sequence per step, so decoding sequences keep flowing
};

// Counters for /metrics (a consistent snapshot).
struct SchedulerMetrics {
  int queued = 0, active = 0, slots = 0;
  int64_t requests_done = 0, requests_cancelled = 0;
  int64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  int64_t steps = 0, step_tokens = 0, step_sequences = 0;
  int last_batch_sequences = 0;
  bool has_store_stats = false;
  uint64_t store_lookups = 0, store_hits = 0;
};

class Scheduler final : public RoutingObserver {
 public:
  // ctx: n_seq slots (the parallel sequences); used only by the scheduler thread once start() is called.
  Scheduler(Context& ctx, const Tokenizer& tok, SchedulerParams p = {});
  ~Scheduler() override;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  // False when the queue is full or the scheduler is draining.
  bool submit(std::shared_ptr<Job> job);
  // Stop taking requests, finish the queued and running ones, then end the thread (returns once it has).
  void drain();
  bool draining() const { return draining_.load(); }
  SchedulerMetrics metrics() const;

  void on_route(const RoutingEvent& ev) override;

 private:
  struct Slot {
    std::shared_ptr<Job> job;
    std::vector<int32_t> cached;     // tokens in this slot's KV cache
    size_t prompt_done = 0;          // prompt tokens in the cache
    int32_t next = -1;               // sampled token still to feed (decoding)
    int generated = 0;
    std::vector<int32_t> out;        // generated ids
    std::vector<int32_t> seen;       // [n_vocab] counts for presence/frequency penalties (touched ids only reset)
    std::optional<Sampler> sampler;
    std::optional<StreamDecoder> dec;
    std::optional<StopScanner> stops;
    MoeStats stats;
    TokenTrace trace;                // routing of the current step's logits row
    int last_row = -1;               // this step: the row whose routing the trace keeps
    Usage usage;
  };

  void loop();
  bool step();  // false when there was nothing to do
  void admit();
  void start_job(int s, std::shared_ptr<Job> job);
  void finish(Slot& slot, const std::string& reason, const std::string& error = "");
  void after_logits(Slot& slot, const float* logits);
  void emit(Slot& slot, const std::string& text, TokenLogprob* lp, bool with_trace);

  Context& ctx_;
  const Tokenizer& tok_;
  SchedulerParams p_;
  std::vector<Slot> slots_;
  std::thread thread_;

  mutable std::mutex mu_;             // queue, flags, metrics
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<bool> draining_{false};
  bool stop_ = false;
  SchedulerMetrics m_;

  // Step scratch (allocated once).
  std::string current_key_;
  size_t group_turn_ = 0, rotate_ = 0;
  std::vector<const std::string*> keys_;  // this step: the distinct control keys of busy slots
  std::vector<SeqInput> inputs_;
  std::vector<int> input_slot_;
  std::vector<int> row_slot_;          // [n_batch] slot of each token row of the step
  std::vector<float> logits_, work_;
  std::vector<int32_t> order_;
};

// log-softmax of `logits` at `id`, and the n most likely tokens (ties: lower id), for OpenAI's logprobs.
TokenLogprob token_logprob(const Tokenizer& tok, std::span<const float> logits, int32_t id, int n_top,
                           std::vector<int32_t>& order_scratch);

}  // namespace moe::serve
