// libFuzzer target: any byte string must tokenize without crashing under every pre-tokenizer, and with a
// byte-level vocabulary decode(encode(x)) must give x back (also streamed, also with special tokens parsed).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_metadata.h"
#include "tokenizer/unicode.h"

namespace {

moe::TokenizerMetadata tiny_vocab(const std::string& pre) {
  moe::TokenizerMetadata m;
  m.model = "gpt2";
  m.pre = pre;
  for (int b = 0; b < 256; ++b) m.tokens.push_back(moe::unicode::byte_to_symbol(static_cast<uint8_t>(b)));
  for (const char* mg : {"h e", "l l", "he ll", "hell o", "Ġ t", "Ġt he", "Ġ Ġ", "ĠĠ ĠĠ"}) {
    m.merges.push_back(mg);
    std::string s = mg;
    s.erase(s.find(' '), 1);
    m.tokens.push_back(s);
  }
  m.token_types.assign(m.tokens.size(), moe::kTokenNormal);
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>"}) {
    m.tokens.push_back(s);
    m.token_types.push_back(std::string(s) == "<think>" ? moe::kTokenUserDefined : moe::kTokenControl);
  }
  return m;
}

const std::vector<moe::Tokenizer>& tokenizers() {
  static const std::vector<moe::Tokenizer> all = [] {
    std::vector<moe::Tokenizer> v;
    for (const auto& name : moe::supported_pre_tokenizers())
      v.push_back(moe::Tokenizer::from_metadata(tiny_vocab(name)));
    return v;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& all = tokenizers();
  const moe::Tokenizer& tok = all[data[0] % all.size()];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (bool parse_special : {false, true}) {
    const auto ids = tok.encode(text, false, parse_special);
    const std::string back = tok.decode(ids);
    moe::StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    // NFC pre-tokenizers may change non-NFC text; everything else must come back byte for byte.
    if ((back != text && moe::unicode::is_nfc_quick(text)) || streamed != back) __builtin_trap();
  }
  return 0;
}
