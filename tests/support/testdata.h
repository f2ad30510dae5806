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
// Runs the built `moe` with the given arguments (shell-quoted here); stdin from `input` if given. With
// timeout_s > 0 a run that does not end in time is killed (exit code 124, as timeout(1) reports it).
CliResult run_moe(const std::vector<std::string>& args, const std::string& input = "", int timeout_s = 0);

}  // namespace moe::test

namespace moe::test {
// True when MOE_REQUIRE_ORACLES=1 (exported by .ci/run): a missing oracle is then a failure, not a skip.
bool oracles_required();
}  // namespace moe::test

// A missing oracle (the test data folder, Jinja2, torch, numpy, node): the test is reported as skipped, or
// fails when MOE_REQUIRE_ORACLES=1, so that a CI run which compared against nothing cannot pass.
#define MOE_ORACLE_MISSING(why)                                          \
  do {                                                                   \
    if (::moe::test::oracles_required()) {                               \
      GTEST_FAIL() << why << " (MOE_REQUIRE_ORACLES=1 makes this an error)"; \
    } else {                                                             \
      GTEST_SKIP() << why;                                               \
    }                                                                    \
  } while (0)

// Skips the current test (reported as skipped, not passed) when the oracle data is absent.
#define MOE_REQUIRE_TESTDATA()                                                                \
  do {                                                                                        \
    if (::moe::test::testdata_dir().empty()) MOE_ORACLE_MISSING("no testdata folder (MOE_TESTDATA)"); \
  } while (0)
