// `moe logits`: float32 logits for every position of a token list (a stable hook for parity checks).
#include <algorithm>
#include <cstdio>
#include <span>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "model/context.h"

namespace moe::cli {

int cmd_logits(int argc, char** argv) {
  CLI::App app{"Write float32 little-endian logits [n_tokens x n_vocab], row-major, for every position", "logits"};
  std::string path, tokens, out, kernels = "simd";
  int threads = 0, greedy = 0;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--tokens", tokens, "comma-separated token ids")->required();
  app.add_option("--out", out, "output file")->required();
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--kernels", kernels, "kernel set: simd or ref")->check(CLI::IsMember({"simd", "ref"}));
  app.add_option("--greedy", greedy, "then print N greedy ids on stdout (argmax, lowest id on ties, each decoded alone "
                 "through the KV cache, no stop at EOS)")->check(CLI::Range(0, 1 << 20));
  return run_command(app, argc, argv, [&] {
    auto ids = parse_id_list(tokens, "--tokens");
    auto model = Model::load(resolve_model_path(path));
    ThreadPool pool(resolve_threads(threads));
    const int n_ctx = std::max<int>(static_cast<int>(ids.size()) + greedy, 1);
    Context ctx(*model, pool, {.n_ctx = n_ctx, .n_batch = 512, .kernels = &kernels_by_name(kernels.c_str())});
    std::vector<float> logits(ids.size() * static_cast<size_t>(model->config().n_vocab));
    ctx.decode(ids, logits.data(), true);
    AtomicFile f(out);
    f.write(logits.data(), logits.size() * sizeof(float));
    f.commit();
    if (greedy > 0) {
      // Greedy continuation as llama.cpp's reference dumper makes it: step 0 is the last prompt row's argmax.
      const size_t nv = static_cast<size_t>(model->config().n_vocab);
      std::vector<float> row(logits.end() - static_cast<std::ptrdiff_t>(nv), logits.end());
      for (int s = 0; s < greedy; ++s) {
        const int32_t next = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());  // first max
        std::printf(s ? " %d" : "%d", next);
        if (s + 1 < greedy) ctx.decode(std::span<const int32_t>(&next, 1), row.data(), false);
      }
      std::printf("\n");
    }
    return 0;
  });
}

}  // namespace moe::cli
