// `moe serve`'s HTTP side: OpenAI-compatible endpoints over cpp-httplib, handing requests to the Scheduler and
// streaming its output back as server-sent events; /metrics, /health and the web page at /.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "model/context.h"
#include "serve/api.h"
#include "serve/scheduler.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
}

namespace moe::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (printed on stderr)
  std::string model_name;          // the id /v1/models reports
  size_t max_body = 1 << 20;       // bytes; larger bodies get 413
};

// Turns a parsed request into a scheduler job: renders and tokenizes the prompt, checks it against the context
// (400 with the numbers when it does not fit), clamps max_tokens to the room left, and builds the request's routing
// controls on top of the server's (`base`). Throws ApiError.
std::shared_ptr<Job> prepare_job(const GenRequest& r, const ModelConfig& config, const Tokenizer& tok,
                                 const ChatFormatter& chat, int n_ctx, const RoutingControl& base);
// A string that is equal for equal controls (requests with equal keys share forward steps).
std::string routing_key(const RoutingControl& c);

// The HTML/JS chat page served at / (embedded, no external resources).
const char* web_page_html();

class Server {
 public:
  // ctx: the scheduler's context (n_seq = parallel slots); base: the routing the command-line flags set.
  Server(Context& ctx, const Tokenizer& tok, RoutingControl base, ServerOptions opt, SchedulerParams sp);
  ~Server();
  // Binds the socket; returns the port (useful with port 0). Throws Error when the address cannot be bound.
  int bind();
  void run();                     // serves until shutdown() (blocks)
  // Refuses new requests (503), lets the running and queued ones finish, then stops run().
  void shutdown();
  std::string metrics_text() const;
  SchedulerMetrics scheduler_metrics() const { return sched_.metrics(); }

 private:
  void routes();
  void count(const std::string& endpoint, int status);
  void generate(bool chat, const std::string& body, void* res);  // res: httplib::Response*

  Context& ctx_;
  const Tokenizer& tok_;
  ChatFormatter chat_;
  mutable std::mutex tok_mu_;     // the tokenizer and template are not promised to be thread-safe
  RoutingControl base_;
  ServerOptions opt_;
  Scheduler sched_;
  std::unique_ptr<httplib::Server> http_;
  int64_t created_ = 0;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> inflight_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex count_mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
};

}  // namespace moe::serve
