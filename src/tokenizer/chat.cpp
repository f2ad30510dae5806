#include "tokenizer/chat.h"

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/jinja.h"
#include "tokenizer/tokenizer.h"

namespace moe {

static const char* kChatML =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char* kPlain =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}"
    "{% else %}{{ 'Assistant: ' + message['content'] + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

ChatFormatter::ChatFormatter(const Tokenizer& tok) : tok_(tok) {
  source_ = tok.chat_template();
  if (source_.empty()) source_ = tok.find_token("<|im_start|>") >= 0 ? kChatML : kPlain;
  tmpl_ = std::make_unique<jinja::Template>(source_);
}

ChatFormatter::~ChatFormatter() = default;

std::string ChatFormatter::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  nlohmann::ordered_json ctx;
  ctx["messages"] = nlohmann::ordered_json::array();
  for (const auto& m : messages) ctx["messages"].push_back({{"role", m.role}, {"content", m.content}});
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = tok_.bos() >= 0 ? tok_.token_text(tok_.bos()) : "";
  ctx["eos_token"] = tok_.eos() >= 0 ? tok_.token_text(tok_.eos()) : "";
  return tmpl_->render(ctx);
}

std::vector<int32_t> ChatFormatter::tokenize(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  const std::string text = render(messages, add_generation_prompt);
  // The template may already start with the BOS text; then the tokenizer must not add another one.
  const bool has_bos = tok_.bos() >= 0 && text.rfind(tok_.token_text(tok_.bos()), 0) == 0;
  std::vector<int32_t> ids = tok_.encode(text, false, true);
  if (tok_.add_bos() && !has_bos && tok_.bos() >= 0) ids.insert(ids.begin(), tok_.bos());
  return ids;
}

std::string ChatFormatter::end_of_turn() const {
  const std::string reply = "\x01reply\x02", next = "\x01next\x02";
  std::string text;
  try {
    text = render({{"user", "a"}, {"assistant", reply}, {"user", next}}, false);
  } catch (const std::exception&) {
    return "";  // a template that raises on this conversation: no marker
  }
  const size_t a = text.find(reply), b = text.find(next);
  if (a == std::string::npos || b == std::string::npos || b < a + reply.size()) return "";
  std::string between = text.substr(a + reply.size(), b - a - reply.size());
  auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  size_t i = 0;
  while (i < between.size() && space(between[i])) ++i;
  size_t j = between.find('\n', i);
  if (j == std::string::npos) j = between.size();
  while (j > i && space(between[j - 1])) --j;
  return between.substr(i, j - i);
}

}  // namespace moe
