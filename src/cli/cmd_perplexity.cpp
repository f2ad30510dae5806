// `moe perplexity`: bits per byte and per-token perplexity of a text file, in sliding windows.
#include <unistd.h>

#include <cstdio>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "cli/routing_flags.h"
#include "core/error.h"
#include "model/context.h"
#include "model/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace moe::cli {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read text file " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int cmd_perplexity(int argc, char** argv) {
  CLI::App app{"Bits per byte and perplexity of a text file (sliding window over the context)", "perplexity"};
  std::string path, text_path;
  int threads = 0, window = 512, stride = 0;
  int64_t max_bytes = 0;
  bool as_json = false;
  RoutingFlags rf;
  MemoryFlags mf;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--text", text_path, "UTF-8 text file")->required();
  app.add_option("--ctx", window, "window (context) length in tokens")->check(CLI::Range(2, 1 << 20));
  app.add_option("--stride", stride, "tokens the window advances (default: half the window)")->check(NonNegative);
  app.add_option("--max-bytes", max_bytes, "evaluate only the first N bytes of the file (0: all)")->check(NonNegative);
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_flag("--json", as_json, "print one JSON object: bits_per_byte, ppl, tokens, bytes");
  rf.add_to(app);
  mf.add_to(app);
  return run_command(app, argc, argv, [&] {
    std::string text = read_text_file(text_path);
    if (max_bytes > 0 && static_cast<int64_t>(text.size()) > max_bytes) {
      size_t cut = static_cast<size_t>(max_bytes);
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
      text.resize(cut);
    }
    if (text.empty()) throw UsageError(text_path + " is empty");
    auto model = Model::load(resolve_model_path(path));
    Tokenizer tok = Tokenizer::from_gguf(model->file());
    std::vector<int32_t> ids = tok.encode(text, false, false);
    // Score every text token: prepend BOS as context when the vocabulary has one.
    if (tok.bos() >= 0) ids.insert(ids.begin(), tok.bos());
    if (stride == 0) stride = std::max(1, window / 2);
    ThreadPool pool(resolve_threads(threads));
    const RoutingControl ctl = rf.build(*model);
    const auto store = mf.make_store(*model, ctl);
    Context ctx(*model, pool,
                {.n_ctx = window, .n_batch = std::min(window, 512), .pack_experts_on_use = mf.pack_experts_on_use(),
                 .experts = store, .prefetch = !mf.no_prefetch, .cache_type = mf.kv_type()});
    if (ctl.any()) ctx.set_routing(ctl);
    const bool tty = isatty(fileno(stderr));
    auto r = evaluate_perplexity(ctx, ids, window, std::min(stride, window - 1), [&](int64_t done, int64_t total) {
      if (tty) std::fprintf(stderr, "\rperplexity: %lld / %lld tokens", static_cast<long long>(done), static_cast<long long>(total));
    });
    if (tty) std::fprintf(stderr, "\n");
    const int64_t bytes = static_cast<int64_t>(text.size());
    if (as_json) {
      std::printf("{\"bits_per_byte\": %.6f, \"ppl\": %.6f, \"tokens\": %lld, \"bytes\": %lld, \"experts_per_token\": %.4f}\n",
                  r.bits_per_byte(bytes), r.ppl(), static_cast<long long>(r.n_scored), static_cast<long long>(bytes),
                  ctx.mean_experts_per_token());
    } else {
      std::printf("bits per byte %.4f, perplexity %.4f over %lld tokens (%lld bytes)", r.bits_per_byte(bytes), r.ppl(),
                  static_cast<long long>(r.n_scored), static_cast<long long>(bytes));
      if (model->config().n_expert > 0) std::printf(", %.2f experts/token", ctx.mean_experts_per_token());
      std::printf("\n");
      if (store) print_memory_summary(stderr, *store, r.n_scored);
    }
    return 0;
  });
}

}  // namespace moe::cli
