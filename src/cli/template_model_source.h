// Reads a model's chat template and BOS/EOS strings from its GGUF metadata (for `moe template -m`).
#pragma once
#include <optional>
#include <string>

namespace moe::cli {

struct ModelTemplate {
  std::string chat_template;       // tokenizer.chat_template
  std::optional<std::string> bos;  // tokenizer.ggml.tokens[tokenizer.ggml.bos_token_id]
  std::optional<std::string> eos;  // tokenizer.ggml.tokens[tokenizer.ggml.eos_token_id]
};

// Throws moe::Error naming the file when it cannot be read or has no chat template. With `tools`, a
// `tokenizer.chat_template.tool_use` template is preferred when the file has one, as transformers does.
ModelTemplate read_model_template(const std::string& gguf_path, bool tools);

}  // namespace moe::cli
