#include "support/python.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "support/testdata.h"

namespace fs = std::filesystem;

namespace moe::test {
namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

int exit_code(int status) {
  if (status == -1) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

std::string python3_path() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  if (exit_code(std::system("command -v python3 > /dev/null 2>&1")) == 0) return "python3";
  return "";
}

bool python_has_numpy() {
  // A process-wide constant once computed: the environment does not change while the tests run.
  static const bool ok = [] {
    const std::string py = python3_path();
    if (py.empty()) return false;
    return exit_code(std::system((quote(py) + " -c 'import numpy' > /dev/null 2>&1").c_str())) == 0;
  }();
  return ok;
}

int run_program(const std::string& program, const std::vector<std::string>& args, std::string* output) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) about `"literal" + std::string&&`.
  std::string cmd = quote(program);
  for (const auto& a : args) cmd.append(" ").append(quote(a));
  std::string name = "program_";
  name.append(std::to_string(::getpid())).append(".log");
  const fs::path log = fs::path(MOE_BINARY_DIR) / "test_scratch" / name;
  fs::create_directories(log.parent_path());
  cmd.append(" > ").append(quote(log.string())).append(" 2>&1");
  const int code = exit_code(std::system(cmd.c_str()));
  if (output) *output = read_file(log.string());
  fs::remove(log);
  return code;
}

int run_python(const std::string& script, const std::vector<std::string>& args, std::string* output) {
  const std::string py = python3_path();
  if (py.empty()) return 127;
  std::vector<std::string> all = {(fs::path(MOE_SOURCE_DIR) / script).string()};
  all.insert(all.end(), args.begin(), args.end());
  return run_program(py, all, output);
}

}  // namespace moe::test
