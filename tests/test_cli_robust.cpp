// Bad input found by trying `moe` as a new user would (issue 16): each of these crashed, hung, ran out of
// memory or failed silently before; now each is one clear line on stderr and a non-zero exit (or a note).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include "core/atomic_file.h"
#include "experts/heatmap.h"
#include "format/gguf.h"
#include "model/synth.h"
#include "support/testdata.h"

using namespace moe;
using moe::test::run_moe;
namespace fs = std::filesystem;

namespace {

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string tiny_model() {
  static std::string path;
  if (path.empty()) {
    path = moe::test::scratch_dir("cli_robust_model") + "/tiny.gguf";
    SynthSpec s;
    s.hidden = 64;
    s.expert_ffn = 32;
    s.vocab = 300;
    s.ctx = 64;
    write_synth_model(s, path);
  }
  return path;
}

// The tiny model with its metadata key `key` set to the string `value`.
std::string tiny_model_with(const std::string& key, const std::string& value, const std::string& name) {
  const std::string path = moe::test::scratch_dir("cli_robust_" + name) + "/model.gguf";
  GgufFile src(tiny_model());
  GgufWriter w;
  w.copy_metadata(src);
  w.set(key, GgufValue::make_string(value));
  for (const GgufTensorInfo& t : src.tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.nbytes);
  w.write(path);
  return path;
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST(CliRobust, DeeplyNestedChatTemplateIsAnErrorNotACrash) {
  // SIGSEGV (stack overflow in the template parser) before.
  const int n = 10000;
  const std::string model = tiny_model_with("tokenizer.chat_template", repeat("{% if 1 %}", n) + "x" + repeat("{% endif %}", n), "deep_template");
  auto r = run_moe({"run", "-m", model, "--chat", "-p", "hi", "-n", "1"}, "", 60);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "nests deeper than")) << r.err;

  const std::string dir = moe::test::scratch_dir("cli_robust_deep_json");
  moe::test::write_file(dir + "/ctx.json", "{\"messages\": " + repeat("[", n) + repeat("]", n) + "}");
  moe::test::write_file(dir + "/t.jinja", "{{ messages|length }}");
  r = run_moe({"template", "--template", dir + "/t.jinja", "--context", dir + "/ctx.json"}, "", 60);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "JSON context nests deeper than")) << r.err;
}

TEST(CliRobust, ThreadCountIsBounded) {
  // --threads 10000 started 10000 spinning workers and a token took minutes.
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  auto r = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2", "-n", "1", "--threads", "10000"}, "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "--threads 10000 is more than")) << r.err;
  r = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2", "-n", "1", "--threads", "-3"}, "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2", "-n", "1", "--threads", std::to_string(hw)}, "", 60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliRobust, InfoOnAFifoDoesNotBlock) {
  // open() waited for a writer that never came.
  const std::string fifo = moe::test::scratch_dir("cli_robust_fifo") + "/model.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = run_moe({"info", fifo}, "", 30);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "not a regular file (a FIFO)")) << r.err;
  r = run_moe({"info", fs::path(fifo).parent_path().string()}, "", 30);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "a directory")) << r.err;
}

TEST(CliRobust, AFullContextSaysWhyGenerationStopped) {
  // Generation ended early and silently when prompt + n_predict outgrew the context.
  auto r = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2,3,4,5,6,7,8", "--ctx", "12", "-n", "50", "--ignore-eos",
                    "--print-ids"},
                   "", 60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "stopped after 4 of 50 tokens: the context of 12 tokens is full")) << r.err;
  r = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2,3", "--ctx", "12", "-n", "3", "--ignore-eos", "--print-ids"}, "", 60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "stopped after")) << r.err;
}

TEST(CliRobust, HugeContextSaysWhatTheKvCacheWouldNeed) {
  // std::bad_alloc before.
  auto r = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2", "-n", "1", "--ctx", "2000000000"}, "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "the KV cache for 2000000000 positions would need")) << r.err;
  EXPECT_TRUE(contains(r.err, "per position")) << r.err;
  EXPECT_FALSE(contains(r.err, "bad_alloc")) << r.err;
}

