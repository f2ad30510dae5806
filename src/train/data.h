// Training data: text files -> token streams (tokenized in parallel, cached), a held-out tail of every
// file for validation, and a deterministic batch order: the stream is cut into windows of T + 1 tokens at an
// epoch-dependent offset and the windows are shuffled per epoch, both from the seed. A run's position is one
// number (the global sample index), so resuming needs no other state.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"

namespace moe {
class GgufWriter;
}

namespace moe::train {

// Text <-> tokens as training sees it.
class TextCodec {
 public:
  virtual ~TextCodec() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;  // no special tokens added or parsed
  virtual size_t piece_bytes(int32_t id) const = 0;                      // UTF-8 bytes the token stands for
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t eos() const = 0;                                       // document separator
  virtual int n_vocab() const = 0;
  virtual std::string fingerprint() const = 0;                           // identifies the vocabulary (cache key)
  virtual void write_metadata(GgufWriter& w) const = 0;                  // tokenizer.* keys for the export
};

// Byte-level stand-in: ids 0..255 are bytes, 256 is <|endoftext|>. Exports a valid gpt2 vocabulary without merges.
std::unique_ptr<TextCodec> make_byte_codec();
// The tokenizer of a vocabulary GGUF (`moe train-tokenizer` output or any gpt2/llama vocab).
std::unique_ptr<TextCodec> make_gguf_codec(const std::string& vocab_path);

struct CorpusFile {
  std::string path;
  int64_t bytes = 0, tokens = 0, val_tokens = 0;
};

struct Corpus {
  std::vector<int32_t> train;  // every file's leading part, each followed by EOS
  std::vector<int32_t> val;    // every file's held-out tail, each followed by EOS
  std::vector<CorpusFile> files;
  std::string fingerprint;     // of the inputs (files, sizes, codec, split): stored in checkpoints
};

// Reads and tokenizes files (cut into ~1 MB pieces at line starts, encoded in parallel). With a cache_dir,
// the token streams are cached there under a name derived from the inputs. Throws UsageError for a missing
// or unreadable file.
Corpus load_corpus(const std::vector<std::string>& files, const TextCodec& codec, double val_fraction,
                   ThreadPool& pool, const std::string& cache_dir);

// Tokenizes one text the same way (parallel pieces).
std::vector<int32_t> encode_parallel(const TextCodec& codec, const std::string& text, ThreadPool& pool);

class BatchSampler {
 public:
  BatchSampler(const std::vector<int32_t>& stream, int T, uint64_t seed);
  int64_t windows_per_epoch() const { return windows_; }
  // Sequences for global sample indices [first, first + B): tokens and next-token targets, [B][T] each.
  void fill(int64_t first, int B, int32_t* tokens, int32_t* targets);

 private:
  const std::vector<int32_t>& stream_;
  int T_;
  uint64_t seed_;
  int64_t windows_;
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace moe::train
