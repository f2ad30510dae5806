// Exact token ids against reference vectors: llama.cpp's ggml-vocab-*.gguf.inp/.out pairs (every one with a
// GGUF beside it, found by listing the folder), the vectors whose GGUF is too large to ship tested through
// the tokenizer.json converter, and Hugging Face `tokenizers` outputs for real MoE vocabularies.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "format/gguf.h"
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

// Same format and parsing as llama.cpp's tests/test-tokenizer-0.cpp.
std::vector<Case> read_vectors(const std::string& inp_path, const std::string& out_path) {
  const std::string raw = test::read_file(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(raw.substr(pos));
      break;
    }
    texts.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
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
