// `moe chat`: interactive multi-turn chat with the model's chat template. Each turn re-renders the whole
// conversation and reuses the KV cache for the longest common token prefix. When the conversation outgrows the
// context the oldest turns are dropped (and the user told); Ctrl-C ends the reply being written, not the chat.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>

#ifdef MOE_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "cli/routing_flags.h"
#include "cli/sampler_flags.h"
#include "core/error.h"
#include "model/generate.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace moe::cli {

namespace {

// Set by SIGINT. A signal handler can only reach a flag like this one, so it is the one global of the chat.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

const char* kHelp =
    "commands:\n"
    "  /help    this list\n"
    "  /reset   forget the conversation (keeps --system)\n"
    "  /exit    quit (so does end of input, Ctrl-D)\n"
    "Ctrl-C stops the reply being written. When the conversation outgrows the context (--ctx), the oldest\n"
    "turns are dropped.\n";

// Reads one line: with line editing and history when libedit is there and stdin is a terminal.
// nullopt at end of input; an empty line with *interrupted set when Ctrl-C was pressed.
std::optional<std::string> read_line(bool interactive, bool* interrupted) {
  *interrupted = false;
  g_interrupted = 0;
#ifdef MOE_HAVE_LIBEDIT
  if (interactive) {
    char* raw = readline("> ");
    if (!raw) {
      if (g_interrupted) {
        *interrupted = true;
        return std::string();
      }
      return std::nullopt;
    }
    std::string line(raw);
    std::free(raw);
    if (!line.empty()) add_history(line.c_str());
    return line;
  }
#endif
  if (interactive) std::fprintf(stderr, "> ");
  std::string line;
  if (std::getline(std::cin, line)) return line;
  if (g_interrupted) {  // read() was interrupted by Ctrl-C: not the end of input
    std::clearerr(stdin);
    std::cin.clear();
    *interrupted = true;
    return std::string();
  }
  return std::nullopt;
}

// Holds back the streamed text that might be the start of the template's end-of-turn marker, and reports
// when the marker is complete: the reply ends there, without it.
class TurnEndFilter {
 public:
  explicit TurnEndFilter(std::string marker) : marker_(std::move(marker)) {}
  // Returns the text that can be shown now; sets done() once the marker has appeared.
  std::string push(const std::string& s) {
    if (done_) return "";
    pending_ += s;
    if (marker_.empty()) return std::exchange(pending_, std::string());
    if (size_t at = pending_.find(marker_); at != std::string::npos) {
      done_ = true;
      std::string out = pending_.substr(0, at);
      pending_.clear();
      return out;
    }
    // Keep the longest tail of pending_ that is a prefix of the marker.
    size_t keep = std::min(pending_.size(), marker_.size() - 1);
    while (keep > 0 && pending_.compare(pending_.size() - keep, keep, marker_, 0, keep) != 0) --keep;
    std::string out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return out;
  }
  std::string flush() { return done_ ? std::string() : std::exchange(pending_, std::string()); }
  bool done() const { return done_; }

 private:
  std::string marker_, pending_;
  bool done_ = false;
};

}  // namespace

