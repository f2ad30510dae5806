// The training codec of a vocabulary GGUF: moe::Tokenizer for text, the file's tokenizer.* keys for the export.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace moe::train {

namespace {

class GgufCodec final : public TextCodec {
 public:
  explicit GgufCodec(const std::string& path) : file_(path), tok_(Tokenizer::from_gguf(file_)) {
    if (tok_.eos() < 0) throw UsageError(path + ": the vocabulary has no end-of-sequence token to separate documents");
    bytes_.resize(static_cast<size_t>(tok_.n_vocab()));
    for (int32_t id = 0; id < tok_.n_vocab(); ++id)
      bytes_[static_cast<size_t>(id)] = tok_.is_control(id) ? 0 : tok_.token_to_piece(id).size();
    // The fingerprint covers the vocabulary itself, not the file's name.
    uint64_t h = 0xcbf29ce484222325ull;
    for (const auto& [key, v] : file_.metadata()) {
      if (key.rfind("tokenizer.", 0) != 0) continue;
      const std::string s = key + "=" + v.to_string(1u << 30);
      for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    }
    char hex[32];
    std::snprintf(hex, sizeof(hex), "gguf-%016llx", static_cast<unsigned long long>(h));
    fingerprint_ = hex;
  }
  std::vector<int32_t> encode(std::string_view text) const override { return tok_.encode(text, false, false); }
  size_t piece_bytes(int32_t id) const override { return bytes_[static_cast<size_t>(id)]; }
  std::string decode(const std::vector<int32_t>& ids) const override { return tok_.decode(ids, true); }
  int32_t eos() const override { return tok_.eos(); }
  int n_vocab() const override { return tok_.n_vocab(); }
  std::string fingerprint() const override { return fingerprint_; }
  void write_metadata(GgufWriter& w) const override {
    for (const auto& [key, v] : file_.metadata())
      if (key.rfind("tokenizer.", 0) == 0) w.set(key, v);
  }

 private:
  GgufFile file_;
  Tokenizer tok_;
  std::vector<size_t> bytes_;
  std::string fingerprint_;
};

}  // namespace

std::unique_ptr<TextCodec> make_gguf_codec(const std::string& vocab_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(vocab_path, ec)) throw UsageError("vocabulary file not found: " + vocab_path);
  return std::make_unique<GgufCodec>(vocab_path);
}

}  // namespace moe::train
