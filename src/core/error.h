// Errors are exceptions carrying one clear line naming the file, tensor or flag; the CLI prints it and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown for malformed or unsupported input files (GGUF, checkpoints, stats).
class FormatError : public Error {
 public:
  using Error::Error;
};

// Thrown for bad user input (flags, token ids, budgets); the CLI maps it to exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace moe
