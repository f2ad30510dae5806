// Byte-level BPE training (GPT-2 style): text is pre-tokenized with one of the standard pre-tokenizers,
// identical pieces are counted once, and merges are learnt greedily (most frequent adjacent pair first) with
// incremental pair counts and a lazy priority queue, so each merge only touches the words that contain it.
// The result is GGUF tokenizer metadata (`gpt2` model) that llama.cpp and Tokenizer both load.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_metadata.h"

namespace moe {

struct BpeTrainerOptions {
  int32_t vocab_size = 8192;  // total tokens: 256 bytes + merges + special tokens
  std::string pre = "qwen2";  // tokenizer.ggml.pre of the result: qwen2, gpt-2 or llama-bpe
  // Control tokens appended after the merges; the first is BOS, EOS and EOT.
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  int64_t min_pair_count = 2;  // stop early when the best pair occurs less often than this
  // Called now and then while merging: (merges done, merges wanted).
  std::function<void(int32_t, int32_t)> progress;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);  // throws UsageError for a bad pre or vocabulary size

  // Pre-tokenizes `text` and counts its pieces. Can be called for many texts (files) before train().
  void add_text(std::string_view text);
  size_t unique_words() const { return word_counts_.size(); }
  int64_t total_words() const { return total_words_; }

  // Learns the merges and returns the tokenizer metadata (with a ChatML chat template).
  TokenizerMetadata train() const;

  // The ChatML template written into trained vocabularies.
  static const char* chatml_template();

 private:
  BpeTrainerOptions opt_;
  RegexSplitter splitter_;
  bool nfc_ = false;
  std::unordered_map<std::string, int64_t> word_counts_;
  int64_t total_words_ = 0;
};

}  // namespace moe
