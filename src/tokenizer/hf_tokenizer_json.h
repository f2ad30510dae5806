// Hugging Face tokenizer.json -> GGUF tokenizer metadata, producing what llama.cpp's convert_hf_to_gguf.py
// writes: byte-level BPE vocabularies become `gpt2` (tokens, token types, merges, a `pre` name), and
// SentencePiece-style BPE vocabularies (byte_fallback, U+2581 for spaces, e.g. Mixtral) become `llama` with
// scores that reproduce the merge order. Special ids and add_bos/add_eos come from tokenizer_config.json
// beside the file when it exists.
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer_metadata.h"

namespace moe {

struct HfConvertOptions {
  std::string pre;         // tokenizer.ggml.pre to write; "" = detect from the pre-tokenizer regexes
  int64_t vocab_size = 0;  // pad the vocabulary to this many tokens ([PAD<i>], unused); 0 = max id + 1
};

// Throws FormatError naming the file for malformed or unsupported files (a model other than BPE, or a
// pre-tokenizer that cannot be recognised: pass options.pre then).
TokenizerMetadata tokenizer_metadata_from_hf(const std::string& tokenizer_json_path,
                                             const HfConvertOptions& options = {});

}  // namespace moe
