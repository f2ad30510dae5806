// `moe tokenize`: text -> token ids with a GGUF vocabulary (or a Hugging Face tokenizer.json).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "core/error.h"
#include "format/gguf.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace moe::cli {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Tokenizer load_tokenizer(const std::string& path, const std::string& pre) {
  if (ends_with(path, ".json")) {
    HfConvertOptions opt;
    opt.pre = pre;
    return Tokenizer::from_metadata(tokenizer_metadata_from_hf(path, opt));
  }
  if (!pre.empty()) throw UsageError("--pre only applies to a tokenizer.json");
  GgufFile f(path);
  return Tokenizer::from_gguf(f);
}

// Pieces may hold any bytes (a byte token, half a character): show control characters and bytes that are
// not UTF-8 as escapes so the listing stays one line per token.
std::string escape_piece(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = unicode::utf8_len(c);
    if (c >= 0x80 && i + len <= s.size() && unicode::is_valid_utf8(std::string_view(s).substr(i, len))) {
      out.append(s, i, len);
      i += len;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  return out;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"Tokenize text with a model's vocabulary: prints each token id and its piece, or with --ids only "
               "the ids on one line"};
  app.name("tokenize");
  std::string model, positional, prompt, file, pre;
  bool ids_only = false, no_bos = false, parse_special = false;
  app.add_option("-m,--model", model, "GGUF file or a Hugging Face tokenizer.json (default: the bundled model)");
  app.add_option("TEXT", positional, "text to tokenize");
  auto* text_opt = app.add_option("-p,--prompt", prompt, "text to tokenize (-: read it from standard input)");
  // --text names a file here as in perplexity, profile and train-tokenizer: one meaning per flag name.
  auto* file_opt = app.add_option("-f,--file,--text", file, "read the text from this file (-: standard input)");
  text_opt->excludes(file_opt);
  app.add_flag("--ids", ids_only, "print only the ids, space-separated on one line (what --tokens accepts)");
  app.add_flag("--no-bos", no_bos, "do not add BOS/EOS even if the vocabulary asks for them");
  app.add_flag("--parse-special", parse_special, "turn control tokens written in the text into their ids");
  app.add_option("--pre", pre, "pre-tokenizer name for a tokenizer.json (default: detected)");
  return run_command(app, argc, argv, [&]() {
    const int sources = !positional.empty() + (*text_opt ? 1 : 0) + (*file_opt ? 1 : 0);
    if (sources != 1) throw UsageError("give the text once: as TEXT, -p TEXT or -f FILE");
    const std::string input = *file_opt ? read_text_input(file, "text") : *text_opt ? resolve_prompt(prompt, "") : positional;
    model = resolve_model_path(model);
    const Tokenizer tok = load_tokenizer(model, pre);
    const auto ids = tok.encode(input, !no_bos, parse_special);
    if (ids_only) {
      std::string line;
      for (int32_t id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
      std::printf("%s\n", line.c_str());
      return 0;
    }
    for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, escape_piece(tok.token_to_piece(id)).c_str());
    return 0;
  });
}

}  // namespace moe::cli
