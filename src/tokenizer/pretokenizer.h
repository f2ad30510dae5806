// Pre-tokenizers of byte-level BPE vocabularies, selected by `tokenizer.ggml.pre` as in llama.cpp: each is a
// list of regexes applied in turn, every one splitting the pieces the previous left (matches and the text
// between matches both become pieces, like Hugging Face's Split(behavior=Isolated)). The regexes run on
// PCRE2 with UTF and Unicode properties, so \p{L}, \p{N}, \s mean what they mean in Unicode.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

// Behaviour attached to a pre-tokenizer name (mirrors llama.cpp's per-name flags).
struct PreTokenizerSpec {
  std::string name;                  // canonical name as written in GGUF files
  std::vector<std::string> regexes;  // applied in order
  bool ignore_merges = false;        // a piece that is a whole vocabulary token is not merged (Llama-3)
  bool clean_spaces = true;          // llama.cpp's clean_up_tokenization_spaces (reported, see decode())
  int add_bos = -1;                  // default for add_bos_token before the file's key: -1 none, 0/1
  bool nfc = false;                  // the reference (Hugging Face) tokenizer normalises input to NFC
};

// The spec for a `tokenizer.ggml.pre` value (aliases resolved), or nullptr if unsupported.
const PreTokenizerSpec* find_pre_tokenizer(std::string_view name);
// Every accepted name, sorted (for error messages).
std::vector<std::string> supported_pre_tokenizers();

// A compiled list of regexes. Immutable after construction, so one instance may serve many threads.
class RegexSplitter {
 public:
  struct Piece {
    uint32_t offset, length;  // bytes into the text
  };

  RegexSplitter() = default;
  explicit RegexSplitter(const std::vector<std::string>& regexes);  // throws Error on a bad regex

  // Splits `text` into pieces covering it exactly, in order. Empty text gives no pieces.
  void split(std::string_view text, std::vector<Piece>& out) const;
  bool empty() const { return codes_.empty(); }

 private:
  struct Code;
  std::vector<std::shared_ptr<const Code>> codes_;
};

}  // namespace moe