TEST(CliRobust, StaleTempFilesOfKilledWritersAreRemoved) {
  // A writer killed between creating its temp file and the rename left <path>.tmp.* behind for good.
  const std::string dir = moe::test::scratch_dir("cli_robust_tmp");
  const std::string path = dir + "/out.gguf";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // a pid that no longer runs
  const std::string dead = path + ".tmp." + std::to_string(child) + ".a1b2c3";
  const std::string alive = path + ".tmp." + std::to_string(::getpid()) + ".d4e5f6";
  const std::string other = dir + "/other.gguf.tmp." + std::to_string(child) + ".g7h8i9";
  for (const auto& f : {dead, alive, other}) moe::test::write_file(f, "partial");
  write_file_atomic(path, "done");
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));  // a writer still running
  EXPECT_TRUE(fs::exists(other));  // another destination's
  EXPECT_EQ(moe::test::read_file(path), "done");
  int left = 0;
  for (const auto& e : fs::directory_iterator(dir)) left += contains(e.path().filename().string(), "out.gguf.tmp.");
  EXPECT_EQ(left, 1);
}

TEST(CliRobust, TokenIdsAsTokenizeAndPrintIdsPrintThem) {
  // --tokens took only commas; tokenize --ids and run --print-ids print spaces.
  auto a = run_moe({"run", "-m", tiny_model(), "--tokens", "1,2,3", "-n", "4", "--temp", "0", "--print-ids"});
  auto b = run_moe({"run", "-m", tiny_model(), "--tokens", "1 2 3", "-n", "4", "--temp", "0", "--print-ids"});
  auto c = run_moe({"run", "-m", tiny_model(), "--tokens", " 1, 2 ,3\n", "-n", "4", "--temp", "0", "--print-ids"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out) << b.err;
  EXPECT_EQ(a.out, c.out) << c.err;
  for (const char* bad : {"1,,2", "1 x", "", "1,"}) {
    auto r = run_moe({"run", "-m", tiny_model(), "--tokens", bad, "-n", "1"});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
  }
}

TEST(CliRobust, PromptFromAFileOrStandardInput) {
  const std::string dir = moe::test::scratch_dir("cli_robust_prompt");
  moe::test::write_file(dir + "/p.txt", "hello there");
  auto a = run_moe({"run", "-m", tiny_model(), "-p", "hello there", "-n", "4", "--temp", "0", "--print-ids"});
  auto b = run_moe({"run", "-m", tiny_model(), "-f", dir + "/p.txt", "-n", "4", "--temp", "0", "--print-ids"});
  auto c = run_moe({"run", "-m", tiny_model(), "-p", "-", "-n", "4", "--temp", "0", "--print-ids"}, "hello there");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out) << b.err;
  EXPECT_EQ(a.out, c.out) << c.err;
  auto r = run_moe({"run", "-m", tiny_model(), "-f", dir + "/missing.txt", "-n", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "missing.txt")) << r.err;
  r = run_moe({"run", "-m", tiny_model(), "-p", "x", "-f", dir + "/p.txt", "-n", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST(CliRobust, TokenizeDefaultsToTheBundledModel) {
  const std::string bundled = std::string(MOE_SOURCE_DIR) + "/models/default.gguf";
  if (!fs::exists(bundled)) GTEST_SKIP() << "no bundled model";  // not an oracle: part of the tree
  auto a = run_moe({"tokenize", "--ids", "-p", "Hello"});
  auto b = run_moe({"tokenize", "-m", bundled, "--ids", "-p", "Hello"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(CliRobust, HelpShowsDefaultsAndRangeErrorsAreShort) {
  auto h = run_moe({"run", "--help"});
  ASSERT_EQ(h.exit_code, 0);
  EXPECT_TRUE(contains(h.out, "=128")) << h.out;  // -n
  EXPECT_TRUE(contains(h.out, "=0.8")) << h.out;  // --temp
  // CLI11's NonNegativeNumber printed DBL_MAX in full (309 digits) in this message.
  auto r = run_moe({"run", "-m", tiny_model(), "--tokens", "1", "--temp", "-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_LT(r.err.size(), 160u) << r.err;
  EXPECT_TRUE(contains(r.err, "-1 is negative")) << r.err;
}

TEST(CliRobust, InfoOnATokenizerOnlyGguf) {
  // Model::load failed on the missing tensors; a vocabulary file is worth describing.
  const std::string path = moe::test::scratch_dir("cli_robust_vocab") + "/vocab.gguf";
  GgufFile src(tiny_model());
  GgufWriter w;
  for (const auto& [key, value] : src.metadata())
    if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
  w.write(path);
  auto r = run_moe({"info", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "a tokenizer only")) << r.out;
  EXPECT_TRUE(contains(r.out, "300 tokens")) << r.out;
}

TEST(CliRobust, PruneTakesProfilesOutPrefixAndInfoShowsTheKeptExperts) {
  const std::string dir = moe::test::scratch_dir("cli_robust_prune");
  moe::test::write_file(dir + "/a.txt", "the quick brown fox jumps over the lazy dog. " + repeat("hello world. ", 20));
  auto r = run_moe({"profile", "-m", tiny_model(), "--text", dir + "/a.txt", "--out", dir + "/stats", "--ctx", "32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir + "/stats.json"));
  r = run_moe({"prune", "-m", tiny_model(), "--stats", dir + "/stats", "--keep", "3", "-o", dir + "/pruned.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_moe({"info", dir + "/pruned.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "pruned:        kept 3 of 8 experts; original ids per layer: 0:[")) << r.out;
  EXPECT_TRUE(contains(r.out, " 1:[")) << r.out;
}

TEST(CliRobust, ChatKeepsTheSessionWhenTheConversationOutgrowsTheContext) {
  // The second message ended the chat with "no longer fits the context" before.
  std::string input;
  for (int i = 0; i < 6; ++i) input += "a story of ship " + std::to_string(i) + "\n";
  input += "/help\n";
  auto r = run_moe({"chat", "-m", tiny_model(), "--ctx", "64", "-n", "8", "--temp", "0"}, input, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "dropped the oldest")) << r.err;
  EXPECT_TRUE(contains(r.err, "/reset")) << r.err;  // /help, after the six messages
  EXPECT_FALSE(contains(r.err, "error")) << r.err;
}

TEST(CliRobust, ChatRepliesStopAtTheTemplatesEndOfTurn) {
  // A model that writes the template's end-of-turn text kept going to -n. The synthetic model writes random
  // bytes; with a template whose turns end with "8" (a byte it writes often) its reply must end before the first
  // "8" that `run --chat`, which does not stop there, prints with the same seed.
  const std::string model = tiny_model_with(
      "tokenizer.chat_template",
      "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '8\\n' }}{% endfor %}{% if add_generation_prompt %}"
      "{{ 'assistant: ' }}{% endif %}",
      "turn_end");
  const std::vector<std::string> sampling = {"-n", "200", "--temp", "1", "--seed", "3"};
  std::vector<std::string> run_args = {"run", "-m", model, "--chat", "-p", "hi"}, chat_args = {"chat", "-m", model};
  run_args.insert(run_args.end(), sampling.begin(), sampling.end());
  chat_args.insert(chat_args.end(), sampling.begin(), sampling.end());
  const auto full = run_moe(run_args, "", 120);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const size_t marker = full.out.find('8');
  ASSERT_NE(marker, std::string::npos) << "the unfiltered reply has no marker to stop at: " << full.out;
  const auto r = run_moe(chat_args, "hi\n", 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, full.out.substr(0, marker) + "\n");
}

TEST(CliRobust, HeatmapsHaveARobustRangeLabelsAndValues) {
  // One hot expert set the colour scale, so every other cell was near white; no expert labels; values only on hover.
  const std::string dir = moe::test::scratch_dir("cli_robust_heatmap");
  LayerExpertTable t(2, std::vector<double>(8, 0.0));
  for (int e = 0; e < 8; ++e) t[1][e] = 0.1 + 0.01 * e;
  t[1][3] = 10.0;  // the hot cell
  write_heatmap_svg(dir + "/f.svg", t, {.title = "freq", .value_label = "selection frequency"});
  const std::string f = moe::test::read_file(dir + "/f.svg");
  EXPECT_TRUE(contains(f, "fill='#dddddd'"));  // layer 0 is dense: grey
  EXPECT_TRUE(contains(f, "&#8805; ")) << "the legend says the top is clipped";
  EXPECT_TRUE(contains(f, ">0.17</text>")) << "values printed in the cells";
  EXPECT_TRUE(contains(f, ">10</text>"));
  EXPECT_TRUE(contains(f, "text-anchor='middle' font-size='11'>7</text>")) << "expert labels";
  // The cool cells get visibly different colours, not all the near-white of a scale set by 10.0.
  int distinct = 0;
  std::string last;
  for (size_t at = f.find("<title>layer 1"); at != std::string::npos; at = f.find("<title>layer 1", at + 1)) {
    const size_t fill = f.rfind("fill='", at);
    const std::string c = f.substr(fill + 6, 7);
    distinct += c != last;
    last = c;
  }
  EXPECT_GE(distinct, 6);

  LayerExpertTable d(1, std::vector<double>{-0.2, 0.0, 0.1, 0.3});
  write_heatmap_svg(dir + "/d.svg", d, {.title = "diff", .value_label = "a - b", .diverging = true});
  const std::string g = moe::test::read_file(dir + "/d.svg");
  const size_t zero = g.find("<title>layer 0, expert 1: 0</title>");
  ASSERT_NE(zero, std::string::npos) << g;
  EXPECT_EQ(g.substr(g.rfind("fill='", zero) + 6, 7), "#ffffff") << "zero is white in a difference map";
}

namespace {

// `flag` appears in text as a whole flag name (not as the start of a longer one: --top is not --top-k).
bool names_flag(const std::string& text, const std::string& flag) {
  for (size_t at = text.find(flag); at != std::string::npos; at = text.find(flag, at + 1)) {
    const size_t end = at + flag.size();
    const char next = end < text.size() ? text[end] : ' ';
    if (!(std::isalnum(static_cast<unsigned char>(next)) || next == '-' || next == '_')) return true;
  }
  return false;
}

}  // namespace

TEST(CliRobust, CliReferenceNamesEveryFlagAndReadmeNoOther) {
  // The README's CLI reference had drifted from the code. docs/cli.md (scripts/cli_reference.sh) must hold every
  // flag of every command as --help lists it, and every flag the README's command table names must exist.
  const std::string reference = moe::test::read_file(std::string(MOE_SOURCE_DIR) + "/docs/cli.md");
  const std::string readme = moe::test::read_file(std::string(MOE_SOURCE_DIR) + "/README.md");
  const auto top = run_moe({"--help"});
  ASSERT_EQ(top.exit_code, 0);
  std::vector<std::string> commands;
  const size_t list = top.out.find("commands:\n");
  ASSERT_NE(list, std::string::npos);
  std::istringstream lines(top.out.substr(list + 10));
  for (std::string line; std::getline(lines, line);)
    if (line.size() > 2 && line[0] == ' ') commands.push_back(line.substr(2, line.find(' ', 2) - 2));
  ASSERT_GE(commands.size(), 10u);
  auto flags_in = [](const std::string& text) {
    std::vector<std::string> flags;
    for (size_t at = text.find("--"); at != std::string::npos; at = text.find("--", at + 2)) {
      if (at > 0 && (std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '-')) continue;
      size_t end = at + 2;
      while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-')) ++end;
      if (end > at + 3) flags.push_back(text.substr(at, end - at));
    }
    return flags;
  };
  std::string missing, all_help;
  for (const auto& cmd : commands) {
    const auto help = run_moe({cmd, "--help"});
    ASSERT_EQ(help.exit_code, 0) << cmd;
    all_help += help.out;
    const size_t section = reference.find("## moe " + cmd + "\n");
    if (section == std::string::npos) {
      missing += " " + cmd + "(no section)";
      continue;
    }
    const std::string body = reference.substr(section, reference.find("\n## ", section + 1) - section);
    for (const auto& flag : flags_in(help.out))
      if (!names_flag(body, flag)) missing += " " + cmd + ":" + flag;
  }
  EXPECT_TRUE(missing.empty()) << "docs/cli.md is out of date (run scripts/cli_reference.sh):" << missing;
  const size_t a = readme.find("## Command line"), b = readme.find("\n## ", a + 1);
  ASSERT_NE(a, std::string::npos);
  std::string unknown;
  for (const auto& flag : flags_in(readme.substr(a, b - a)))
    if (!names_flag(all_help, flag)) unknown += " " + flag;
  EXPECT_TRUE(unknown.empty()) << "README.md names flags no command has:" << unknown;
}

TEST(CliRobust, CtrlCDoesNotEndTheChat) {
  // SIGINT killed `moe chat` (and the whole conversation) before; now it stops a reply or, at the prompt, is a
  // note, and the chat goes on to the next message.
  const std::string err_path = moe::test::scratch_dir("cli_robust_sigint") + "/err.txt";
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  const std::string model = tiny_model();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::close(in[1]);
    const int devnull = ::open("/dev/null", O_WRONLY), err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(devnull, 1);
    ::dup2(err, 2);
    ::execl(MOE_CLI_PATH, "moe", "chat", "-m", model.c_str(), "-n", "4", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the model loads and the chat waits for input
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string input = "hi\n/exit\n";
  ASSERT_EQ(::write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(in[1]);
  int status = 0;
  for (int i = 0; i < 600 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(contains(moe::test::read_file(err_path), "(Ctrl-C")) << moe::test::read_file(err_path);
}
