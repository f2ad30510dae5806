#include "serve/api.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <limits>

namespace moe::serve {

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) { throw ApiError(400, msg, "invalid_request_error", param); }

json parse_body(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "the request body is not valid JSON", "invalid_request_error", "", "invalid_json");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

// Optional fields: absent or null means "not given".
const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

double number(const json& j, double lo, double hi, const std::string& path) {
  if (!j.is_number()) bad(path, "'" + path + "' must be a number");
  const double v = j.get<double>();
  if (!(v >= lo && v <= hi))
    bad(path, "'" + path + "' is " + j.dump() + ", outside [" + json(lo).dump() + ", " + json(hi).dump() + "]");
  return v;
}

int64_t integer(const json& j, int64_t lo, int64_t hi, const std::string& path) {
  if (!j.is_number_integer() && !(j.is_number_float() && std::floor(j.get<double>()) == j.get<double>() &&
                                  std::fabs(j.get<double>()) < 9e15))
    bad(path, "'" + path + "' must be an integer");
  const int64_t v = j.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(j.get<uint64_t>(), INT64_MAX))
                    : j.is_number_integer() ? j.get<int64_t>()
                                            : static_cast<int64_t>(j.get<double>());
  if (v < lo || v > hi)
    bad(path, "'" + path + "' is " + std::to_string(v) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

bool boolean(const json& j, const std::string& path) {
  if (!j.is_boolean()) bad(path, "'" + path + "' must be true or false");
  return j.get<bool>();
}

std::string string(const json& j, const std::string& path) {
  if (!j.is_string()) bad(path, "'" + path + "' must be a string");
  return j.get<std::string>();
}

std::vector<std::string> string_list(const json& j, const std::string& path, size_t max_items) {
  std::vector<std::string> out;
  if (j.is_string()) {
    out.push_back(j.get<std::string>());
  } else if (j.is_array()) {
    if (j.size() > max_items) bad(path, "'" + path + "' has more than " + std::to_string(max_items) + " items");
    for (size_t i = 0; i < j.size(); ++i) out.push_back(string(j[i], path + "[" + std::to_string(i) + "]"));
  } else {
    bad(path, "'" + path + "' must be a string or an array of strings");
  }
  return out;
}

// Message content: a string or OpenAI's array of parts, of which only text parts are supported.
std::string content_text(const json& c, const std::string& path) {
  if (c.is_null()) return "";
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad(path, "'" + path + "' must be a string or an array of content parts");
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& part = c[i];
    if (!part.is_object()) bad(p, "'" + p + "' must be an object");
    const json* type = field(part, "type");
    if (!type || string(*type, p + ".type") != "text") bad(p + ".type", "only text content parts are supported");
    const json* text = field(part, "text");
    if (!text) bad(p + ".text", "'" + p + ".text' is required");
    out += string(*text, p + ".text");
  }
  return out;
}

void parse_moe(const json& m, MoeOptions& o) {
  if (!m.is_object()) bad("moe", "'moe' must be an object");
  if (const json* v = field(m, "experts_k")) o.experts_k = static_cast<int>(integer(*v, 1, 4096, "moe.experts_k"));
  if (const json* v = field(m, "expert_min_weight"))
    o.expert_min_weight = static_cast<float>(number(*v, 0.0, 1.0, "moe.expert_min_weight"));
  if (const json* v = field(m, "ban")) o.ban = string_list(*v, "moe.ban", 4096);
  if (const json* v = field(m, "force")) o.force = string_list(*v, "moe.force", 4096);
  if (const json* v = field(m, "stats")) o.stats = boolean(*v, "moe.stats");
  if (const json* v = field(m, "trace")) o.trace = boolean(*v, "moe.trace");
}

