#include "serve/server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "experts/steering.h"

namespace moe::serve {

namespace {

using namespace std::chrono_literals;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, error_body(e)); }

// Decrements the in-flight count when the last holder (handler or stream provider) lets go.
struct Inflight {
  std::atomic<int>& n;
  explicit Inflight(std::atomic<int>& n) : n(n) { ++n; }
  ~Inflight() { --n; }
};

json trace_json(const std::vector<TokenTrace>& tr) {
  json a = json::array();
  for (const auto& t : tr) a.push_back({{"id", t.id}, {"piece", t.piece}, {"experts", t.experts}});
  return a;
}

}  // namespace

std::string routing_key(const RoutingControl& c) {
  if (!c.any()) return "";
  std::string k = "k" + std::to_string(c.top_k) + " w" + std::to_string(c.min_weight) + " p" + std::to_string(c.top_p);
  auto bits = [&](const char* tag, const std::vector<std::vector<uint8_t>>& v) {
    k += tag;
    for (const auto& l : v) {
      k += '|';
      for (uint8_t b : l) k += b ? '1' : '0';
    }
  };
  bits(" b", c.banned);
  bits(" f", c.forced);
  return k;
}

std::shared_ptr<Job> prepare_job(const GenRequest& r, const ModelConfig& config, const Tokenizer& tok,
                                 const ChatFormatter& chat, int n_ctx, const RoutingControl& base) {
  auto job = std::make_shared<Job>();
  if (r.chat) {
    std::vector<ChatMessage> msgs;
    for (const auto& m : r.messages) msgs.push_back({m.role, m.content});
    try {
      job->prompt = chat.tokenize(msgs, true);
    } catch (const std::exception& e) {
      throw ApiError(400, std::string("the chat template cannot render these messages: ") + e.what(), "invalid_request_error", "messages");
    }
  } else if (!r.prompt_ids.empty()) {
    for (int32_t id : r.prompt_ids)
      if (id >= config.n_vocab)
        throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(config.n_vocab),
                       "invalid_request_error", "prompt");
    job->prompt = r.prompt_ids;
  } else {
    job->prompt = tok.encode(r.prompt, true, true);
  }
  const int n_prompt = static_cast<int>(job->prompt.size());
  if (n_prompt == 0) throw ApiError(400, "the prompt encodes to no tokens", "invalid_request_error", r.chat ? "messages" : "prompt");
  if (n_prompt >= n_ctx)
    throw ApiError(400, "the prompt has " + std::to_string(n_prompt) + " tokens, but the context holds " + std::to_string(n_ctx) +
                       " (at least one must be left to generate; the server's --ctx sets it)",
                   "invalid_request_error", r.chat ? "messages" : "prompt", "context_length_exceeded");
  const int room = n_ctx - n_prompt;
  job->max_tokens = r.max_tokens < 0 ? room : std::min(r.max_tokens, room);
  job->sampler.temperature = r.temperature;
  job->sampler.top_p = r.top_p;
  job->sampler.top_k = 0;
  job->sampler.min_p = 0.f;
  job->sampler.repeat_penalty = 1.f;
  job->sampler.seed = r.seed ? *r.seed : std::random_device{}();
  try {
    Sampler check(job->sampler, config.n_vocab);  // the scheduler builds the same one; refuse here, not there
  } catch (const UsageError& e) {
    throw ApiError(400, e.what(), "invalid_request_error", "temperature");
  }
  job->presence_penalty = r.presence_penalty;
  for (const auto& [id, bias] : r.logit_bias)
    if (id >= config.n_vocab)
      throw ApiError(400, "logit_bias: token id " + std::to_string(id) + " is outside the vocabulary (" +
                         std::to_string(config.n_vocab) + " tokens)", "invalid_request_error", "logit_bias");
  job->logit_bias = r.logit_bias;
  job->frequency_penalty = r.frequency_penalty;
  job->stop = r.stop;
  job->ignore_eos = r.ignore_eos;
  job->logprobs = r.logprobs ? r.top_logprobs : -1;
  job->stats = r.moe.stats;
  job->trace = r.moe.trace;
  job->routing = base;
  if (r.moe.any_control()) {
    if (config.n_expert == 0) throw ApiError(400, "expert controls given, but the model has no experts", "invalid_request_error", "moe");
    RoutingControl& c = job->routing;
    if (r.moe.experts_k > 0) {
      if (r.moe.experts_k > config.n_expert)
        throw ApiError(400, "moe.experts_k " + std::to_string(r.moe.experts_k) + " exceeds the model's " +
                           std::to_string(config.n_expert) + " experts", "invalid_request_error", "moe.experts_k");
      c.top_k = r.moe.experts_k;
    }
    if (r.moe.expert_min_weight >= 0) c.min_weight = r.moe.expert_min_weight;
    std::vector<ExpertRef> bans, forces;
    const char* param = "moe";
    try {
      param = "moe.ban";
      if (!r.moe.ban.empty()) bans = parse_expert_refs(join(r.moe.ban), config.n_layer, config.n_expert, "moe.ban");
      param = "moe.force";
      if (!r.moe.force.empty()) forces = parse_expert_refs(join(r.moe.force), config.n_layer, config.n_expert, "moe.force");
      param = "moe";
      apply_steering(c, bans, forces, config.n_layer, config.n_expert, config.layer_is_moe);
    } catch (const UsageError& e) {
      throw ApiError(400, e.what(), "invalid_request_error", param);
    }
  }
  job->routing_key = routing_key(job->routing);
  return job;
}

