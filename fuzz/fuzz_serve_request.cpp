// libFuzzer target: any request body must either parse or raise ApiError (HTTP 400), never crash, hang or throw
// anything else; what parses must format into responses and stream chunks (including the stop-string scanner
// over its own stop strings). The first byte picks chat or completions.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "serve/api.h"

using namespace moe::serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = data[0] & 1;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  GenRequest r;
  try {
    r = chat ? parse_chat_request(body) : parse_completion_request(body);
  } catch (const ApiError& e) {
    if (e.status != 400 || std::string(e.what()).empty()) std::abort();
    (void)dump(error_body(e));
    return 0;
  }
  ResponseMeta m{"id", r.model, 0};
  std::string text = r.chat ? r.messages.back().content : r.prompt;
  StopScanner stops(r.stop);
  std::string shown;
  for (size_t i = 0; i < text.size(); i += 3) shown += stops.push(std::string_view(text).substr(i, 3));
  shown += stops.flush();
  if (!stops.stopped() && shown != text) std::abort();  // without a stop string nothing may be lost
  std::vector<TokenLogprob> lp{{shown, -1.f, {{text, -2.f}}}};
  (void)sse_event(chat_response(m, shown, "stop", Usage{1, 2, 0}, r.logprobs ? &lp : nullptr, nullptr));
  (void)sse_event(completion_chunk(m, shown, &lp, "length"));
  return 0;
}
