// Chat prompts: a conversation rendered with the model's own Jinja chat template (tokenizer.chat_template),
// then tokenized without doubling the BOS the template may already contain.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moe {

class Tokenizer;
namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

class ChatFormatter {
 public:
  // Uses the tokenizer's chat template; without one, ChatML when the vocabulary has <|im_start|>, else a
  // plain "User:/Assistant:" transcript.
  explicit ChatFormatter(const Tokenizer& tok);
  ~ChatFormatter();
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  std::vector<int32_t> tokenize(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  const std::string& source() const { return source_; }
  // The text that closes an assistant turn in this template ("<|im_end|>", "User:" for the plain transcript):
  // what follows a reply before the next user message, up to its first line break. "" if it cannot be told.
  // A model that does not emit an end-of-generation token still stops its reply there.
  std::string end_of_turn() const;

 private:
  const Tokenizer& tok_;
  std::string source_;
  std::unique_ptr<jinja::Template> tmpl_;
};

}  // namespace moe
