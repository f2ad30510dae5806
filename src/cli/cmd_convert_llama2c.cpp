// `moe convert-llama2c`: llama2.c checkpoint + tokenizer.bin -> GGUF.
#include <cstdio>

#include "cli/command.h"
#include "format/llama2c.h"

namespace moe::cli {

int cmd_convert_llama2c(int argc, char** argv) {
  CLI::App app{"Convert a llama2.c checkpoint (e.g. stories260K.bin) and its tokenizer.bin to GGUF", "convert-llama2c"};
  std::string model, tok, out;
  app.add_option("--model", model, "llama2.c checkpoint")->required();
  app.add_option("--tokenizer", tok, "llama2.c tokenizer.bin")->required();
  app.add_option("-o,--out", out, "output GGUF")->required();
  return run_command(app, argc, argv, [&] {
    convert_llama2c(model, tok, out);
    std::fprintf(stderr, "wrote %s\n", out.c_str());
    return 0;
  });
}

}  // namespace moe::cli
