#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

// The regexes of llama.cpp's pre-tokenizers (src/llama-vocab.cpp), written for PCRE2. Where llama.cpp had to
// approximate a Hugging Face regex for std::regex (gpt-4o, tekken), the original is used, since PCRE2 has real
// Unicode classes; case-insensitive contractions are spelled out ('[sS]) as llama.cpp does, so no Unicode case
// folding sneaks in.
#define MOE_CONTRACTIONS R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))re"
#define MOE_SPACES R"re(\s*[\r\n]+|\s+(?!\S)|\s+)re"

const char* const kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
const char* const kLlama3 = MOE_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|)re" MOE_SPACES;
const char* const kQwen2 = MOE_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|)re" MOE_SPACES;
const char* const kQwen35 =
    MOE_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|)re" MOE_SPACES;
const char* const kJais2 = MOE_CONTRACTIONS
    R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})re";
// gpt-4o / o200k (gpt-oss), as in its tokenizer.json.
const char* const kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)re" MOE_CONTRACTIONS
    R"re(?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)re" MOE_CONTRACTIONS
    R"re(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|)re" MOE_SPACES;
const char* const kTekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|)re" MOE_SPACES;
const char* const kDeepseek3Main =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|)re" MOE_SPACES;
const char* const kCjkDeepseek = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";
const char* const kCjkKana = R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re";
// DeepSeek LLM's letter class: Latin, Greek, Cyrillic, Armenian, Georgian and other cased scripts.
const char* const kDeepseekLlmLetters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";
const char* const kYoutuCjk =
    R"re([\x{AC00}-\x{D7A3}\x{3131}-\x{318E}]+|[\x{FF01}\x{2026}\x{201C}\x{201D}\x{2018}\x{2019}\x{2014}\x{FF1A}\x{FF1B}\x{FF0C}\x{3001}-\x{303F}\x{FE30}-\x{FE4F}]+|[\x{3105}-\x{312F}]+|[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re";
const char* const kPoro = R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)re";

struct Alias {
  const char* name;
  const char* canonical;
};

// Names llama.cpp treats as another pre-tokenizer (with the same flags).
const Alias kAliases[] = {
    {"llama3", "llama-bpe"}, {"llama-v3", "llama-bpe"}, {"falcon3", "llama-bpe"}, {"falcon-h1", "llama-bpe"},
    {"pixtral", "llama-bpe"}, {"midm-2.0", "llama-bpe"}, {"lfm2", "llama-bpe"}, {"jina-v5-nano", "llama-bpe"},
    {"hunyuan-dense", "deepseek-v3"}, {"joyai-llm", "deepseek-v3"},
    {"phi-2", "gpt-2"}, {"jina-es", "gpt-2"}, {"jina-de", "gpt-2"}, {"gigachat", "gpt-2"},
    {"jina-v2-es", "gpt-2"}, {"jina-v2-de", "gpt-2"}, {"a.x-4.0", "gpt-2"}, {"mellum", "gpt-2"},
    {"modern-bert", "gpt-2"}, {"exaone4", "gpt-2"}, {"jais", "gpt-2"},
    {"deepseek-r1-qwen", "qwen2"}, {"kormo", "qwen2"}, {"f2llmv2", "qwen2"}, {"hunyuan", "qwen2"},
    {"solar-open", "qwen2"},
    {"codeshell", "starcoder"}, {"exaone", "starcoder"}, {"minerva-7b", "starcoder"}, {"mellum2", "starcoder"},
    {"bloom", "gpt3-finnish"}, {"chatglm-bpe", "glm4"},
    {"llama4", "gpt-4o"}, {"kanana2", "gpt-4o"}, {"talkie", "gpt-4o"},
    {"cohere2moe", "tiny_aya"}, {"bailingmoe2", "bailingmoe"}, {"llada-moe", "bailingmoe"},
};

