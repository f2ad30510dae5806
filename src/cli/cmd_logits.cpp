// `moe logits`: float32 logits for every position of a token list (a stable hook for parity checks).
#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "model/context.h"

namespace moe::cli {

int cmd_logits(int argc, char** argv) {
  CLI::App app{"Write float32 little-endian logits [n_tokens x n_vocab], row-major, for every position", "logits"};
  std::string path, tokens, out, kernels = "simd";
  int threads = 0;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--tokens", tokens, "comma-separated token ids")->required();
  app.add_option("--out", out, "output file")->required();
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--kernels", kernels, "kernel set: simd or ref")->check(CLI::IsMember({"simd", "ref"}));
  return run_command(app, argc, argv, [&] {
    auto ids = parse_id_list(tokens, "--tokens");
    auto model = Model::load(resolve_model_path(path));
    ThreadPool pool(resolve_threads(threads));
    const int n_ctx = std::max<int>(static_cast<int>(ids.size()), 1);
    Context ctx(*model, pool, {.n_ctx = n_ctx, .n_batch = 512, .kernels = &kernels_by_name(kernels.c_str())});
    std::vector<float> logits(ids.size() * static_cast<size_t>(model->config().n_vocab));
    ctx.decode(ids, logits.data(), true);
    AtomicFile f(out);
    f.write(logits.data(), logits.size() * sizeof(float));
    f.commit();
    return 0;
  });
}

}  // namespace moe::cli
