// Running the NumPy oracle scripts that some tests compare against (tests/*.py).
#pragma once
#include <gtest/gtest.h>

#include "support/testdata.h"

#include <string>
#include <vector>

namespace moe::test {

// "/usr/bin/python3" if it exists, else "python3" if that is on PATH, else "".
std::string python3_path();
// True when python3 runs and can import numpy (checked once per process).
bool python_has_numpy();
// Runs python3 <MOE_SOURCE_DIR>/<script> <args...>; returns the exit code. stdout and stderr are captured
// into *output (if given), so a failing assertion can show them.
int run_python(const std::string& script, const std::vector<std::string>& args, std::string* output = nullptr);
// Runs `program args...` (program found on PATH), output captured the same way; returns the exit code.
int run_program(const std::string& program, const std::vector<std::string>& args, std::string* output = nullptr);

}  // namespace moe::test

// Skips the current test (a failure with MOE_REQUIRE_ORACLES=1) when python3 with numpy is not available.
#define MOE_REQUIRE_NUMPY()                                                                          \
  do {                                                                                               \
    if (!::moe::test::python_has_numpy()) MOE_ORACLE_MISSING("python3 with numpy not found");        \
  } while (0)
