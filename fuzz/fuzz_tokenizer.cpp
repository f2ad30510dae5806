// libFuzzer target: any byte string must tokenize without crashing under every pre-tokenizer, and with a
// byte-level vocabulary decode(encode(x)) must give x back (also streamed, also with special tokens parsed).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_metadata.h"
#include "tokenizer/unicode.h"

namespace {

// A small vocabulary of the kind the pre-tokenizer expects: GPT-2's byte alphabet for byte-level BPE, or
// <0xXX> byte tokens, a few characters and U+2581 for BPE over UTF-8 (gemma4, sarvam-moe), where a byte-level
// alphabet would leave bytes without a token (dropped, as llama.cpp does) and break the round trip.
moe::TokenizerMetadata tiny_vocab(const std::string& pre) {
  moe::TokenizerMetadata m;
  m.model = "gpt2";
  m.pre = pre;
  const bool byte_level = moe::find_pre_tokenizer(pre)->byte_level;
  std::vector<const char*> merges = {"h e", "l l", "he ll", "hell o"};
  if (byte_level) {
    for (int b = 0; b < 256; ++b) m.tokens.push_back(moe::unicode::byte_to_symbol(static_cast<uint8_t>(b)));
    merges.insert(merges.end(), {"Ġ t", "Ġt he", "Ġ Ġ", "ĠĠ ĠĠ"});
  } else {
    char hex[8];
    for (int b = 0; b < 256; ++b) {
      std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
      m.tokens.push_back(hex);
    }
    for (const char* c : {"h", "e", "l", "o", "t", "\n", "\xE2\x96\x81"}) m.tokens.push_back(c);
    merges.insert(merges.end(), {"▁ t", "▁t he", "▁ ▁", "▁▁ ▁▁", "\n \n"});
  }
  m.token_types.assign(m.tokens.size(), moe::kTokenNormal);
  if (!byte_level)
    for (int b = 0; b < 256; ++b) m.token_types[b] = moe::kTokenByte;
  for (const char* mg : merges) {
    m.merges.push_back(mg);
    std::string s = mg;
    s.erase(s.find(' '), 1);
    m.tokens.push_back(s);
    m.token_types.push_back(moe::kTokenNormal);
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>"}) {
    m.tokens.push_back(s);
    m.token_types.push_back(std::string(s) == "<think>" ? moe::kTokenUserDefined : moe::kTokenControl);
  }
  m.bos = m.eos = static_cast<int64_t>(m.tokens.size()) - 4;  // <|endoftext|> (some pre-tokenizers add BOS)
  return m;
}

struct Case {
  moe::Tokenizer tok;
  bool escapes_spaces;  // U+2581 in the text is a space to this vocabulary, and decodes as one
};

const std::vector<Case>& tokenizers() {
  static const std::vector<Case> all = [] {
    std::vector<Case> v;
    for (const auto& name : moe::supported_pre_tokenizers())
      v.push_back({moe::Tokenizer::from_metadata(tiny_vocab(name)), !moe::find_pre_tokenizer(name)->byte_level});
    return v;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& all = tokenizers();
  const Case& c = all[data[0] % all.size()];
  const moe::Tokenizer& tok = c.tok;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string expected = text;
  if (c.escapes_spaces)
    for (size_t p; (p = expected.find("\xE2\x96\x81")) != std::string::npos;) expected.replace(p, 3, " ");
  for (bool parse_special : {false, true}) {
    const auto ids = tok.encode(text, false, parse_special);
    const std::string back = tok.decode(ids);
    moe::StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    // NFC pre-tokenizers may change non-NFC text; everything else must come back byte for byte.
    if ((back != expected && moe::unicode::is_nfc_quick(text)) || streamed != back) __builtin_trap();
  }
  return 0;
}
