#include "train/checkpoint.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace moe::train {

using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'C', 'K', 'P', 'T', '1'};
constexpr uint32_t kVersion = 1;

// A fast 64-bit checksum over 8-byte words, streaming: the same value however the bytes are split into calls.
struct Checksum {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  uint8_t pending[8] = {};
  size_t n_pending = 0;
  void word(uint64_t w) {
    h = (h ^ w) * 0x100000001B3ull;
    h ^= h >> 29;
  }
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0 && n_pending > 0) {
      pending[n_pending++] = *p++;
      --n;
      if (n_pending == 8) {
        uint64_t w;
        std::memcpy(&w, pending, 8);
        word(w);
        n_pending = 0;
      }
    }
    for (; n >= 8; n -= 8, p += 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      word(w);
    }
    for (; n > 0; --n) pending[n_pending++] = *p++;
  }
  uint64_t value() const {
    uint64_t w = 0;
    std::memcpy(&w, pending, n_pending);
    return (h ^ w ^ n_pending) * 0x100000001B3ull;
  }
};

class Sink {
 public:
  explicit Sink(AtomicFile& f) : f_(f) {}
  void put(const void* d, size_t n) {
    sum_.add(d, n);
    f_.write(d, n);
  }
  void put_u64(uint64_t v) { put(&v, 8); }
  void put_floats(const std::vector<float>& v) {
    put_u64(v.size());
    put(v.data(), v.size() * sizeof(float));
  }
  uint64_t checksum() const { return sum_.value(); }

 private:
  AtomicFile& f_;
  Checksum sum_;
};

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  json j;
  j["config"] = to_json(c.config);
  const TrainProgress& p = c.progress;
  j["progress"] = {{"step", p.step}, {"sample", p.sample}, {"tokens", p.tokens}, {"seconds", p.seconds},
                   {"adam_t", p.adam_t}, {"data_fingerprint", p.data_fingerprint},
                   {"train_curve", p.train_curve}, {"val_curve", p.val_curve}};
  const std::string js = j.dump();
  AtomicFile f(path);
  Sink s(f);
  s.put(kMagic, 8);
  s.put(&kVersion, 4);
  s.put_u64(js.size());
  s.put(js.data(), js.size());
  s.put_floats(c.params);
  s.put(c.adam_m.data(), c.adam_m.size() * sizeof(float));
  s.put(c.adam_v.data(), c.adam_v.size() * sizeof(float));
  std::vector<float> bias;
  for (const auto& b : c.sel_bias) bias.insert(bias.end(), b.begin(), b.end());
  s.put_floats(bias);
  const uint64_t sum = s.checksum();
  f.write(&sum, 8);
  f.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
  auto bad = [&](const std::string& what) { return FormatError(path + ": " + what); };
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw FormatError(path + ": cannot open checkpoint");
  const auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<uint8_t> b(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(size)))
    throw bad("cannot read checkpoint");
  if (size < 8 + 4 + 8 + 8 || std::memcmp(b.data(), kMagic, 8) != 0) throw bad("not a moe training checkpoint");
  Checksum sum;
  sum.add(b.data(), size - 8);
  uint64_t stored;
  std::memcpy(&stored, b.data() + size - 8, 8);
  if (stored != sum.value()) throw bad("checkpoint is corrupt (checksum mismatch)");
  size_t pos = 8;
  uint32_t version;
  std::memcpy(&version, b.data() + pos, 4);
  pos += 4;
  if (version != kVersion) throw bad("unsupported checkpoint version " + std::to_string(version));
  const size_t end = size - 8;
  auto get_u64 = [&]() {
    if (pos + 8 > end) throw bad("checkpoint is truncated");
    uint64_t v;
    std::memcpy(&v, b.data() + pos, 8);
    pos += 8;
    return v;
  };
  auto get_floats = [&](std::vector<float>& v, uint64_t n) {
    if (n > (end - pos) / sizeof(float)) throw bad("checkpoint is truncated");
    v.resize(n);
    if (n > 0) std::memcpy(v.data(), b.data() + pos, n * sizeof(float));  // v.data() may be null when empty
    pos += n * sizeof(float);
  };
  const uint64_t js_len = get_u64();
  if (js_len > end - pos) throw bad("checkpoint is truncated");
  Checkpoint c;
  try {
    const json j = json::parse(b.begin() + static_cast<int64_t>(pos), b.begin() + static_cast<int64_t>(pos + js_len));
    c.config = train_config_from_json(j.at("config"));
    const json& p = j.at("progress");
    p.at("step").get_to(c.progress.step);
    p.at("sample").get_to(c.progress.sample);
    p.at("tokens").get_to(c.progress.tokens);
    p.at("seconds").get_to(c.progress.seconds);
    p.at("adam_t").get_to(c.progress.adam_t);
    p.at("data_fingerprint").get_to(c.progress.data_fingerprint);
    p.at("train_curve").get_to(c.progress.train_curve);
    p.at("val_curve").get_to(c.progress.val_curve);
  } catch (const json::exception& e) {
    throw bad(std::string("bad checkpoint header: ") + e.what());
  }
  pos += js_len;
  const uint64_t n = get_u64();
  get_floats(c.params, n);
  get_floats(c.adam_m, n);
  get_floats(c.adam_v, n);
  std::vector<float> bias;
  get_floats(bias, get_u64());
  if (pos != end) throw bad("checkpoint has trailing bytes");
  const ModelShape& m = c.config.model;
  c.sel_bias.assign(static_cast<size_t>(m.n_layer), {});
  if (!bias.empty()) {
    if (bias.size() != static_cast<size_t>(m.n_layer) * static_cast<size_t>(m.n_expert))
      throw bad("selection bias has the wrong size");
    for (int il = 0; il < m.n_layer; ++il)
      c.sel_bias[static_cast<size_t>(il)].assign(bias.begin() + static_cast<int64_t>(il) * m.n_expert,
                                                 bias.begin() + static_cast<int64_t>(il + 1) * m.n_expert);
  }
  return c;
}

}  // namespace moe::train
