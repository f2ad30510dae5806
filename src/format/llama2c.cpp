#include "format/llama2c.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "format/tensor_names.h"

namespace moe {
namespace {

struct Header {
  int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
};

}  // namespace

void convert_llama2c(const std::string& model_path, const std::string& tokenizer_path, const std::string& out) {
  MappedFile mf(model_path);
  if (mf.size() < sizeof(Header)) throw FormatError(model_path + ": too small for a llama2.c checkpoint");
  Header h;
  std::memcpy(&h, mf.data(), sizeof(h));
  const bool shared = h.vocab > 0;
  const int64_t vocab = shared ? h.vocab : -static_cast<int64_t>(h.vocab);
  if (h.dim <= 0 || h.hidden <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 || vocab <= 0 ||
      h.seq_len <= 0 || h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0 || h.dim > (1 << 16) ||
      h.hidden > (1 << 18) || h.n_layers > 1024 || vocab > (1 << 22) || h.seq_len > (1 << 22))
    throw FormatError(model_path + ": implausible llama2.c header");
  const int64_t D = h.dim, F = h.hidden, L = h.n_layers, hd = D / h.n_heads, kv = hd * h.n_kv_heads;
  // Sizes in floats of every section, in file order.
  const int64_t sizes[] = {vocab * D, L * D, L * D * D, L * D * kv, L * D * kv, L * D * D, L * D,
                           L * F * D, L * D * F, L * F * D, D, int64_t{h.seq_len} * hd / 2, int64_t{h.seq_len} * hd / 2};
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  const int64_t need = static_cast<int64_t>(sizeof(Header)) + 4 * (total + (shared ? 0 : vocab * D));
  if (static_cast<int64_t>(mf.size()) < need)
    throw FormatError(model_path + ": truncated: header promises " + std::to_string(need) + " bytes, file has " +
                      std::to_string(mf.size()));
  const float* p = reinterpret_cast<const float*>(mf.data() + sizeof(Header));
  std::vector<const float*> sec;
  for (int64_t s : sizes) {
    sec.push_back(p);
    p += s;
  }
  const float* wcls = shared ? sec[0] : p;

  // Tokenizer: llama2.c stores pieces with plain spaces; GGUF SentencePiece vocabularies use U+2581.
  MappedFile tf(tokenizer_path);
  size_t pos = 4;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int64_t id = 0; id < vocab; ++id) {
    if (pos + 8 > tf.size()) throw FormatError(tokenizer_path + ": truncated at token " + std::to_string(id));
    float score;
    uint32_t len;
    std::memcpy(&score, tf.data() + pos, 4);
    std::memcpy(&len, tf.data() + pos + 4, 4);
    pos += 8;
    if (len > tf.size() - pos) throw FormatError(tokenizer_path + ": token " + std::to_string(id) + " runs past the end");
    std::string text(reinterpret_cast<const char*>(tf.data() + pos), len);
    pos += len;
    int32_t type = 1;  // normal
    unsigned byte_val;
    char tail;
    if (id == 0) text = "<unk>", type = 2;
    else if (id == 1) text = "<s>", type = 3;
    else if (id == 2) text = "</s>", type = 3;
    else if (text.empty()) type = 3;
    else if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%2X%c", &byte_val, &tail) == 2 && tail == '>') type = 6;
    std::string escaped;
    for (char c : text) {
      if (c == ' ') escaped += "\xe2\x96\x81";
      else escaped += c;
    }
    tokens.push_back(std::move(escaped));
    scores.push_back(score);
    types.push_back(type);
  }

  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string("llama"));
  w.set("general.name", GgufValue::make_string("llama2.c " + model_path.substr(model_path.find_last_of('/') + 1)));
  w.set("llama.context_length", GgufValue::make_u32(static_cast<uint32_t>(h.seq_len)));
  w.set("llama.embedding_length", GgufValue::make_u32(static_cast<uint32_t>(D)));
  w.set("llama.feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(F)));
  w.set("llama.attention.head_count", GgufValue::make_u32(static_cast<uint32_t>(h.n_heads)));
  w.set("llama.attention.head_count_kv", GgufValue::make_u32(static_cast<uint32_t>(h.n_kv_heads)));
  w.set("llama.block_count", GgufValue::make_u32(static_cast<uint32_t>(L)));
  w.set("llama.rope.dimension_count", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::make_f32(1e-5f));
  w.set("tokenizer.ggml.model", GgufValue::make_string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::make_string_array(std::move(tokens)));
  w.set("tokenizer.ggml.scores", GgufValue::make_f32_array(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::make_i32_array(types));
  w.set("tokenizer.ggml.unknown_token_id", GgufValue::make_u32(0));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::make_u32(2));

  // llama2.c's RoPE rotates adjacent pairs, which is GGUF llama's layout: weights are copied as they are.
  auto bytes = [](const float* f) { return static_cast<const void*>(f); };
  w.add_tensor(tensor_name::kTokenEmbd, DType::F32, {D, vocab}, bytes(sec[0]), 4 * vocab * D);
  w.add_tensor(tensor_name::kOutputNorm, DType::F32, {D}, bytes(sec[10]), 4 * D);
  w.add_tensor(tensor_name::kOutput, DType::F32, {D, vocab}, bytes(wcls), 4 * vocab * D);
  for (int64_t l = 0; l < L; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    w.add_tensor(b + tensor_name::kAttnQ, DType::F32, {D, D}, bytes(sec[2] + l * D * D), 4 * D * D);
    w.add_tensor(b + tensor_name::kAttnK, DType::F32, {D, kv}, bytes(sec[3] + l * D * kv), 4 * D * kv);
    w.add_tensor(b + tensor_name::kAttnV, DType::F32, {D, kv}, bytes(sec[4] + l * D * kv), 4 * D * kv);
    w.add_tensor(b + tensor_name::kAttnOutput, DType::F32, {D, D}, bytes(sec[5] + l * D * D), 4 * D * D);
    w.add_tensor(b + tensor_name::kAttnNorm, DType::F32, {D}, bytes(sec[1] + l * D), 4 * D);
    w.add_tensor(b + tensor_name::kFfnGate, DType::F32, {D, F}, bytes(sec[7] + l * F * D), 4 * F * D);
    w.add_tensor(b + tensor_name::kFfnDown, DType::F32, {F, D}, bytes(sec[8] + l * D * F), 4 * D * F);
    w.add_tensor(b + tensor_name::kFfnUp, DType::F32, {D, F}, bytes(sec[9] + l * F * D), 4 * F * D);
    w.add_tensor(b + tensor_name::kFfnNorm, DType::F32, {D}, bytes(sec[6] + l * D), 4 * D);
  }
  w.write(out);
}

}  // namespace moe