// The fields chat and completions share.
void parse_common(const json& j, GenRequest& r) {
  if (const json* v = field(j, "model")) r.model = string(*v, "model");
  if (const json* v = field(j, "max_tokens")) r.max_tokens = static_cast<int>(integer(*v, 0, 1 << 30, "max_tokens"));
  if (const json* v = field(j, "max_completion_tokens"))
    r.max_tokens = static_cast<int>(integer(*v, 0, 1 << 30, "max_completion_tokens"));
  if (const json* v = field(j, "temperature")) r.temperature = static_cast<float>(number(*v, 0.0, 2.0, "temperature"));
  if (const json* v = field(j, "top_p")) r.top_p = static_cast<float>(number(*v, 0.0, 1.0, "top_p"));
  if (r.top_p <= 0.f) r.top_p = 1e-6f;  // top_p 0 keeps the best token only
  if (const json* v = field(j, "seed"))
    r.seed = static_cast<uint64_t>(integer(*v, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), "seed"));
  if (const json* v = field(j, "stop")) {
    r.stop = string_list(*v, "stop", 4);
    // Bounded: the scanner compares the held-back tail with every stop string after each token.
    for (const auto& s : r.stop)
      if (s.empty() || s.size() > 256) bad("stop", "'stop' strings must have 1 to 256 bytes");
  }
  if (const json* v = field(j, "presence_penalty"))
    r.presence_penalty = static_cast<float>(number(*v, -2.0, 2.0, "presence_penalty"));
  if (const json* v = field(j, "frequency_penalty"))
    r.frequency_penalty = static_cast<float>(number(*v, -2.0, 2.0, "frequency_penalty"));
  if (const json* v = field(j, "logit_bias")) {
    if (!v->is_object()) bad("logit_bias", "'logit_bias' must be an object mapping token ids to biases");
    if (v->size() > 300000) bad("logit_bias", "'logit_bias' has more entries than any vocabulary");
    for (const auto& [key, bias] : v->items()) {
      char* end = nullptr;
      errno = 0;
      const long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || errno != 0 || id < 0 || id > std::numeric_limits<int32_t>::max())
        bad("logit_bias", "'logit_bias' keys must be token ids (non-negative integers), got '" + key.substr(0, 32) + "'");
      r.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(number(bias, -100.0, 100.0, "logit_bias")));
    }
  }
  if (const json* v = field(j, "n"))
    if (integer(*v, 1, 128, "n") != 1) bad("n", "only n = 1 is supported");
  if (const json* v = field(j, "stream")) r.stream = boolean(*v, "stream");
  if (const json* v = field(j, "stream_options")) {
    if (!v->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (const json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (const json* v = field(j, "ignore_eos")) r.ignore_eos = boolean(*v, "ignore_eos");
  if (const json* v = field(j, "moe")) parse_moe(*v, r.moe);
}

}  // namespace

json error_body(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

GenRequest parse_chat_request(std::string_view body) {
  const json j = parse_body(body);
  GenRequest r;
  r.chat = true;
  const json* msgs = field(j, "messages");
  if (!msgs) bad("messages", "'messages' is required");
  if (!msgs->is_array() || msgs->empty()) bad("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < msgs->size(); ++i) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    const json& m = (*msgs)[i];
    if (!m.is_object()) bad(p, "'" + p + "' must be an object");
    const json* role = field(m, "role");
    if (!role) bad(p + ".role", "'" + p + ".role' is required");
    Message msg;
    msg.role = string(*role, p + ".role");
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      bad(p + ".role", "'" + p + ".role' must be system, developer, user or assistant, not '" + msg.role + "'");
    auto c = m.find("content");
    if (c == m.end()) bad(p + ".content", "'" + p + ".content' is required");
    msg.content = content_text(*c, p + ".content");
    r.messages.push_back(std::move(msg));
  }
  parse_common(j, r);
  if (const json* v = field(j, "logprobs")) r.logprobs = boolean(*v, "logprobs");
  if (const json* v = field(j, "top_logprobs")) {
    r.top_logprobs = static_cast<int>(integer(*v, 0, 20, "top_logprobs"));
    if (!r.logprobs && r.top_logprobs > 0) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  }
  return r;
}

GenRequest parse_completion_request(std::string_view body) {
  const json j = parse_body(body);
  GenRequest r;
  r.chat = false;
  const json* p = field(j, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt = (*p)[0].get<std::string>();
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    for (size_t i = 0; i < p->size(); ++i)
      r.prompt_ids.push_back(static_cast<int32_t>(integer((*p)[i], 0, INT32_MAX, "prompt[" + std::to_string(i) + "]")));
  } else {
    bad("prompt", "'prompt' must be a string, an array of one string or an array of token ids");
  }
  if (r.prompt.empty() && r.prompt_ids.empty()) bad("prompt", "'prompt' is empty");
  parse_common(j, r);
  if (const json* v = field(j, "echo"))
    if (boolean(*v, "echo")) bad("echo", "'echo' is not supported");
  if (const json* v = field(j, "logprobs")) {  // completions: an integer (number of top alternatives)
    if (v->is_boolean()) {
      r.logprobs = v->get<bool>();
    } else {
      r.top_logprobs = static_cast<int>(integer(*v, 0, 20, "logprobs"));
      r.logprobs = true;
    }
  }
  return r;
}

// ---- responses

double MoeStats::experts_per_token() const {
  int64_t sel = 0, layers = 0;
  for (const auto& l : counts) {
    if (l.empty()) continue;
    ++layers;
    for (int64_t c : l) sel += c;
  }
  return (tokens > 0 && layers > 0) ? static_cast<double>(sel) / static_cast<double>(tokens * layers) : 0.0;
}

json moe_stats_json(const MoeStats& s) {
  json layers = json::array();
  for (size_t l = 0; l < s.counts.size(); ++l) {
    if (s.counts[l].empty()) continue;
    int64_t sel = 0;
    for (int64_t c : s.counts[l]) sel += c;
    layers.push_back({{"layer", l},
                      {"experts_per_token", s.tokens ? static_cast<double>(sel) / static_cast<double>(s.tokens) : 0.0},
                      {"expert_counts", s.counts[l]}});
  }
  return {{"tokens", s.tokens}, {"experts_per_token", s.experts_per_token()}, {"layers", layers}};
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json chat_logprobs(const std::vector<TokenLogprob>& lp) {
  json content = json::array();
  for (const auto& t : lp) {
    json top = json::array();
    for (const auto& a : t.top) top.push_back({{"token", a.token}, {"logprob", a.logprob}, {"bytes", bytes_of(a.token)}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_of(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json completion_logprobs(const std::vector<TokenLogprob>& lp, size_t text_offset0) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  size_t off = text_offset0;
  for (const auto& t : lp) {
    tokens.push_back(t.token);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& a : t.top) top[a.token] = a.logprob;
    tops.push_back(top);
    offs.push_back(off);
    off += t.token.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

json base(const ResponseMeta& m, const char* object) {
  return {{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}, {"system_fingerprint", "moe"}};
}

}  // namespace

json chat_response(const ResponseMeta& m, const std::string& text, const std::string& finish_reason, const Usage& u,
                   const std::vector<TokenLogprob>* logprobs, const MoeStats* stats) {
  json j = base(m, "chat.completion");
  j["choices"] = json::array({{{"index", 0},
                               {"message", {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}}},
                               {"logprobs", logprobs ? chat_logprobs(*logprobs) : json(nullptr)},
                               {"finish_reason", finish_reason}}});
  j["usage"] = usage_json(u);
  if (stats) j["moe"] = moe_stats_json(*stats);
  return j;
}

json completion_response(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                         const Usage& u, const std::vector<TokenLogprob>* logprobs, const MoeStats* stats) {
  json j = base(m, "text_completion");
  j["choices"] = json::array({{{"index", 0},
                               {"text", text},
                               {"logprobs", logprobs ? completion_logprobs(*logprobs, 0) : json(nullptr)},
                               {"finish_reason", finish_reason}}});
  j["usage"] = usage_json(u);
  if (stats) j["moe"] = moe_stats_json(*stats);
  return j;
}

json chat_chunk(const ResponseMeta& m, const std::string* role, const std::string* text,
                const std::vector<TokenLogprob>* logprobs, const char* finish_reason) {
  json j = base(m, "chat.completion.chunk");
  json delta = json::object();
  if (role) delta["role"] = *role;
  if (text) delta["content"] = *text;
  j["choices"] = json::array({{{"index", 0},
                               {"delta", delta},
                               {"logprobs", logprobs ? chat_logprobs(*logprobs) : json(nullptr)},
                               {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}});
  return j;
}

json completion_chunk(const ResponseMeta& m, const std::string& text, const std::vector<TokenLogprob>* logprobs,
                      const char* finish_reason) {
  json j = base(m, "text_completion");
  j["choices"] = json::array({{{"index", 0},
                               {"text", text},
                               {"logprobs", logprobs ? completion_logprobs(*logprobs, 0) : json(nullptr)},
                               {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}});
  return j;
}

json usage_chunk(const ResponseMeta& m, bool chat, const Usage& u) {
  json j = base(m, chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(u);
  return j;
}

json models_response(const std::string& model, int64_t created, int n_ctx) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "moe"},
                                 {"context_length", n_ctx}}})}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + dump(j) + "\n\n"; }

// ---- stop strings

std::string StopScanner::push(std::string_view text) {
  if (stopped_) return "";
  held_.append(text);
  size_t cut = std::string::npos;
  for (const auto& s : stops_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_)
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopScanner::flush() {
  std::string out;
  if (!stopped_) out.swap(held_);
  return out;
}

}  // namespace moe::serve
