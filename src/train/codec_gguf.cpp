// The GGUF vocabulary codec needs src/tokenizer (not merged yet); until then --vocab is refused clearly.
#include "core/error.h"
#include "train/data.h"

namespace moe::train {

std::unique_ptr<TextCodec> make_gguf_codec(const std::string& vocab_path) {
  throw UsageError("--vocab " + vocab_path + ": this build has no GGUF tokenizer yet");
}

}  // namespace moe::train
