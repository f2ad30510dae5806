#include "tokenizer/tokenizer_metadata.h"

#include "core/error.h"
#include "format/gguf.h"

namespace moe {

namespace {

struct IdKey {
  const char* key;
  std::optional<int64_t> TokenizerMetadata::*field;
};

const IdKey kIdKeys[] = {
    {"tokenizer.ggml.bos_token_id", &TokenizerMetadata::bos},
    {"tokenizer.ggml.eos_token_id", &TokenizerMetadata::eos},
    {"tokenizer.ggml.eot_token_id", &TokenizerMetadata::eot},
    {"tokenizer.ggml.eom_token_id", &TokenizerMetadata::eom},
    {"tokenizer.ggml.unknown_token_id", &TokenizerMetadata::unk},
    {"tokenizer.ggml.padding_token_id", &TokenizerMetadata::pad},
    {"tokenizer.ggml.seperator_token_id", &TokenizerMetadata::sep},  // sic: llama.cpp's spelling
    {"tokenizer.ggml.mask_token_id", &TokenizerMetadata::mask},
    {"tokenizer.ggml.fim_pre_token_id", &TokenizerMetadata::fim_pre},
    {"tokenizer.ggml.fim_suf_token_id", &TokenizerMetadata::fim_suf},
    {"tokenizer.ggml.fim_mid_token_id", &TokenizerMetadata::fim_mid},
    {"tokenizer.ggml.fim_pad_token_id", &TokenizerMetadata::fim_pad},
    {"tokenizer.ggml.fim_rep_token_id", &TokenizerMetadata::fim_rep},
    {"tokenizer.ggml.fim_sep_token_id", &TokenizerMetadata::fim_sep},
};

// Deprecated spellings of the FIM ids, still found in older files.
const IdKey kOldFimKeys[] = {
    {"tokenizer.ggml.prefix_token_id", &TokenizerMetadata::fim_pre},
    {"tokenizer.ggml.suffix_token_id", &TokenizerMetadata::fim_suf},
    {"tokenizer.ggml.middle_token_id", &TokenizerMetadata::fim_mid},
};

struct BoolKey {
  const char* key;
  std::optional<bool> TokenizerMetadata::*field;
};

const BoolKey kBoolKeys[] = {
    {"tokenizer.ggml.add_bos_token", &TokenizerMetadata::add_bos},
    {"tokenizer.ggml.add_eos_token", &TokenizerMetadata::add_eos},
    {"tokenizer.ggml.add_space_prefix", &TokenizerMetadata::add_space_prefix},
};

[[noreturn]] void fail(const GgufFile& f, const std::string& what) {
  throw FormatError(f.path() + ": " + what);
}

const GgufValue& string_array(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find(key);
  if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
    fail(f, std::string(key) + " must be an array of strings, not " + gguf_type_name(v->type));
  return *v;
}

}  // namespace

TokenizerMetadata read_tokenizer_metadata(const GgufFile& f) {
  TokenizerMetadata m;
  m.source = f.path();
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) fail(f, "no tokenizer (metadata key tokenizer.ggml.model is missing)");
  m.model = *model;
  m.pre = f.get_string("tokenizer.ggml.pre");
  if (!f.has("tokenizer.ggml.tokens")) fail(f, "no vocabulary (metadata key tokenizer.ggml.tokens is missing)");
  m.tokens = string_array(f, "tokenizer.ggml.tokens").strs;
  if (f.has("tokenizer.ggml.merges")) m.merges = string_array(f, "tokenizer.ggml.merges").strs;
  if (const GgufValue* v = f.find("tokenizer.ggml.token_type")) {
    if (v->type != GgufType::ARRAY || v->elem_type == GgufType::STRING || v->elem_type == GgufType::FLOAT32 ||
        v->elem_type == GgufType::FLOAT64)
      fail(f, "tokenizer.ggml.token_type must be an array of integers");
    m.token_types.reserve(v->ints.size());
    for (int64_t t : v->ints) m.token_types.push_back(static_cast<int32_t>(t));
  }
  if (const GgufValue* v = f.find("tokenizer.ggml.scores")) {
    if (v->type != GgufType::ARRAY || (v->elem_type != GgufType::FLOAT32 && v->elem_type != GgufType::FLOAT64))
      fail(f, "tokenizer.ggml.scores must be an array of floats");
    m.scores.assign(v->floats.begin(), v->floats.end());
  }
  for (const auto& k : kOldFimKeys)
    if (auto id = f.get_int(k.key)) m.*(k.field) = *id;
  for (const auto& k : kIdKeys)
    if (auto id = f.get_int(k.key)) m.*(k.field) = *id;
  for (const auto& k : kBoolKeys)
    if (auto b = f.get_bool(k.key)) m.*(k.field) = *b;
  m.chat_template = f.get_string("tokenizer.chat_template");
  m.name = f.get_string("general.name");
  return m;
}

void write_tokenizer_metadata(GgufWriter& w, const TokenizerMetadata& m) {
  w.set("tokenizer.ggml.model", GgufValue::make_string(m.model));
  if (m.pre) w.set("tokenizer.ggml.pre", GgufValue::make_string(*m.pre));
  w.set("tokenizer.ggml.tokens", GgufValue::make_string_array(m.tokens));
  if (!m.scores.empty()) w.set("tokenizer.ggml.scores", GgufValue::make_f32_array(m.scores));
  if (!m.token_types.empty()) w.set("tokenizer.ggml.token_type", GgufValue::make_i32_array(m.token_types));
  if (!m.merges.empty()) w.set("tokenizer.ggml.merges", GgufValue::make_string_array(m.merges));
  for (const auto& k : kIdKeys)
    if (const auto& id = m.*(k.field)) w.set(k.key, GgufValue::make_u32(static_cast<uint32_t>(*id)));
  for (const auto& k : kBoolKeys)
    if (const auto& b = m.*(k.field)) w.set(k.key, GgufValue::make_bool(*b));
  if (m.chat_template) w.set("tokenizer.chat_template", GgufValue::make_string(*m.chat_template));
}

}  // namespace moe