Server::Server(Context& ctx, const Tokenizer& tok, RoutingControl base, ServerOptions opt, SchedulerParams sp)
    : ctx_(ctx), tok_(tok), chat_(tok), base_(std::move(base)), opt_(std::move(opt)), sched_(ctx, tok, sp),
      http_(std::make_unique<httplib::Server>()) {
  created_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Every waiting request holds an HTTP worker (streams block in their provider): room for all slots and the queue,
  // within reason (connections beyond the workers wait in httplib's own queue, unread).
  const size_t workers = static_cast<size_t>(std::min(ctx.n_seq() + sp.max_queue + 8, 512));
  http_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http_->set_payload_max_length(opt_.max_body);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  routes();
}

Server::~Server() = default;

int Server::bind() {
  int port = opt_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(opt_.host);
    if (port < 0) throw Error("cannot bind " + opt_.host + " to any port");
  } else if (!http_->bind_to_port(opt_.host, port)) {
    throw Error("cannot bind " + opt_.host + ":" + std::to_string(port) + " (in use, or not an address of this machine)");
  }
  return port;
}

void Server::run() {
  sched_.start();
  http_->listen_after_bind();
}

void Server::shutdown() {
  stopping_.store(true);
  sched_.drain();
  // The scheduler is done; let the handlers write their last bytes.
  for (int i = 0; i < 500 && inflight_.load() > 0; ++i) std::this_thread::sleep_for(10ms);
  http_->stop();
}

void Server::count(const std::string& endpoint, int status) {
  std::lock_guard lock(count_mu_);
  ++requests_[{endpoint, status}];
}

std::string Server::metrics_text() const {
  const SchedulerMetrics m = sched_.metrics();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("moe_requests_total", "counter", "HTTP requests by endpoint and status");
  {
    std::lock_guard lock(count_mu_);
    for (const auto& [k, n] : requests_) o << "moe_requests_total{endpoint=\"" << k.first << "\",status=\"" << k.second << "\"} " << n << '\n';
  }
  metric("moe_generations_total", "counter", "generations finished (any reason)");
  o << "moe_generations_total " << m.requests_done << '\n';
  metric("moe_generations_cancelled_total", "counter", "generations stopped because the client went away");
  o << "moe_generations_cancelled_total " << m.requests_cancelled << '\n';
  metric("moe_prompt_tokens_total", "counter", "prompt tokens of admitted requests");
  o << "moe_prompt_tokens_total " << m.prompt_tokens << '\n';
  metric("moe_prompt_tokens_cached_total", "counter", "prompt tokens reused from a slot's cache");
  o << "moe_prompt_tokens_cached_total " << m.cached_prompt_tokens << '\n';
  metric("moe_generated_tokens_total", "counter", "tokens generated");
  o << "moe_generated_tokens_total " << m.generated_tokens << '\n';
  metric("moe_queue_length", "gauge", "requests waiting for a slot");
  o << "moe_queue_length " << m.queued << '\n';
  metric("moe_active_sequences", "gauge", "slots busy");
  o << "moe_active_sequences " << m.active << '\n';
  metric("moe_slots", "gauge", "parallel sequence slots (--parallel)");
  o << "moe_slots " << m.slots << '\n';
  metric("moe_steps_total", "counter", "forward steps run");
  o << "moe_steps_total " << m.steps << '\n';
  metric("moe_step_tokens_total", "counter", "tokens over all forward steps");
  o << "moe_step_tokens_total " << m.step_tokens << '\n';
  metric("moe_batch_sequences", "gauge", "sequences in the last forward step");
  o << "moe_batch_sequences " << m.last_batch_sequences << '\n';
  metric("moe_batch_sequences_mean", "gauge", "mean sequences per forward step");
  o << "moe_batch_sequences_mean " << (m.steps ? static_cast<double>(m.step_sequences) / static_cast<double>(m.steps) : 0.0) << '\n';
  if (m.has_store_stats) {
    metric("moe_expert_cache_hit_rate", "gauge", "experts found resident / experts asked for (--mem-budget)");
    o << "moe_expert_cache_hit_rate " << static_cast<double>(m.store_hits) / static_cast<double>(m.store_lookups) << '\n';
  }
  return o.str();
}

