// `moe serve`: the OpenAI-compatible HTTP server with continuous batching (src/serve).
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "cli/routing_flags.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "serve/server.h"
#include "tokenizer/tokenizer.h"

namespace moe::cli {

namespace {

// SIGTERM/SIGINT -> one byte down a pipe that a waiting thread reads (a handler may run on any thread, and threads
// that libraries start before main, like OpenBLAS's, would not see a blocked mask).
int g_signal_pipe[2] = {-1, -1};  // set once before the handlers are installed; written only by them
void on_signal(int sig) {
  const char b = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  CLI::App app{"Serve a GGUF model over an OpenAI-compatible HTTP API, batching concurrent requests", "serve"};
  std::string path, kernels = "simd";
  serve::ServerOptions so;
  serve::SchedulerParams sp;
  int parallel = 4, n_ctx = 0, threads = 0, n_batch = 256;
  size_t max_body_kb = 1024;
  RoutingFlags rf;
  MemoryFlags mf;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--host", so.host, "address to listen on")->capture_default_str();
  app.add_option("--port", so.port, "TCP port (0: any free port, printed on stderr)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--parallel", parallel, "sequences decoded together (KV-cache slots)")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--ctx", n_ctx, "context length per sequence (0: min(4096, trained))")->check(CLI::NonNegativeNumber);
  app.add_option("--batch", n_batch, "max tokens per forward step")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--prefill-chunk", sp.prefill_chunk, "prompt tokens per sequence per step")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--queue", sp.max_queue, "requests that may wait for a slot; more get 503")->check(CLI::Range(0, 10000))->capture_default_str();
  app.add_option("--max-body-kb", max_body_kb, "largest request body in KiB (more: 413)")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  app.add_option("--model-name", so.model_name, "model id reported by /v1/models (default: the file name)");
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--kernels", kernels, "kernel set: simd or ref")->check(CLI::IsMember({"simd", "ref"}));
  rf.add_to(app);
  mf.add_to(app);
  return run_command(app, argc, argv, [&] {
    std::signal(SIGPIPE, SIG_IGN);  // a client that left must fail a write, not kill the server
    const std::string file = resolve_model_path(path);
    auto model = Model::load(file);
    if (!model->file().has("tokenizer.ggml.tokens")) throw UsageError(file + " has no tokenizer: the server needs one");
    const Tokenizer tok = Tokenizer::from_gguf(model->file());
    if (so.model_name.empty()) so.model_name = std::filesystem::path(file).stem().string();
    so.max_body = max_body_kb * 1024;
    ThreadPool pool(resolve_threads(threads));
    RoutingControl ctl = rf.build(*model);
    const KernelSet& ks = kernels_by_name(kernels.c_str());
    const bool pack = &ks == &simd_kernels();
    std::shared_ptr<ExpertStore> store = mf.make_store(*model, ctl, pack);
    Context ctx(*model, pool,
                {.n_ctx = n_ctx, .n_batch = n_batch, .kernels = &ks, .pack_experts_on_use = mf.pack_experts_on_use(), .experts = store, .n_seq = parallel, .prefetch = !mf.no_prefetch});
    if (ctl.any()) ctx.set_routing(ctl);
    serve::Server server(ctx, tok, ctl, so, sp);
    const int port = server.bind();
    std::fprintf(stderr, "moe serve: %s on http://%s:%d (%d slots of %d tokens, %d threads)\n", so.model_name.c_str(),
                 so.host.c_str(), port, parallel, ctx.n_ctx(), pool.size());
    std::fflush(stderr);
    if (pipe(g_signal_pipe) != 0) throw Error("cannot create the signal pipe");
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    std::thread waiter([&] {
      char b = 0;
      while (read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
      }
      if (b == 0) return;  // the server stopped by itself
      std::fprintf(stderr, "moe serve: signal %d: finishing the requests in flight, then exiting\n", b);
      server.shutdown();
    });
    server.run();
    const char zero = 0;
    [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &zero, 1);
    waiter.join();
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    if (store) print_memory_summary(stderr, *store, server.scheduler_metrics().step_tokens);
    std::fprintf(stderr, "moe serve: stopped\n");
    return 0;
  });
}

}  // namespace moe::cli
