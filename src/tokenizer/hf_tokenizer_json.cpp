#include "tokenizer/hf_tokenizer_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"

namespace moe {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw FormatError(path + ": " + what); }

json load_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path);
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
}

// Pre-tokenizer regexes as they appear in tokenizer.json, and the llama.cpp name that implements them.
struct KnownSplit {
  std::vector<std::string> regexes;
  const char* pre;
};

const std::vector<KnownSplit>& known_splits() {
  static const std::vector<KnownSplit> k = {
      {{R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       "qwen2"},
      {{R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       "llama-bpe"},
      {{R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       "gpt-4o"},
      {{R"re(\p{N}{1,3})re", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
       "deepseek-v3"},
  };
  return k;
}

// What a tokenizer.json pre-tokenizer does, as far as choosing a llama.cpp pre-tokenizer goes.
struct PreSteps {
  std::vector<std::string> regexes;  // Split patterns, in order
  bool byte_level_regex = false;     // ByteLevel(use_regex=true): GPT-2's own split
  bool digits = false;               // Digits(individual_digits=true)
  std::vector<std::string> unknown;  // any other step
};

void collect_steps(const json& pt, PreSteps& s) {
  if (!pt.is_object()) return;
  const std::string type = pt.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : pt.value("pretokenizers", json::array())) collect_steps(p, s);
  } else if (type == "Split" && pt.contains("pattern") && pt["pattern"].contains("Regex")) {
    s.regexes.push_back(pt["pattern"]["Regex"].get<std::string>());
  } else if (type == "ByteLevel") {
    if (pt.value("use_regex", true)) s.byte_level_regex = true;
  } else if (type == "Digits" && pt.value("individual_digits", false)) {
    s.digits = true;
  } else {
    s.unknown.push_back(type);
  }
}

bool normalizer_is_nfc(const json& n) {
  if (!n.is_object()) return false;
  if (n.value("type", "") == "NFC") return true;
  if (n.value("type", "") == "Sequence")
    for (const auto& x : n.value("normalizers", json::array()))
      if (normalizer_is_nfc(x)) return true;
  return false;
}

bool normalizer_prepends_space(const json& n) {
  if (!n.is_object()) return false;
  if (n.value("type", "") == "Prepend") return true;
  if (n.value("type", "") == "Sequence")
    for (const auto& x : n.value("normalizers", json::array()))
      if (normalizer_prepends_space(x)) return true;
  return false;
}

std::string detect_pre(const std::string& path, const json& j) {
  PreSteps s;
  collect_steps(j.value("pre_tokenizer", json()), s);
  if (s.unknown.empty() && s.byte_level_regex) {
    if (s.regexes.empty() && s.digits) return "starcoder";  // digits one by one, then GPT-2's split
    if (s.regexes.empty()) return normalizer_is_nfc(j.value("normalizer", json())) ? "olmo" : "gpt-2";
  }
  if (s.unknown.empty() && !s.byte_level_regex && !s.digits)
    for (const auto& k : known_splits())
      if (k.regexes == s.regexes) return k.pre;
  fail(path, "cannot tell which llama.cpp pre-tokenizer matches this tokenizer.json (" +
                 std::to_string(s.regexes.size()) + " split regexes" + (s.unknown.empty() ? "" : ", step " + s.unknown[0]) +
                 "); name one explicitly");
}

// convert_hf_to_gguf.py: added tokens that look special are control tokens even when not marked special.
bool looks_special(const std::string& s) {
  auto starts = [&](std::string_view p) { return s.rfind(p, 0) == 0; };
  auto ends = [&](std::string_view p) { return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0; };
  return s == "<pad>" || s == "<mask>" || s == "<2mass>" || s == "[@BOS@]" || (starts("<|") && ends("|>")) ||
         (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) || (starts("<unused") && ends(">"));
}

bool is_byte_token(const std::string& s) {
  return s.size() == 6 && s.rfind("<0x", 0) == 0 && s[5] == '>' && std::isxdigit(static_cast<unsigned char>(s[3])) &&
         std::isxdigit(static_cast<unsigned char>(s[4]));
}

// A tokenizer_config.json token entry: a string, {"content": ...}, or null.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

std::string merge_string(const std::string& path, const json& m) {
  if (m.is_string()) return m.get<std::string>();
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return m[0].get<std::string>() + " " + m[1].get<std::string>();
  fail(path, "model.merges holds an entry that is neither \"a b\" nor [\"a\", \"b\"]");
}

}  // namespace

TokenizerMetadata tokenizer_metadata_from_hf(const std::string& path, const HfConvertOptions& opt) {
  const json j = load_json(path);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail(path, "no \"model\" object");
  const json& model = j["model"];
  if (model.value("type", "") != "BPE")
    fail(path, "tokenizer model '" + model.value("type", std::string("?")) + "' is not supported (only BPE)");
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail(path, "model.vocab is missing");
  const bool spm_style = model.value("byte_fallback", false);

  TokenizerMetadata m;
  m.source = path;
  m.model = spm_style ? "llama" : "gpt2";

  // Vocabulary: model.vocab plus added tokens (which may reuse or extend its ids).
  int64_t max_id = -1;
  std::vector<std::pair<int64_t, std::string>> entries;
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) fail(path, "model.vocab['" + text + "'] is not an id");
    entries.emplace_back(id.get<int64_t>(), text);
    max_id = std::max(max_id, id.get<int64_t>());
  }
  const json added = j.value("added_tokens", json::array());
  for (const auto& a : added) max_id = std::max(max_id, a.value("id", int64_t{-1}));
  const int64_t n = std::max(max_id + 1, opt.vocab_size);
  if (n <= 0 || n > (int64_t{1} << 30)) fail(path, "implausible vocabulary size " + std::to_string(n));
  m.tokens.assign(n, std::string());
  m.token_types.assign(n, kTokenUnused);
  for (const auto& [id, text] : entries) {
    m.tokens[id] = text;
    m.token_types[id] = spm_style && is_byte_token(text) ? kTokenByte : kTokenNormal;
  }
  const std::string unk_text = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
  for (const auto& a : added) {
    const int64_t id = a.value("id", int64_t{-1});
    std::string text = a.value("content", "");
    if (id < 0 || text.empty()) fail(path, "an added token has no id or no content");
    int32_t type;
    if (text == unk_text) {
      type = kTokenUnknown;
    } else if (a.value("special", false) || looks_special(text)) {
      type = kTokenControl;
    } else {
      type = kTokenUserDefined;
      if (spm_style) {  // user-defined pieces are matched on raw text, where spaces are spaces
        for (size_t p; (p = text.find("\xE2\x96\x81")) != std::string::npos;) text.replace(p, 3, " ");
      }
    }
    m.tokens[id] = std::move(text);
    m.token_types[id] = type;
  }
  for (int64_t i = 0; i < n; ++i)
    if (m.tokens[i].empty()) m.tokens[i] = "[PAD" + std::to_string(i) + "]";

  for (const auto& mg : model.value("merges", json::array())) m.merges.push_back(merge_string(path, mg));

  if (spm_style) {
    // SentencePiece scores that replay the merge order: a token scores minus the rank of the first merge
    // that builds it; tokens no merge builds (single characters, specials) score 0.
    std::unordered_map<std::string, int64_t> first_rank;
    for (size_t r = 0; r < m.merges.size(); ++r) {
      const std::string& s = m.merges[r];
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) continue;
      first_rank.emplace(s.substr(0, sp) + s.substr(sp + 1), static_cast<int64_t>(r));
    }
    m.scores.assign(n, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      auto it = first_rank.find(m.tokens[i]);
      if (it != first_rank.end() && m.token_types[i] == kTokenNormal) m.scores[i] = -static_cast<float>(it->second);
    }
    m.merges.clear();  // a `llama` vocabulary merges by score
    m.add_space_prefix = normalizer_prepends_space(j.value("normalizer", json()));
  } else {
    m.pre = opt.pre.empty() ? detect_pre(path, j) : opt.pre;
    if (!find_pre_tokenizer(*m.pre)) fail(path, "unknown pre-tokenizer '" + *m.pre + "'");
  }

  // Special ids and flags from tokenizer_config.json (as gguf-py's SpecialVocab reads them).
  const auto cfg_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::unordered_map<std::string, int64_t> id_of;
  for (int64_t i = 0; i < n; ++i) id_of.emplace(m.tokens[i], i);
  auto lookup = [&](const std::optional<std::string>& text) -> std::optional<int64_t> {
    if (!text) return std::nullopt;
    auto it = id_of.find(*text);
    return it == id_of.end() ? std::nullopt : std::optional<int64_t>(it->second);
  };
  if (std::filesystem::exists(cfg_path)) {
    const json cfg = load_json(cfg_path.string());
    m.bos = lookup(config_token(cfg, "bos_token"));
    m.eos = lookup(config_token(cfg, "eos_token"));
    m.unk = lookup(config_token(cfg, "unk_token"));
    m.pad = lookup(config_token(cfg, "pad_token"));
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) m.add_bos = cfg["add_bos_token"].get<bool>();
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) m.add_eos = cfg["add_eos_token"].get<bool>();
    if (cfg.contains("chat_template")) {
      const json& ct = cfg["chat_template"];
      if (ct.is_string()) {
        m.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const auto& e : ct)
          if (e.value("name", "") == "default" && e.contains("template")) m.chat_template = e["template"].get<std::string>();
      }
    }
  }
  if (!m.unk && !unk_text.empty()) m.unk = lookup(unk_text);
  if (spm_style) {  // llama.cpp's SentencePiece defaults when the config names nothing
    if (!m.bos) m.bos = lookup(std::string("<s>"));
    if (!m.eos) m.eos = lookup(std::string("</s>"));
  }
  if (m.add_bos.value_or(spm_style) && !m.bos) m.add_bos = false;
  return m;
}

}  // namespace moe