void Server::routes() {
  httplib::Server& s = *http_;
  s.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    count("/", 200);
    res.set_content(web_page_html(), "text/html; charset=utf-8");
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const bool down = stopping_.load();
    count("/health", down ? 503 : 200);
    send_json(res, down ? 503 : 200, {{"status", down ? "shutting down" : "ok"}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    count("/metrics", 200);
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    count("/v1/models", 200);
    send_json(res, 200, models_response(opt_.model_name, created_, ctx_.n_ctx()));
  });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { generate(true, req.body, &res); });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { generate(false, req.body, &res); });
  // Errors httplib raises itself (404, 413, ...) get OpenAI's error shape too.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    count(res.status == 404 ? "unknown" : req.path, res.status);
    const std::string msg = res.status == 404   ? "no such endpoint: " + req.method + " " + req.path
                            : res.status == 413 ? "request body larger than the limit of " + std::to_string(opt_.max_body) + " bytes"
                                                : "HTTP error " + std::to_string(res.status);
    send_error(res, ApiError(res.status, msg, res.status == 404 ? "not_found_error" : "invalid_request_error"));
  });
  s.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    count(req.path, 500);
    send_error(res, ApiError(500, msg, "server_error"));
  });
}

void Server::generate(bool chat, const std::string& body, void* res_ptr) {
  httplib::Response& res = *static_cast<httplib::Response*>(res_ptr);
  const std::string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
  auto guard = std::make_shared<Inflight>(inflight_);
  GenRequest r;
  std::shared_ptr<Job> job;
  try {
    if (stopping_.load()) throw ApiError(503, "the server is shutting down", "server_error", "", "shutting_down");
    r = chat ? parse_chat_request(body) : parse_completion_request(body);
    {
      std::lock_guard lock(tok_mu_);
      job = prepare_job(r, ctx_.config(), tok_, chat_, ctx_.n_ctx(), base_);
    }
    if (!sched_.submit(job))
      throw ApiError(503, sched_.draining() ? "the server is shutting down" : "the server is busy: the request queue is full, retry later",
                     "server_error", "", sched_.draining() ? "shutting_down" : "queue_full");
  } catch (const ApiError& e) {
    count(endpoint, e.status);
    send_error(res, e);
    return;
  } catch (const UsageError& e) {  // the tokenizer or template refused the input
    count(endpoint, 400);
    send_error(res, ApiError(400, e.what()));
    return;
  }
  count(endpoint, 200);
  ResponseMeta meta{(chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++), r.model.empty() ? opt_.model_name : r.model,
                    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()};
  if (!r.stream) {
    std::string text;
    std::vector<TokenLogprob> lps;
    Job::Output out;
    for (;;) {
      out = job->take(1000ms);
      text += out.text;
      for (auto& lp : out.logprobs) lps.push_back(std::move(lp));
      if (out.done) break;
    }
    if (out.finish_reason == "error") return send_error(res, ApiError(500, out.error, "server_error"));
    const std::vector<TokenLogprob>* lp = r.logprobs ? &lps : nullptr;
    const MoeStats* st = r.moe.stats ? &out.stats : nullptr;
    send_json(res, 200, chat ? chat_response(meta, text, out.finish_reason, out.usage, lp, st)
                             : completion_response(meta, text, out.finish_reason, out.usage, lp, st));
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, meta, chat, r, guard](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        const std::string role = "assistant";
        if (chat && !write(sse_event(chat_chunk(meta, &role, nullptr, nullptr, nullptr)))) return job->cancel(), false;
        auto idle = std::chrono::steady_clock::now();
        for (;;) {
          Job::Output out = job->take(100ms);
          const bool data = !out.text.empty() || !out.logprobs.empty() || !out.trace.empty();
          if (data) {
            const std::vector<TokenLogprob>* lp = r.logprobs ? &out.logprobs : nullptr;
            json c = chat ? chat_chunk(meta, nullptr, &out.text, lp, nullptr) : completion_chunk(meta, out.text, lp, nullptr);
            if (r.moe.trace) c["moe_trace"] = trace_json(out.trace);
            if (!write(sse_event(c))) return job->cancel(), false;
            idle = std::chrono::steady_clock::now();
          } else if (!out.done && std::chrono::steady_clock::now() - idle > 1s) {
            // An SSE comment while the request waits or prefills: finds clients that left.
            if (!write(": waiting\n\n")) return job->cancel(), false;
            idle = std::chrono::steady_clock::now();
          }
          if (!out.done) continue;
          if (out.finish_reason == "error") {
            write(sse_event(error_body(ApiError(500, out.error, "server_error"))));
          } else {
            json last = chat ? chat_chunk(meta, nullptr, nullptr, nullptr, out.finish_reason.c_str())
                             : completion_chunk(meta, "", nullptr, out.finish_reason.c_str());
            if (r.moe.stats) last["moe"] = moe_stats_json(out.stats);
            write(sse_event(last));
            if (r.include_usage) write(sse_event(usage_chunk(meta, chat, out.usage)));
          }
          write("data: [DONE]\n\n");
          sink.done();
          return true;
        }
      },
      [job](bool success) {
        if (!success) job->cancel();
      });
}

}  // namespace moe::serve
