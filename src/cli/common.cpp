#include "cli/common.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"

namespace moe::cli {

namespace fs = std::filesystem;

static std::string exe_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

std::string resolve_model_path(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("MOE_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates;
  std::string dir = exe_dir();
  if (!dir.empty()) {
    candidates.push_back(fs::path(dir) / "../models/default.gguf");
    candidates.push_back(fs::path(dir) / "../share/moe/default.gguf");
  }
  candidates.push_back(fs::path(MOE_SOURCE_DIR) / "models/default.gguf");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec).string();
  }
  throw UsageError("no model given (-m FILE) and the bundled default model models/default.gguf was not found");
}

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  // Commas, spaces or both: `tokenize --ids` and `run --print-ids` print ids separated by spaces.
  std::vector<int32_t> ids;
  size_t pos = 0;
  auto is_sep = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (pos < text.size() && is_space(text[pos])) ++pos;
  while (pos < text.size()) {
    size_t end = pos;
    while (end < text.size() && !is_sep(text[end])) ++end;
    const std::string item = text.substr(pos, end - pos);
    if (item.empty()) throw UsageError(flag + ": empty item in '" + text + "'");
    char* stop = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &stop, 10);
    if (*stop != 0 || errno != 0 || v < INT32_MIN || v > INT32_MAX)
      throw UsageError(flag + ": '" + item + "' is not an integer token id");
    ids.push_back(static_cast<int32_t>(v));
    // One separator: a comma with spaces around it, or a run of spaces.
    while (end < text.size() && is_space(text[end])) ++end;
    if (end < text.size() && text[end] == ',') {
      ++end;
      while (end < text.size() && is_space(text[end])) ++end;
      if (end == text.size()) throw UsageError(flag + ": empty item in '" + text + "'");
    }
    pos = end;
  }
  if (ids.empty()) throw UsageError(flag + ": no token ids in '" + text + "'");
  return ids;
}

std::string read_text_input(const std::string& path, const std::string& what) {
  std::string out;
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    if (std::cin.bad()) throw Error("cannot read " + what + " from standard input");
    return ss.str();
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path + ": is a directory, not a " + what + " file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read the " + what + " file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(path + ": cannot read the " + what + " file");
  return ss.str();
}

std::string resolve_prompt(const std::string& prompt, const std::string& file) {
  if (!file.empty()) {
    if (!prompt.empty()) throw UsageError("give the prompt once: -p TEXT or -f FILE");
    return read_text_input(file, "prompt");
  }
  if (prompt == "-") return read_text_input("-", "prompt");
  return prompt;
}

}  // namespace moe::cli

namespace moe::cli {

std::string resolve_stats_path(const std::string& given) {
  std::error_code ec;
  if (!given.empty() && !fs::exists(given, ec) && fs::is_regular_file(given + ".json", ec)) return given + ".json";
  return given;
}

}  // namespace moe::cli
