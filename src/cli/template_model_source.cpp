#include "cli/template_model_source.h"

#include "core/error.h"

// The GGUF reader lives in src/format (written alongside this command); until its implementation is in
// the tree, `-m` reports that instead of failing to link. The check looks for the reader's source file,
// which the library's source glob compiles whenever it exists.
#if __has_include("format/gguf_reader.cpp")
#define MOE_TEMPLATE_HAVE_GGUF 1
#include "format/gguf.h"
#endif

namespace moe::cli {

ModelTemplate read_model_template(const std::string& gguf_path, bool tools) {
#ifdef MOE_TEMPLATE_HAVE_GGUF
  GgufFile file(gguf_path);
  ModelTemplate t;
  std::optional<std::string> tmpl;
  if (tools) tmpl = file.get_string("tokenizer.chat_template.tool_use");
  if (!tmpl) tmpl = file.get_string("tokenizer.chat_template");
  if (!tmpl) throw Error(gguf_path + ": no tokenizer.chat_template in the GGUF metadata");
  t.chat_template = *tmpl;
  auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  auto token = [&](const char* key) -> std::optional<std::string> {
    auto id = file.get_uint(key);
    if (!id || !tokens || *id >= tokens->size()) return std::nullopt;
    return (*tokens)[static_cast<size_t>(*id)];
  };
  t.bos = token("tokenizer.ggml.bos_token_id");
  t.eos = token("tokenizer.ggml.eos_token_id");
  return t;
#else
  (void)tools;
  throw Error(gguf_path + ": reading templates from GGUF files needs the GGUF reader, which this build lacks");
#endif
}

}  // namespace moe::cli
