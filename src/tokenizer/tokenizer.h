// Text <-> token ids for GGUF vocabularies, matching llama.cpp: `gpt2` (byte-level BPE with merges and a
// pre-tokenizer chosen by tokenizer.ggml.pre) and `llama` (SentencePiece: score-ordered merges over UTF-8
// characters with <0xXX> byte fallback). Control and user-defined tokens are split out of the text before
// the model runs, never split inside. A Tokenizer is immutable and cheap to copy; all methods are
// thread-safe.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

class GgufFile;
struct TokenizerMetadata;

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from a GGUF file. Throws FormatError naming the file and the problem (missing
  // keys, mismatched array lengths, ids out of range, unknown model, unknown pre-tokenizer with the list of
  // supported names).
  static Tokenizer from_gguf(const GgufFile& f);
  static Tokenizer from_metadata(const TokenizerMetadata& m);

  // add_special: BOS/EOS as the file says (add_bos_token / add_eos_token).
  // parse_special: control tokens (and <unk>) written in the text become their ids; user-defined tokens are
  // always matched, as in llama.cpp and Hugging Face.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Concatenated pieces. SentencePiece vocabularies drop the one space the encoder put in front of the text
  // (at the start and after BOS). remove_special: control and unknown tokens contribute nothing.
  // Unlike llama.cpp's llama_detokenize, no clean-up of spaces before punctuation is done, so
  // decode(encode(x)) == x for any text x the vocabulary can represent (NFC text for NFC vocabularies).
  // Out-of-range ids throw UsageError.
  std::string decode(std::span<const int32_t> ids, bool remove_special = false) const;

  std::string token_to_piece(int32_t id) const;     // bytes this token contributes (byte tokens decoded)
  const std::string& token_text(int32_t id) const;  // raw vocabulary string
  int32_t token_type(int32_t id) const;             // TokenType after llama.cpp's fix-ups (e.g. EOG -> control)
  int32_t find_token(std::string_view text) const;  // id whose raw text is `text`, or -1

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 when absent
  int32_t eos() const;
  int32_t eot() const;
  int32_t eom() const;
  int32_t unk() const;
  int32_t pad() const;
  bool add_bos() const;
  bool add_eos() const;
  // End of generation: EOS, EOT, EOM and llama.cpp's EOG set (<|im_end|>, <|endoftext|>, <|eot_id|>, <|end|>,
  // <|return|>, <|call|>, ... when present; <|end|> is not EOG when <|return|> and <|call|> exist).
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;  // control or unknown: not text (removed by decode(..., true))
  std::vector<int32_t> eog_ids() const;

  std::string kind() const;  // e.g. "gpt2 (byte-level BPE), pre qwen2, NFC"
  const std::string& chat_template() const;  // tokenizer.chat_template or ""

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  friend class StreamDecoder;
};

// Turns a stream of token ids into text as they arrive: returns only complete UTF-8 characters, holding the
// bytes of a character split across tokens until it is complete. Applies decode()'s rules, so the
// concatenation of every push() and the final flush() equals decode() of the same ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool remove_special = false);
  std::string push(int32_t id);  // throws UsageError for an out-of-range id
  std::string flush();           // whatever is held (an incomplete sequence at the end of the stream)

 private:
  Tokenizer tok_;
  bool remove_special_;
  bool strip_space_ = true;  // SentencePiece: drop the leading space of the next text piece
  std::string pending_;
};

}  // namespace moe
