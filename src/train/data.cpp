#include "train/data.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/byte_alphabet.h"
#include "core/error.h"
#include "format/gguf.h"
#include "train/rng.h"

namespace moe::train {

namespace fs = std::filesystem;

namespace {

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError("training file not found: " + path);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UsageError("cannot read training file " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (!f && !f.eof()) throw UsageError("cannot read training file " + path);
  return ss.str();
}

class ByteCodec final : public TextCodec {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<uint8_t>(text[i]);
    return ids;
  }
  size_t piece_bytes(int32_t id) const override { return id < 256 ? 1 : 0; }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t id : ids)
      if (id >= 0 && id < 256) s += static_cast<char>(id);
    return s;
  }
  int32_t eos() const override { return 256; }
  int n_vocab() const override { return 257; }
  std::string fingerprint() const override { return "bytes-257"; }
  void write_metadata(GgufWriter& w) const override {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(gpt2_byte_symbol(static_cast<uint8_t>(b)));
      types.push_back(1);
    }
    tokens.emplace_back("<|endoftext|>");
    types.push_back(3);
    w.set("tokenizer.ggml.model", GgufValue::make_string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::make_string("gpt-2"));
    w.set("tokenizer.ggml.tokens", GgufValue::make_string_array(std::move(tokens)));
    w.set("tokenizer.ggml.token_type", GgufValue::make_i32_array(types));
    w.set("tokenizer.ggml.merges", GgufValue::make_string_array({}));
    w.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(256));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::make_u32(256));
    w.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(false));
  }
};

// Cut points: starts of lines that begin with a non-space character, about every `target` bytes. Byte-level
// BPE pre-tokenizers never join a newline with the next word, so pieces encode as the whole text would.
std::vector<size_t> cut_points(const std::string& text, size_t target) {
  std::vector<size_t> cuts{0};
  size_t pos = target;
  while (pos < text.size()) {
    size_t p = pos;
    while (p < text.size() && !(text[p - 1] == '\n' && text[p] != '\n' && text[p] != ' ' && text[p] != '\t' &&
                                text[p] != '\r'))
      ++p;
    if (p >= text.size()) break;
    cuts.push_back(p);
    pos = p + target;
  }
  cuts.push_back(text.size());
  return cuts;
}

void write_cache(const std::string& path, const Corpus& c) {
  std::string bytes = "MOETOK01";
  auto put_vec = [&](const std::vector<int32_t>& v) {
    const uint64_t n = v.size();
    bytes.append(reinterpret_cast<const char*>(&n), sizeof(n));
    bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
  };
  put_vec(c.train);
  put_vec(c.val);
  for (const CorpusFile& f : c.files) {
    const int64_t v[3] = {f.bytes, f.tokens, f.val_tokens};
    bytes.append(reinterpret_cast<const char*>(v), sizeof(v));
  }
  const uint64_t h = fnv1a(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&h), sizeof(h));
  write_file_atomic(path, bytes);
}

bool read_cache(const std::string& path, Corpus& c) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string b = ss.str();
  if (b.size() < 8 + 16 + 8 || b.compare(0, 8, "MOETOK01") != 0) return false;
  uint64_t h;
  std::memcpy(&h, b.data() + b.size() - 8, 8);
  if (fnv1a(b.data(), b.size() - 8) != h) return false;
  size_t pos = 8;
  auto get_vec = [&](std::vector<int32_t>& v) {
    uint64_t n;
    if (pos + 8 > b.size() - 8) return false;
    std::memcpy(&n, b.data() + pos, 8);
    pos += 8;
    if (n > (b.size() - 8 - pos) / sizeof(int32_t)) return false;
    v.resize(n);
    if (n > 0) std::memcpy(v.data(), b.data() + pos, n * sizeof(int32_t));
    pos += n * sizeof(int32_t);
    return true;
  };
  if (!get_vec(c.train) || !get_vec(c.val)) return false;
  for (CorpusFile& cf : c.files) {
    int64_t v[3];
    if (pos + sizeof(v) > b.size() - 8) return false;
    std::memcpy(v, b.data() + pos, sizeof(v));
    pos += sizeof(v);
    cf.bytes = v[0];
    cf.tokens = v[1];
    cf.val_tokens = v[2];
  }
  return pos == b.size() - 8;
}

}  // namespace

std::unique_ptr<TextCodec> make_byte_codec() { return std::make_unique<ByteCodec>(); }

