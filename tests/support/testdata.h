// Where tests find external oracle data (../shared/testdata by default, MOE_TESTDATA env var overrides)
// and how they run the `moe` binary.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace moe::test {

// Absolute path of the test data folder, or "" if it is missing.
std::string testdata_dir();
// Path of a file inside the test data folder ("" if the folder is missing).
std::string testdata_path(const std::string& rel);
// A fresh scratch directory (under the build tree, unique to this process), created empty.
std::string scratch_dir(const std::string& name);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

struct CliResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the built `moe` with the given arguments (shell-quoted here); stdin from `input` if given.
CliResult run_moe(const std::vector<std::string>& args, const std::string& input = "");

}  // namespace moe::test

// Skips the current test (reported as skipped, not passed) when the oracle data is absent.
#define MOE_REQUIRE_TESTDATA()                                                   \
  do {                                                                           \
    if (::moe::test::testdata_dir().empty()) GTEST_SKIP() << "no testdata folder"; \
  } while (0)
