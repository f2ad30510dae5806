#include "support/testdata.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace moe::test {

std::string testdata_dir() {
  const char* env = std::getenv("MOE_TESTDATA");
  std::string dir = env && *env ? env : MOE_TESTDATA_DEFAULT;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  return fs::canonical(dir, ec).string();
}

std::string testdata_path(const std::string& rel) {
  std::string d = testdata_dir();
  return d.empty() ? "" : d + "/" + rel;
}

std::string scratch_dir(const std::string& name) {
  // Per process: ctest runs the tests of one program in parallel processes that may use the same name.
  fs::path p = fs::path(MOE_BINARY_DIR) / "test_scratch" / (name + "." + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  if (!f) throw std::runtime_error("cannot write " + path);
}

static std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

bool oracles_required() {
  const char* v = std::getenv("MOE_REQUIRE_ORACLES");
  return v && std::string(v) == "1";
}

CliResult run_moe(const std::vector<std::string>& args, const std::string& input, int timeout_s) {
  static int counter = 0;
  std::string dir = (fs::path(MOE_BINARY_DIR) / "test_scratch" / "cli").string();
  fs::create_directories(dir);
  std::string base = dir + "/run" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::string cmd = timeout_s > 0 ? "timeout -k 5 " + std::to_string(timeout_s) + " " : std::string();
  cmd += shell_quote(MOE_CLI_PATH);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  if (!input.empty()) {
    write_file(base + ".in", input);
    cmd += " < " + shell_quote(base + ".in");
  } else {
    cmd += " < /dev/null";
  }
  cmd += " > " + shell_quote(base + ".out") + " 2> " + shell_quote(base + ".err");
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = read_file(base + ".out");
  r.err = read_file(base + ".err");
  fs::remove(base + ".out");
  fs::remove(base + ".err");
  fs::remove(base + ".in");
  return r;
}

}  // namespace moe::test