std::vector<int32_t> encode_parallel(const TextCodec& codec, const std::string& text, ThreadPool& pool) {
  const std::vector<size_t> cuts = cut_points(text, size_t{1} << 20);
  const int64_t n_pieces = static_cast<int64_t>(cuts.size()) - 1;
  std::vector<std::vector<int32_t>> pieces(static_cast<size_t>(n_pieces));
  pool.parallel_for(n_pieces, [&](int64_t i, int) {
    const size_t b = cuts[static_cast<size_t>(i)], e = cuts[static_cast<size_t>(i) + 1];
    pieces[static_cast<size_t>(i)] = codec.encode(std::string_view(text).substr(b, e - b));
  });
  std::vector<int32_t> out;
  for (const auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Corpus load_corpus(const std::vector<std::string>& files, const TextCodec& codec, double val_fraction,
                   ThreadPool& pool, const std::string& cache_dir) {
  if (files.empty()) throw UsageError("no training files given (--train FILE ...)");
  Corpus c;
  // The key: codec, split, and every file's name, size and content hash.
  uint64_t key = fnv1a(codec.fingerprint().data(), codec.fingerprint().size());
  key = fnv1a(&val_fraction, sizeof(val_fraction), key);
  std::vector<std::string> texts;
  for (const std::string& path : files) {
    texts.push_back(read_text(path));
    const std::string name = fs::path(path).filename().string();
    key = fnv1a(name.data(), name.size(), key);
    key = fnv1a(texts.back().data(), texts.back().size(), key);
    CorpusFile cf;
    cf.path = path;
    cf.bytes = static_cast<int64_t>(texts.back().size());
    c.files.push_back(cf);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(key));
  c.fingerprint = hex;
  const std::string cache = cache_dir.empty() ? "" : (fs::path(cache_dir) / ("tokens-" + c.fingerprint + ".bin")).string();
  if (!cache.empty() && read_cache(cache, c)) return c;

  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<int32_t> toks = encode_parallel(codec, texts[i], pool);
    const int64_t n = static_cast<int64_t>(toks.size());
    const int64_t n_val = static_cast<int64_t>(static_cast<double>(n) * val_fraction);
    c.files[i].tokens = n;
    c.files[i].val_tokens = n_val;
    c.train.insert(c.train.end(), toks.begin(), toks.end() - n_val);
    c.train.push_back(codec.eos());
    if (n_val > 0) {
      c.val.insert(c.val.end(), toks.end() - n_val, toks.end());
      c.val.push_back(codec.eos());
    }
  }
  if (!cache.empty()) {
    fs::create_directories(cache_dir);
    write_cache(cache, c);
  }
  return c;
}

BatchSampler::BatchSampler(const std::vector<int32_t>& stream, int T, uint64_t seed)
    : stream_(stream), T_(T), seed_(seed) {
  windows_ = static_cast<int64_t>(stream.size()) / T - 1;
  if (windows_ < 1)
    throw UsageError("the training text has " + std::to_string(stream.size()) + " tokens, too few for sequences of " +
                     std::to_string(T) + " (+1) tokens");
}

void BatchSampler::fill(int64_t first, int B, int32_t* tokens, int32_t* targets) {
  for (int b = 0; b < B; ++b) {
    const int64_t g = first + b, epoch = g / windows_, i = g % windows_;
    if (epoch != perm_epoch_) {
      perm_.resize(static_cast<size_t>(windows_));
      for (int64_t w = 0; w < windows_; ++w) perm_[static_cast<size_t>(w)] = w;
      Rng rng(mix_key(seed_, 0xDA7A, static_cast<uint64_t>(epoch)));
      for (int64_t w = windows_ - 1; w > 0; --w) std::swap(perm_[static_cast<size_t>(w)], perm_[rng.below(static_cast<uint64_t>(w) + 1)]);
      perm_epoch_ = epoch;
    }
    const int64_t offset = static_cast<int64_t>(mix_key(seed_, 0x0FF5, static_cast<uint64_t>(epoch)) % static_cast<uint64_t>(T_));
    const int64_t start = offset + perm_[static_cast<size_t>(i)] * T_;
    for (int t = 0; t < T_; ++t) {
      tokens[static_cast<int64_t>(b) * T_ + t] = stream_[static_cast<size_t>(start + t)];
      targets[static_cast<int64_t>(b) * T_ + t] = stream_[static_cast<size_t>(start + t + 1)];
    }
  }
}

}  // namespace moe::train
