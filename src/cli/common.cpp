#include "cli/common.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <thread>

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
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) throw UsageError(flag + ": empty item in '" + text + "'");
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != 0 || errno != 0 || v < INT32_MIN || v > INT32_MAX)
      throw UsageError(flag + ": '" + item + "' is not an integer token id");
    ids.push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

int resolve_threads(int requested) {
  if (requested < 0) throw UsageError("--threads must be >= 0");
  if (requested == 0) {
    unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
  }
  return requested;
}

}  // namespace moe::cli
