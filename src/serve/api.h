// The OpenAI-compatible HTTP API as pure functions: request bodies -> validated requests, generation results ->
// response bodies and server-sent-event chunks, errors -> OpenAI's error object. Nothing here touches a socket or a
// model, so the parser can be unit-tested and fuzzed on its own.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::serve {

using json = nlohmann::json;

// An error the client sees: HTTP status plus OpenAI's {"error": {message, type, param, code}}.
struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;
  ApiError(int status, std::string message, std::string type = "invalid_request_error", std::string param = "",
           std::string code = "")
      : std::runtime_error(std::move(message)), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
};
json error_body(const ApiError& e);

struct Message {
  std::string role;  // system | user | assistant ("developer" is read as system)
  std::string content;
};

// The "moe" extension object: expert controls for this request, and what to report about routing.
struct MoeOptions {
  int experts_k = 0;             // 0: the server's setting
  float expert_min_weight = -1;  // < 0: the server's setting
  std::vector<std::string> ban, force;  // "LAYER:EXPERT" items ('*' = every layer), checked against the model later
  bool stats = false;            // per-response routing statistics
  bool trace = false;            // per-token experts in every stream chunk (the web page's view)
  bool any_control() const { return experts_k > 0 || expert_min_weight >= 0 || !ban.empty() || !force.empty(); }
};

struct GenRequest {
  bool chat = true;
  std::vector<Message> messages;   // chat
  std::string prompt;              // completions: text ...
  std::vector<int32_t> prompt_ids; // ... or token ids
  std::string model;
  int max_tokens = -1;             // -1: until end of generation or of the context
  float temperature = 1.f, top_p = 1.f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  float presence_penalty = 0.f, frequency_penalty = 0.f;
  // OpenAI's logit_bias: {"token id": bias in [-100, 100]}, added to the logits before sampling (ids are checked
  // against the vocabulary when the request is admitted).
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool logprobs = false;
  int top_logprobs = 0;
  bool stream = false, include_usage = false;
  bool ignore_eos = false;         // extension (as llama-server): generate max_tokens even past end-of-generation
  MoeOptions moe;
};

// Throw ApiError(400) naming the field on malformed JSON, wrong types or out-of-range values. Unknown fields are
// ignored (clients send many optional ones).
GenRequest parse_chat_request(std::string_view body);
GenRequest parse_completion_request(std::string_view body);

// ---- responses
struct TopLogprob {
  std::string token;
  float logprob;
};
struct TokenLogprob {
  std::string token;
  float logprob;
  std::vector<TopLogprob> top;
};
struct Usage {
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
// Expert usage of one request: selections per (layer, expert) over every token it evaluated.
struct MoeStats {
  int64_t tokens = 0;                         // tokens evaluated (prompt + generated)
  std::vector<std::vector<int64_t>> counts;   // [n_layer][n_expert] (empty rows for dense layers)
  double experts_per_token() const;           // mean over MoE layers
};
json moe_stats_json(const MoeStats& s);

// The parts of a response both shapes share.
struct ResponseMeta {
  std::string id, model;
  int64_t created = 0;
};

json chat_response(const ResponseMeta& m, const std::string& text, const std::string& finish_reason, const Usage& u,
                   const std::vector<TokenLogprob>* logprobs, const MoeStats* stats);
json completion_response(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                         const Usage& u, const std::vector<TokenLogprob>* logprobs, const MoeStats* stats);
// Stream chunks. delta text may be empty (the first chunk carries the role; the last the finish reason).
json chat_chunk(const ResponseMeta& m, const std::string* role, const std::string* text,
                const std::vector<TokenLogprob>* logprobs, const char* finish_reason);
json completion_chunk(const ResponseMeta& m, const std::string& text, const std::vector<TokenLogprob>* logprobs,
                      const char* finish_reason);
json usage_chunk(const ResponseMeta& m, bool chat, const Usage& u);
json usage_json(const Usage& u);
json models_response(const std::string& model, int64_t created, int n_ctx);

// "data: <json>\n\n" (invalid UTF-8 in generated text is replaced, never thrown on).
std::string sse_event(const json& j);
std::string dump(const json& j);

// Stop strings over streamed text: holds back the tail that could still become a stop string.
class StopScanner {
 public:
  explicit StopScanner(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends text; returns what can be shown now. After a stop string is seen, stopped() is true and the text up
  // to it (not including it) has been returned.
  std::string push(std::string_view text);
  std::string flush();  // the held-back tail at the end of generation
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace moe::serve
