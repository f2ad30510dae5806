// `moe train-tokenizer`: learn a byte-level BPE vocabulary from text files and write it as a vocab-only GGUF.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "format/gguf.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_metadata.h"

namespace moe::cli {

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// llama.cpp needs an architecture with its hyperparameters even to load only the vocabulary; these are the
// placeholder keys of its own vocab-only files (models/ggml-vocab-gpt-2.gguf). There are no tensors.
void set_vocab_only_header(GgufWriter& w, int32_t n_vocab) {
  w.set("general.architecture", GgufValue::make_string("gpt2"));
  w.set("general.name", GgufValue::make_string("moe-bpe-" + std::to_string(n_vocab)));
  w.set("gpt2.block_count", GgufValue::make_u32(1));
  w.set("gpt2.context_length", GgufValue::make_u32(2048));
  w.set("gpt2.embedding_length", GgufValue::make_u32(64));
  w.set("gpt2.feed_forward_length", GgufValue::make_u32(256));
  w.set("gpt2.attention.head_count", GgufValue::make_u32(1));
  w.set("gpt2.attention.layer_norm_epsilon", GgufValue::make_f32(1e-5f));
}

}  // namespace

int cmd_train_tokenizer(int argc, char** argv) {
  CLI::App app{"Train a byte-level BPE tokenizer on text files and write it as a vocab-only GGUF (tokenizer.ggml.model "
               "gpt2, special tokens <|endoftext|>, <|im_start|>, <|im_end|>, a ChatML chat template)"};
  app.name("train-tokenizer");
  std::vector<std::string> texts;
  int32_t vocab_size = 0;
  std::string out, pre = "qwen2";
  int64_t min_count = 2;
  app.add_option("--text", texts, "training text file (repeatable)")->required();
  app.add_option("--vocab-size", vocab_size, "total vocabulary size: 256 bytes + merges + 3 special tokens")
      ->required()
      ->check(CLI::Range(260, 1 << 20));
  app.add_option("-o,--output", out, "output GGUF file")->required();
  app.add_option("--pre", pre, "pre-tokenizer: qwen2 (digits split, exact llama.cpp detokenisation), gpt-2 or llama-bpe")
      ->check(CLI::IsMember({"qwen2", "gpt-2", "llama-bpe"}));
  app.add_option("--min-count", min_count, "stop when the most frequent pair occurs fewer times than this")
      ->check(Positive);
  return run_command(app, argc, argv, [&]() {
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    BpeTrainerOptions opt;
    opt.vocab_size = vocab_size;
    opt.pre = pre;
    opt.min_pair_count = min_count;
    opt.progress = [&](int32_t done, int32_t wanted) {
      std::fprintf(stderr, "\rmerges %d/%d  %.1f s", done, wanted, seconds());
      if (done == wanted) std::fputc('\n', stderr);
    };
    BpeTrainer trainer(opt);
    size_t bytes = 0;
    for (const auto& path : texts) {
      const std::string text = read_text_file(path);
      bytes += text.size();
      trainer.add_text(text);
      std::fprintf(stderr, "read %s (%.1f MB), %zu distinct words so far  %.1f s\n", path.c_str(), text.size() / 1e6,
                   trainer.unique_words(), seconds());
    }
    TokenizerMetadata meta = trainer.train();
    const int32_t n = static_cast<int32_t>(meta.tokens.size());
    if (n < vocab_size)
      std::fprintf(stderr, "note: the text supports only %d tokens (no pair occurs %lld times any more)\n", n,
                   static_cast<long long>(min_count));
    meta.source = out;
    Tokenizer::from_metadata(meta);  // the result must load before it is written
    GgufWriter w;
    set_vocab_only_header(w, n);
    write_tokenizer_metadata(w, meta);
    w.write(out);
    std::fprintf(stderr, "wrote %s: %d tokens (%zu merges) from %.1f MB of text in %.1f s\n", out.c_str(), n,
                 meta.merges.size(), bytes / 1e6, seconds());
    return 0;
  });
}

}  // namespace moe::cli