int cmd_chat(int argc, char** argv) {
  CLI::App app{"Chat with a model in the terminal (/help lists the commands; /exit or end of input quits)", "chat"};
  std::string path, system;
  int n_predict = 512, threads = 0, n_ctx = 0;
  SamplerParams sp;
  sp.temperature = 0.7f;
  RoutingFlags rf;
  MemoryFlags mf;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--system", system, "system message");
  app.add_option("-n,--n-predict", n_predict, "max tokens per answer")->check(Positive);
  add_sampler_flags(app, sp);
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--ctx", n_ctx, "context length (0: min(4096, trained)); older turns are dropped beyond it")
      ->check(NonNegative);
  rf.add_to(app);
  mf.add_to(app);
  return run_command(app, argc, argv, [&] {
    auto model = Model::load(resolve_model_path(path));
    if (!model->file().has("tokenizer.ggml.tokens")) throw UsageError("the model has no tokenizer");
    Tokenizer tok = Tokenizer::from_gguf(model->file());
    ChatFormatter fmt(tok);
    const std::string turn_end = fmt.end_of_turn();
    ThreadPool pool(resolve_threads(threads));
    const RoutingControl ctl = rf.build(*model);
    const auto store = mf.make_store(*model, ctl);
    Context ctx(*model, pool, {.n_ctx = n_ctx, .pack_experts_on_use = mf.pack_experts_on_use(), .experts = store,
                 .prefetch = !mf.no_prefetch, .cache_type = mf.kv_type()});
    if (ctl.any()) ctx.set_routing(ctl);
    Sampler sampler(sp, model->config().n_vocab);
    const bool interactive = isatty(fileno(stdin));
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read waiting for input returns, so the prompt comes back
    struct sigaction old_sa {};
    sigaction(SIGINT, &sa, &old_sa);
    if (interactive) std::fprintf(stderr, "moe chat: /help lists the commands\n");

    const size_t n_fixed = system.empty() ? 0 : 1;  // messages never dropped
    std::vector<ChatMessage> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    // Room kept for the reply when deciding whether the conversation still fits.
    const int reply_room = std::max(1, std::min(n_predict, ctx.n_ctx() / 4));
    std::vector<int32_t> in_cache;  // tokens whose K/V are in ctx
    for (;;) {
      bool interrupted = false;
      std::optional<std::string> line = read_line(interactive, &interrupted);
      if (!line || *line == "/exit") break;
      if (interrupted) {
        std::fprintf(stderr, "\n(Ctrl-C: /exit or Ctrl-D quits)\n");
        continue;
      }
      if (*line == "/help") {
        std::fputs(kHelp, stderr);
        continue;
      }
      if (*line == "/reset") {
        msgs.resize(n_fixed);
        ctx.truncate(0);
        in_cache.clear();
        continue;
      }
      if (!line->empty() && (*line)[0] == '/') {
        std::fprintf(stderr, "unknown command %s (/help lists them)\n", line->c_str());
        continue;
      }
      if (line->empty()) continue;
      msgs.push_back({"user", *line});
      std::vector<int32_t> ids = fmt.tokenize(msgs, true);
      int dropped = 0;
      while (static_cast<int64_t>(ids.size()) + reply_room > ctx.n_ctx() && msgs.size() > n_fixed + 1) {
        // Drop the oldest turn: its user message and the reply to it.
        msgs.erase(msgs.begin() + static_cast<long>(n_fixed));
        if (msgs.size() > n_fixed + 1 && msgs[n_fixed].role == "assistant") msgs.erase(msgs.begin() + static_cast<long>(n_fixed));
        ++dropped;
        ids = fmt.tokenize(msgs, true);
      }
      if (static_cast<int64_t>(ids.size()) + reply_room > ctx.n_ctx()) {
        std::fprintf(stderr, "this message needs %zu tokens with the template, too many for the context of %d "
                     "(raise --ctx)\n", ids.size(), ctx.n_ctx());
        msgs.pop_back();
        continue;
      }
      if (dropped > 0)
        std::fprintf(stderr, "(the conversation outgrew the context of %d tokens: dropped the oldest %d turn%s)\n",
                     ctx.n_ctx(), dropped, dropped == 1 ? "" : "s");
      size_t common = 0;
      while (common < ids.size() && common < in_cache.size() && ids[common] == in_cache[common]) ++common;
      if (common == ids.size()) --common;  // at least one token must be evaluated to get logits
      ctx.truncate(static_cast<int>(common));
      in_cache.assign(ids.begin(), ids.begin() + static_cast<long>(common));
      std::vector<int32_t> history(in_cache);
      StreamDecoder stream(tok, true);
      TurnEndFilter filter(turn_end);
      std::string answer;
      auto show = [&](const std::string& s) {
        answer += s;
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      };
      std::span<const int32_t> fresh(ids.data() + common, ids.size() - common);
      g_interrupted = 0;
      auto st = generate(ctx, sampler, fresh, n_predict, history,
                         [&](int32_t id) {
                           show(filter.push(stream.push(id)));
                           return !filter.done() && !g_interrupted;
                         },
                         [&](int32_t id) { return tok.is_eog(id); });
      show(filter.push(stream.flush()));
      show(filter.flush());
      std::printf("\n");
      std::fflush(stdout);
      if (g_interrupted) std::fprintf(stderr, "(reply stopped)\n");
      g_interrupted = 0;
      // The cache now holds the prompt and every generated token except the last one sampled.
      in_cache.assign(history.begin(), history.begin() + ctx.n_past());
      msgs.push_back({"assistant", answer});
      if (interactive)
        std::fprintf(stderr, "[%d tokens, %.1f tok/s]\n", st.n_generated, st.n_generated / std::max(st.gen_seconds, 1e-9));
    }
    sigaction(SIGINT, &old_sa, nullptr);
    return 0;
  });
}

}  // namespace moe::cli
