// Internal state of a Tokenizer, shared by the loader (tokenizer_load.cpp), the encoders
// (tokenizer_models.cpp) and the front end (tokenizer.cpp). Not part of the public interface.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace moe {

// Token attributes as llama.cpp keeps them (a token type becomes one flag; LSTRIP/RSTRIP come from model
// specific rules because GGUF has no key for them).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Tokenizer::Impl {
  enum class Model { kBpe, kSpm };

  std::string source;
  Model model = Model::kBpe;
  std::string model_name;  // as in the file
  std::string pre_name;    // canonical pre-tokenizer name ("" for SentencePiece)
  PreTokenizerSpec pre;
  RegexSplitter splitter;

  bool add_bos = false, add_eos = false, add_space_prefix = false;
  bool ignore_merges = false, clean_spaces = false, nfc = false;

  std::vector<std::string> text;   // [n_vocab] raw vocabulary strings
  std::vector<float> score;        // [n_vocab]
  std::vector<uint32_t> attr;      // [n_vocab] TokenAttr flags
  std::vector<std::string> piece;  // [n_vocab] bytes each token decodes to
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> to_id;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  std::vector<int32_t> eog;       // sorted
  std::vector<int32_t> specials;  // control, user-defined and unknown tokens, longest text first
  std::string chat_template;

  // Byte-level BPE: symbols are vocabulary ids, or ids >= n_vocab for merge parts that are not tokens.
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, Merge> merges;  // key: left symbol << 32 | right symbol
  std::vector<std::string> extra_symbols;      // text of symbol n_vocab + i
  std::array<int32_t, 256> byte_symbol{};      // initial symbol of each byte
  // SentencePiece: token for each byte when a character has no token (<0xXX>, else the raw byte), or -1.
  std::array<int32_t, 256> byte_token{};
  // SentencePiece: characters that some token has right before a U+2581 (usually none).
  std::unordered_set<uint32_t> spm_glue;

  int32_t n_vocab() const { return static_cast<int32_t>(text.size()); }
  int32_t find(std::string_view s) const {
    auto it = to_id.find(s);
    return it == to_id.end() ? -1 : it->second;
  }
  void check_id(int32_t id) const;  // UsageError if out of range
  // What `id` adds to decoded text; strip_space carries the SentencePiece leading-space rule between calls.
  std::string_view visible_piece(int32_t id, bool remove_special, bool& strip_space) const;

  // Encoders for one run of plain text (special tokens already split out); append ids to out.
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const;
};

}  // namespace moe
