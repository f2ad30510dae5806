// The `tokenizer.ggml.*` metadata of a GGUF file as plain data: what the loader reads, what the Hugging Face
// converter and the BPE trainer produce, and what gets written back. Keys follow llama.cpp (gguf-py).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moe {

class GgufFile;
class GgufWriter;

// llama.cpp token types (tokenizer.ggml.token_type).
enum TokenType : int32_t {
  kTokenUndefined = 0,
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

struct TokenizerMetadata {
  std::string source;  // file name, for error messages

  std::string model;                 // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::optional<std::string> pre;    // tokenizer.ggml.pre
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (empty: all normal)
  std::vector<float> scores;         // tokenizer.ggml.scores (empty: all 0)
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right" in rank order

  // Special token ids from the file; absent keys stay empty (the loader applies llama.cpp's defaults).
  std::optional<int64_t> bos, eos, eot, eom, unk, pad, sep, mask;
  std::optional<int64_t> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  std::optional<bool> add_bos, add_eos, add_space_prefix;

  std::optional<std::string> chat_template;  // tokenizer.chat_template
  std::optional<std::string> name;           // general.name (llama.cpp keys some token attributes on it)
};

// Reads every tokenizer key of `f`, checking types only (Tokenizer::from_metadata validates the content).
// Throws FormatError naming the file if a key has the wrong type or tokenizer.ggml.tokens is missing.
TokenizerMetadata read_tokenizer_metadata(const GgufFile& f);

// Sets the keys of `m` on `w` (absent optionals are not written).
void write_tokenizer_metadata(GgufWriter& w, const TokenizerMetadata& m);

}  // namespace moe
