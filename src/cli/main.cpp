// `moe`: command-line front end. Dispatches to one subcommand per file.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/command.h"

namespace {

using moe::cli::Command;

const Command kCommands[] = {
    {"info", moe::cli::cmd_info, "describe a GGUF model: architecture, experts, parameters, types, memory"},
    {"run", moe::cli::cmd_run, "generate text from a prompt"},
    {"logits", moe::cli::cmd_logits, "write float32 logits for every position of a token list (parity hook)"},
    {"synth", moe::cli::cmd_synth, "write a random-weight GGUF of any shape and type"},
    {"chat", moe::cli::cmd_chat, "chat in the terminal with the model's chat template"},
    {"serve", moe::cli::cmd_serve, "OpenAI-compatible HTTP server with continuous batching and a web page"},
    {"perplexity", moe::cli::cmd_perplexity, "bits per byte and perplexity of a text file"},
    {"profile", moe::cli::cmd_profile, "measure expert usage per task: stats file, heatmaps, routing trace"},
    {"prune", moe::cli::cmd_prune, "keep the most important experts per layer; write a smaller GGUF"},
    {"steer-find", moe::cli::cmd_steer_find, "rank experts specific to a behaviour (for --ban / --force)"},
    {"convert-llama2c", moe::cli::cmd_convert_llama2c, "convert a llama2.c checkpoint and tokenizer to GGUF"},
    {"tokenize", moe::cli::cmd_tokenize, "text -> token ids with a model's vocabulary"},
    {"train-tokenizer", moe::cli::cmd_train_tokenizer, "train a byte-level BPE vocabulary, write a vocab-only GGUF"},
    {"template", moe::cli::cmd_template, "render a chat template for a JSON context (as transformers/Jinja2 does)"},
    {"bench", moe::cli::cmd_bench, "prompt and generation speed, with the memory-bandwidth bound measured alongside"},
    {"cache-sim", moe::cli::cmd_cache_sim, "replay routing traces through the expert cache's replacement policies"},
    {"train", moe::cli::cmd_train, "train a MoE model (qwen3moe GGUF) on text, resume it, or benchmark it"},
};

void print_usage(FILE* f) {
  std::fprintf(f, "moe %s: run, inspect, train and reshape Mixture-of-Experts language models on the CPU\n\n",
               MOE_VERSION);
  std::fprintf(f, "usage: moe <command> [options]   (moe <command> --help for its options)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-16s %s\n", c.name, c.summary);
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
