// `moe`: command-line front end. Dispatches to one subcommand per file.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/command.h"

namespace {

using moe::cli::Command;

const Command kCommands[] = {
    {"template", moe::cli::cmd_template, "render a chat template for a JSON context (as transformers/Jinja2 does)"},
};

void print_usage(FILE* f) {
  std::fprintf(f, "moe %s: run, inspect, train and reshape Mixture-of-Experts language models on the CPU\n\n",
               MOE_VERSION);
  std::fprintf(f, "usage: moe <command> [options]   (moe <command> --help for its options)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-14s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("moe %s\n", MOE_VERSION);
    return 0;
  }
  for (const auto& c : kCommands)
    if (name == c.name) return c.fn(argc - 1, argv + 1);
  std::fprintf(stderr, "moe: unknown command '%s' (see moe --help)\n", name.c_str());
  return 2;
}
