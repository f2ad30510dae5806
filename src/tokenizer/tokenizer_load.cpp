// Building a Tokenizer from tokenizer.ggml.* metadata: validation, llama.cpp's defaults and its fix-ups of
// special tokens (EOT/EOG/FIM detection by text, gpt-oss and Phi-3 rules), merge tables and decode pieces.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/error.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_metadata.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

using Impl = Tokenizer::Impl;

[[noreturn]] void fail(const TokenizerMetadata& m, const std::string& what) {
  throw FormatError((m.source.empty() ? std::string("tokenizer") : m.source) + ": " + what);
}

uint32_t attr_of_type(int32_t type) {
  switch (type) {
    case kTokenNormal: return kAttrNormal;
    case kTokenUnknown: return kAttrUnknown;
    case kTokenControl: return kAttrControl;
    case kTokenUserDefined: return kAttrUserDefined;
    case kTokenUnused: return kAttrUnused;
    case kTokenByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

// Special ids: the file's key wins; a default (SentencePiece's 1/2/0) is dropped if out of range, as in
// llama.cpp, but an id the file names must exist.
void set_special_ids(Impl& t, const TokenizerMetadata& m) {
  const int64_t n = t.n_vocab();
  struct Key {
    const char* name;
    const std::optional<int64_t>& value;
    int32_t& id;
  };
  const Key keys[] = {
      {"bos_token_id", m.bos, t.bos},         {"eos_token_id", m.eos, t.eos},
      {"eot_token_id", m.eot, t.eot},         {"eom_token_id", m.eom, t.eom},
      {"unknown_token_id", m.unk, t.unk},     {"padding_token_id", m.pad, t.pad},
      {"fim_pre_token_id", m.fim_pre, t.fim_pre}, {"fim_suf_token_id", m.fim_suf, t.fim_suf},
      {"fim_mid_token_id", m.fim_mid, t.fim_mid}, {"fim_pad_token_id", m.fim_pad, t.fim_pad},
      {"fim_rep_token_id", m.fim_rep, t.fim_rep}, {"fim_sep_token_id", m.fim_sep, t.fim_sep},
  };
  for (const Key& k : keys) {
    if (k.id >= n) k.id = -1;
    if (!k.value) continue;
    // Converters write uint32 -1 (llama.cpp's LLAMA_TOKEN_NULL) for "no such token", e.g. no padding token.
    if (*k.value == -1 || *k.value == 0xFFFFFFFFll) {
      k.id = -1;
      continue;
    }
    if (*k.value < 0 || *k.value >= n)
      fail(m, "tokenizer.ggml." + std::string(k.name) + " = " + std::to_string(*k.value) +
                  " is out of range (the vocabulary has " + std::to_string(n) + " tokens)");
    k.id = static_cast<int32_t>(*k.value);
  }
}

// The first of `texts` present in the vocabulary (llama.cpp detects EOT/FIM tokens by their text).
int32_t first_present(const Impl& t, std::initializer_list<std::string_view> texts) {
  for (auto s : texts)
    if (int32_t id = t.find(s); id >= 0) return id;
  return -1;
}

void mark_control(Impl& t, int32_t id) {
  if (id >= 0) t.attr[id] |= kAttrControl;
}

void detect_special_tokens(Impl& t, const TokenizerMetadata& m) {
  if (t.eot < 0)
    t.eot = first_present(t, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                              "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                              "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                              "<end_of_utterance>"});
  mark_control(t, m.eot ? -1 : t.eot);
  if (t.eom < 0) t.eom = first_present(t, {"<|eom_id|>"});
  mark_control(t, m.eom ? -1 : t.eom);
  if (t.fim_pre < 0)
    t.fim_pre = first_present(t, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                  "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                                  "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"});
  if (t.fim_suf < 0)
    t.fim_suf = first_present(t, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                  "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
                                  "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"});
  if (t.fim_mid < 0)
    t.fim_mid = first_present(t, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                  "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                                  "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"});
  if (t.fim_pad < 0) t.fim_pad = first_present(t, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  if (t.fim_rep < 0)
    t.fim_rep = first_present(t, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  if (t.fim_sep < 0) t.fim_sep = first_present(t, {"<|file_sep|>"});
  for (int32_t id : {t.fim_pre, t.fim_suf, t.fim_mid, t.fim_pad, t.fim_rep, t.fim_sep}) mark_control(t, id);
}

void build_eog(Impl& t) {
  std::vector<int32_t> eog;
  for (int32_t id : {t.fim_pad, t.fim_rep, t.fim_sep})
    if (id >= 0) eog.push_back(id);
  static const std::string_view kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
      "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
      "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};
  for (auto s : kEogTexts) {
    if (int32_t id = t.find(s); id >= 0) {
      eog.push_back(id);
      mark_control(t, id);
    }
  }
  // gpt-oss: these structure tokens are always rendered and always matched in text.
  for (auto s : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    if (int32_t id = t.find(s); id >= 0) t.attr[id] = kAttrUserDefined;
  for (int32_t id : {t.eos, t.eot, t.eom})
    if (id >= 0) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  auto has = [&](std::string_view s) {
    return std::any_of(eog.begin(), eog.end(), [&](int32_t id) { return t.text[id] == s; });
  };
  auto drop = [&](std::string_view s, uint32_t new_attr) {
    for (auto it = eog.begin(); it != eog.end(); ++it) {
      if (t.text[*it] != s) continue;
      t.attr[*it] = new_attr;
      eog.erase(it);
      return;
    }
  };
  // o200k_harmony and solar-open: <|end|> ends a message, not the generation.
  const bool has_call = has("<|call|>") || has("<|calls|>");
  if (has("<|end|>") && has_call && (has("<|return|>") || has("<|flush|>"))) drop("<|end|>", kAttrUserDefined);
  if (has("<|tool_response>") && has("</s>")) drop("</s>", kAttrNormal);  // gemma4, paddleocr
  t.eog = std::move(eog);
}

// Phi-3 (and Phi-3.5-MoE) strips spaces after its special tokens; GGUF cannot say so, llama.cpp keys it on
// the model name.
void apply_name_rules(Impl& t, const TokenizerMetadata& m) {
  std::string name = m.name.value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (int32_t id : t.specials) t.attr[id] |= kAttrRstrip;
  if (int32_t id = t.find("</s>"); id >= 0) t.attr[id] |= kAttrRstrip;
  for (auto s : {"<unk>", "<s>", "<|endoftext|>"})
    if (int32_t id = t.find(s); id >= 0) t.attr[id] &= ~kAttrRstrip;
}

// <0xXX> -> XX, or -1.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  const int hi = hex(s[3]), lo = hex(s[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string make_piece(const Impl& t, int32_t id) {
  const std::string& s = t.text[id];
  const uint32_t a = t.attr[id];
  if (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return s;
  if (a & kAttrNormal) {
    std::string out;
    if (t.model == Impl::Model::kSpm || !t.byte_level) {  // U+2581 stands for a space
      for (size_t i = 0; i < s.size(); ++i) {
        if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
          out.push_back(' ');
          i += 2;
        } else {
          out.push_back(s[i]);
        }
      }
      return out;
    }
    // Byte-level BPE: every character stands for one byte; a character outside the alphabet (a vocabulary
    // that mixes in raw text) is kept as it is.
    for (size_t pos = 0; pos < s.size();) {
      const size_t start = pos;
      const int b = unicode::symbol_to_byte(unicode::decode_utf8(s, pos));
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {
        out.append(s, start, pos - start);
      }
    }
    return out;
  }
  if (a & kAttrByte) {
    const int b = parse_byte_token(s);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : s;
  }
  return "";  // unused and undefined tokens decode to nothing, as in llama.cpp
}

void build_bpe_tables(Impl& t, const TokenizerMetadata& m) {
  if (m.merges.empty()) fail(m, "byte-level BPE vocabulary without merges (tokenizer.ggml.merges is missing)");
  auto symbol = [&](std::string_view s) -> int32_t {
    if (int32_t id = t.find(s); id >= 0) return id;
    auto it = t.extra_ids.find(s);
    if (it != t.extra_ids.end()) return it->second;
    const int32_t id = t.n_vocab() + static_cast<int32_t>(t.extra_symbols.size());
    t.extra_symbols.emplace_back(s);
    t.extra_ids.emplace(std::string(s), id);
    return id;
  };
  if (t.byte_level)
    for (int b = 0; b < 256; ++b) t.byte_symbol[b] = symbol(unicode::byte_to_symbol(static_cast<uint8_t>(b)));
  t.merges.reserve(m.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < m.merges.size(); ++rank) {
    const std::string& mg = m.merges[rank];
    const size_t sp = mg.find(' ', 1);  // from 1: a merge may start with a space character
    if (sp == std::string::npos) continue;
    const std::string_view left = std::string_view(mg).substr(0, sp), right = std::string_view(mg).substr(sp + 1);
    joined.assign(left);
    joined.append(right);
    const int32_t l = symbol(left), r = symbol(right), res = symbol(joined);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
    t.merges.emplace(key, Impl::Merge{static_cast<int32_t>(rank), res});  // the first rank wins
  }
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& f) { return from_metadata(read_tokenizer_metadata(f)); }

Tokenizer Tokenizer::from_metadata(const TokenizerMetadata& m) {
  auto t = std::make_shared<Impl>();
  t->source = m.source;
  t->model_name = m.model;
  if (m.model == "gpt2") {
    t->model = Impl::Model::kBpe;
  } else if (m.model == "gemma4") {  // BPE over UTF-8; llama.cpp ignores the file's pre for it
    t->model = Impl::Model::kBpe;
  } else if (m.model == "llama") {
    t->model = Impl::Model::kSpm;
  } else {
    fail(m, "unsupported tokenizer model '" + m.model + "' (supported: gpt2, llama, gemma4)");
  }
  const size_t n = m.tokens.size();
  if (n == 0) fail(m, "the vocabulary (tokenizer.ggml.tokens) is empty");
  if (n >= (1u << 30)) fail(m, "the vocabulary has too many tokens (" + std::to_string(n) + ")");
  if (!m.token_types.empty() && m.token_types.size() != n)
    fail(m, "tokenizer.ggml.token_type has " + std::to_string(m.token_types.size()) + " entries for " +
                std::to_string(n) + " tokens");
  if (!m.scores.empty() && m.scores.size() != n)
    fail(m, "tokenizer.ggml.scores has " + std::to_string(m.scores.size()) + " entries for " +
                std::to_string(n) + " tokens");

  if (t->model == Impl::Model::kSpm) {
    t->bos = 1, t->eos = 2, t->unk = 0;
    t->add_space_prefix = true;
    t->add_bos = true;
  } else {
    const std::string pre = m.model == "gemma4" ? "gemma4" : m.pre.value_or("default");  // llama.cpp warns and uses 'default'
    const PreTokenizerSpec* spec = find_pre_tokenizer(pre);
    if (!spec) {
      std::string names;
      for (const auto& s : supported_pre_tokenizers()) names += (names.empty() ? "" : ", ") + s;
      fail(m, "unknown pre-tokenizer '" + pre + "' (tokenizer.ggml.pre); supported: " + names);
    }
    t->pre = *spec;
    t->pre_name = spec->name;
    t->ignore_merges = spec->ignore_merges;
    t->clean_spaces = spec->clean_spaces;
    t->nfc = spec->nfc;
    t->add_bos = spec->add_bos == 1;
    t->byte_level = spec->byte_level;
    t->escape_spaces = !spec->byte_level;
    t->whole_newlines = spec->whole_newlines;
    t->splitter = RegexSplitter(spec->regexes);
  }

  t->text.resize(n);
  t->attr.resize(n);
  t->score.assign(n, 0.0f);
  t->to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string s = m.tokens[i];
    if (s.empty()) s = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp, so every token has a text
    t->to_id.insert_or_assign(s, static_cast<int32_t>(i));
    t->text[i] = std::move(s);
    t->attr[i] = m.token_types.empty() ? kAttrNormal : attr_of_type(m.token_types[i]);
    if (!m.scores.empty()) t->score[i] = m.scores[i];
  }

  set_special_ids(*t, m);
  if (m.add_bos) t->add_bos = *m.add_bos;
  if (m.add_eos) t->add_eos = *m.add_eos;
  if (m.add_space_prefix) t->add_space_prefix = *m.add_space_prefix;
  if (t->model == Impl::Model::kBpe) t->add_space_prefix = false;  // llama.cpp: only SentencePiece prefixes
  if (t->pre.force_bos) t->add_bos = true;
  if (t->add_bos && t->bos < 0) fail(m, "add_bos_token is set but the vocabulary has no BOS token");
  if (t->add_eos && t->eos < 0) fail(m, "add_eos_token is set but the vocabulary has no EOS token");

  detect_special_tokens(*t, m);
  build_eog(*t);
  for (int32_t i = 0; i < t->n_vocab(); ++i)
    if (t->attr[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) t->specials.push_back(i);
  std::stable_sort(t->specials.begin(), t->specials.end(),
                   [&](int32_t a, int32_t b) { return t->text[a].size() > t->text[b].size(); });
  apply_name_rules(*t, m);

  for (int b = 0; b < 256; ++b) {  // how a byte is spelled when its character has no token
    if (t->model == Impl::Model::kBpe && t->byte_level) {
      t->byte_token[b] = t->find(unicode::byte_to_symbol(static_cast<uint8_t>(b)));
      continue;
    }
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    int32_t id = t->find(hex);
    if (id < 0 && t->model == Impl::Model::kSpm) id = t->find(std::string(1, static_cast<char>(b)));
    t->byte_token[b] = id;
  }
  if (t->model == Impl::Model::kBpe) {
    build_bpe_tables(*t, m);
  } else {
    for (const std::string& s : t->text) {  // characters glued to a following space inside some token
      size_t pos = 0;
      uint32_t prev = 0x2581;
      while (pos < s.size()) {
        const uint32_t cp = unicode::decode_utf8(s, pos);
        if (cp == 0x2581 && prev != 0x2581) t->spm_glue.insert(prev);
        prev = cp;
      }
    }
    t->spm_glue.erase(0x2581);
  }
  t->piece.resize(n);
  for (int32_t i = 0; i < t->n_vocab(); ++i) t->piece[i] = make_piece(*t, i);
  t->chat_template = m.chat_template.value_or("");
  return Tokenizer(std::move(t));
}

}  // namespace moe