std::vector<PreTokenizerSpec> build_specs() {
  std::vector<PreTokenizerSpec> v;
  auto add = [&](const char* name, std::vector<std::string> rx, bool clean_spaces) -> PreTokenizerSpec& {
    PreTokenizerSpec s;
    s.name = name;
    s.regexes = std::move(rx);
    s.clean_spaces = clean_spaces;
    v.push_back(std::move(s));
    return v.back();
  };
  const std::vector<std::string> gpt2 = {kGpt2};
  const std::vector<std::string> starcoder = {R"re(\p{N})re", kGpt2};
  add("default", {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"}, true);
  auto& llama3 = add("llama-bpe", {kLlama3}, true);
  llama3.ignore_merges = true;
  llama3.add_bos = 1;
  add("dbrx", {kLlama3}, true);
  add("smaug-bpe", {kLlama3}, true);
  add("jais-2", {kJais2}, true);
  add("deepseek-llm",
      {R"re([\r\n])re", kDeepseekLlmLetters, R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re",
       R"re(\s+$)re", kCjkDeepseek, R"re(\p{N}+)re"},
      false);
  add("deepseek-coder", {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjkDeepseek, R"re(\p{N})re"},
      false);
  add("deepseek-v3", {R"re(\p{N}{1,3})re", kCjkKana, kDeepseek3Main}, false);
  std::string youtu = kGpt4o;  // youtu: the gpt-4o pattern with single digits
  youtu.replace(youtu.find(R"re(\p{N}{1,3})re"), 10, R"re(\p{N})re");
  add("youtu", {kYoutuCjk, youtu}, false).ignore_merges = true;
  add("falcon", {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, "[0-9][0-9][0-9]"}, true);
  add("mpt", gpt2, true);
  add("starcoder", starcoder, true);
  add("refact", starcoder, true);
  add("command-r", starcoder, false);
  add("smollm", starcoder, false);
  add("gpt-2", gpt2, true);
  add("trillion", gpt2, false);
  add("granite-docling", gpt2, false);
  add("olmo", gpt2, true).nfc = true;
  add("qwen2", {kQwen2}, false).nfc = true;
  add("megrez", {kQwen2}, true);
  add("stablelm2", {kQwen2}, true);
  add("grok-2", {kQwen2}, false);
  add("qwen35", {kQwen35}, false).nfc = true;
  add("poro-chat", {kPoro}, false);
  add("gpt3-finnish", {kPoro}, true);
  add("glm4", {kLlama3}, true);
  add("viking", {kPoro, R"re(\p{N})re"}, false);
  auto& tekken = add("tekken", {kTekken}, false);
  tekken.ignore_merges = true;
  tekken.add_bos = 1;
  add("chameleon",
      {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", R"re(([\t\n]|    |  ))re", R"re(\p{N})re",
       R"re([\p{P}!-/:-@\[-`{-~])re", kGpt2},
      false)
      .add_bos = 1;
  add("gpt-4o", {kGpt4o}, false);
  add("minimax-m2", {kGpt4o}, false);
  add("tiny_aya", {R"re(\d{1,3}(?=(?:\d{3})*\b))re", kGpt4o}, false);
  add("bailingmoe",
      {R"re('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re"},
      false);
  add("seed-coder",
      {MOE_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|)re" MOE_SPACES}, false);
  add("laguna", {R"re([^\n]+|[\n]+)re", kQwen2}, false);
  add("exaone-moe",
      {MOE_CONTRACTIONS
       R"re(|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)re"},
      true);
  add("minicpm5",
      {R"re(\p{N}{1,3})re",
       MOE_CONTRACTIONS R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|)re" MOE_SPACES},
      true)
      .ignore_merges = true;
  return v;
}

const std::vector<PreTokenizerSpec>& specs() {
  static const std::vector<PreTokenizerSpec> s = build_specs();
  return s;
}

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer(std::string_view name) {
  for (const auto& a : kAliases)
    if (name == a.name) name = a.canonical;
  for (const auto& s : specs())
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> supported_pre_tokenizers() {
  std::vector<std::string> names;
  for (const auto& s : specs()) names.push_back(s.name);
  for (const auto& a : kAliases) names.emplace_back(a.name);
  std::sort(names.begin(), names.end());
  return names;
}

// ---------------------------------------------------------------------------------------------------------

struct RegexSplitter::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& regexes) {
  for (const auto& rx : regexes) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    // $ means end of piece only (as in Rust/Oniguruma regexes); invalid UTF-8 never matches but is kept.
    const uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_INVALID_UTF;
    pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rx.data()), rx.size(), opts, &err, &err_off, nullptr);
    if (!c) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      throw Error("pre-tokenizer regex '" + rx + "' does not compile at offset " + std::to_string(err_off) + ": " +
                  reinterpret_cast<const char*>(msg));
    }
    auto code = std::make_shared<Code>();
    code->code = c;
    code->jit = pcre2_jit_compile(c, PCRE2_JIT_COMPLETE) == 0;
    codes_.push_back(std::move(code));
  }
}

namespace {

// Per-call PCRE2 state: match data for the largest pattern and, only if a match needs it, a big JIT stack.
struct MatchState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~MatchState() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
  }
};

int run_match(const pcre2_code* code, bool jit, const char* subj, size_t len, size_t start, MatchState& st) {
  auto* s = reinterpret_cast<PCRE2_SPTR>(subj);
  int rc = jit ? pcre2_jit_match(code, s, len, start, 0, st.md, st.mctx)
               : pcre2_match(code, s, len, start, 0, st.md, st.mctx);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !st.stack) {
    st.stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    st.mctx = pcre2_match_context_create(nullptr);
    if (!st.stack || !st.mctx) throw Error("out of memory for the pre-tokenizer regex stack");
    pcre2_jit_stack_assign(st.mctx, nullptr, st.stack);
    rc = pcre2_jit_match(code, s, len, start, 0, st.md, st.mctx);
  }
  return rc;
}

}  // namespace

void RegexSplitter::split(std::string_view text, std::vector<Piece>& out) const {
  out.clear();
  if (text.empty()) return;
  out.push_back({0, static_cast<uint32_t>(text.size())});
  std::vector<Piece> next;
  MatchState st;
  for (const auto& code : codes_) {
    pcre2_match_data_free(st.md);
    st.md = pcre2_match_data_create_from_pattern(code->code, nullptr);
    if (!st.md) throw Error("out of memory for pre-tokenizer match data");
    next.clear();
    next.reserve(out.size() * 2);
    for (const Piece& p : out) {
      const char* subj = text.data() + p.offset;
      size_t pos = 0, last = 0;
      while (pos < p.length) {
        const int rc = run_match(code->code, code->jit, subj, p.length, pos, st);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          PCRE2_UCHAR msg[256];
          pcre2_get_error_message(rc, msg, sizeof(msg));
          throw Error(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(msg));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
        const size_t s = ov[0], e = ov[1];
        if (e == s) {  // empty match: step over one character and search again
          pos = s + unicode::utf8_len(static_cast<unsigned char>(subj[s]));
          continue;
        }
        if (s > last) next.push_back({p.offset + static_cast<uint32_t>(last), static_cast<uint32_t>(s - last)});
        next.push_back({p.offset + static_cast<uint32_t>(s), static_cast<uint32_t>(e - s)});
        last = pos = e;
      }
      if (last < p.length) next.push_back({p.offset + static_cast<uint32_t>(last), static_cast<uint32_t>(p.length - last)});
    }
    out.swap(next);
  }
}

}  // namespace moe
