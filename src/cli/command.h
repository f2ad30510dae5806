// The `moe` subcommands: each lives in its own file and is listed once in main.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace moe::cli {

// Parses argv with `app` and runs `body`, turning every failure into one line on stderr:
// bad flags and usage errors exit 2, other errors (bad files, ...) exit 1; --help prints help and exits 0.
int run_command(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Checks for numeric flags. CLI11's NonNegativeNumber and PositiveNumber print their upper bound (DBL_MAX) as a
// 309-digit number in the error; these say only what is wrong with the value given.
extern const CLI::Validator NonNegative;
extern const CLI::Validator Positive;

using CommandFn = int (*)(int argc, char** argv);
struct Command {
  const char* name;
  CommandFn fn;
  const char* summary;
};

// Subcommand entry points (argv[0] is the subcommand name).
int cmd_info(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_convert_llama2c(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_train_tokenizer(int argc, char** argv);
int cmd_template(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);
int cmd_profile(int argc, char** argv);
int cmd_prune(int argc, char** argv);
int cmd_steer_find(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_cache_sim(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_serve(int argc, char** argv);

}  // namespace moe::cli
