// libFuzzer target: any bytes as a chat template must either fail to parse with a TemplateSyntaxError or
// render a chat-like context, where the only failures allowed are moe::Error (template errors,
// raise_exception): no crash, no other exception, no sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/jinja/jinja.h"

namespace {

// Variables chat templates read, with a few values of every JSON type.
const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json c = nlohmann::ordered_json::parse(R"json({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "enable_thinking": false,
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi\nthere \u00e9\u65e5 {{ not code }}"},
      {"role": "assistant", "content": null, "reasoning_content": "think",
       "tool_calls": [{"type": "function", "id": "c1",
                       "function": {"name": "get_time", "arguments": {"tz": "UTC", "n": [1, 2.5, -3]}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
      {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "get_time", "description": "Time in a zone.",
               "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}],
    "n": 3, "f": -1.5, "big": 12345678901234567, "s": "AbC def", "t": true, "nil": null, "l": [3, 1, 2],
    "d": {"b": 2, "a": 1, "items": "key named items"}
  })json");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moe::jinja::RenderOptions options;
  options.now_date = "2025-01-31";  // strftime_now must not depend on the clock
  try {
    const moe::jinja::Template tmpl(std::string(reinterpret_cast<const char*>(data), size));
    (void)tmpl.render(context(), options);
  } catch (const moe::Error&) {
  }
  return 0;
}
