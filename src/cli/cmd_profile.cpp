// `moe profile`: measure which experts fire for which text; stats file + heatmaps (+ optional trace).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "experts/heatmap.h"
#include "experts/profiler.h"
#include "experts/steering.h"
#include "model/context.h"
#include "tokenizer/tokenizer.h"

namespace moe::cli {

std::string read_text_file(const std::string& path);

namespace fs = std::filesystem;

int cmd_profile(int argc, char** argv) {
  CLI::App app{"Profile expert usage per task (one --text per task): counts, router probabilities, TCESS; heatmaps", "profile"};
  std::string path, out, trace_path;
  std::vector<std::string> texts, names;
  int threads = 0, window = 512, tcess_k = 1;
  double tcess_r = -1.0;
  std::string tcess_marker = "centered";
  int64_t max_bytes = 0;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--text", texts, "text file of one task (repeat for several tasks)")->required();
  app.add_option("--task", names, "task names, in --text order (default: file names)");
  app.add_option("--out", out, "output: OUT.json plus OUT.<task>.svg heatmaps (and OUT.diff.svg for two or more tasks)")->required();
  app.add_option("--ctx", window, "window length in tokens")->check(CLI::Range(2, 1 << 20));
  app.add_option("--max-bytes", max_bytes, "profile only the first N bytes of each text (0: all)")->check(NonNegative);
  app.add_option("--tcess-k", tcess_k, "TCESS marker: top experts per token counted (PreMoe default 1)")->check(Positive);
  app.add_option("--tcess-r", tcess_r, "TCESS confidence filter on the local softmax (-1: off)");
  app.add_option("--tcess-marker", tcess_marker,
                 "TCESS marker logit: centered (minus the token's mean logit) or raw (PreMoe's code)")
      ->check(CLI::IsMember({"centered", "raw"}));
  app.add_option("--trace", trace_path, "write a per-token routing trace (TSV: position, token, layer, experts, weights)");
  app.add_option("-t,--threads", threads, "threads (0: all)");
  MemoryFlags mf;
  mf.add_to(app);
  return run_command(app, argc, argv, [&] {
    if (!names.empty() && names.size() != texts.size()) throw UsageError("give one --task name per --text");
    auto model = Model::load(resolve_model_path(path));
    const ModelConfig& c = model->config();
    if (c.n_expert == 0) throw UsageError("the model has no experts to profile");
    Tokenizer tok = Tokenizer::from_gguf(model->file());
    ThreadPool pool(resolve_threads(threads));
    const auto store = mf.make_store(*model, RoutingControl{});
    Context ctx(*model, pool,
                {.n_ctx = window, .n_batch = std::min(window, 512), .pack_experts_on_use = mf.pack_experts_on_use(), .experts = store, .prefetch = !mf.no_prefetch});
    ExpertStatsFile stats;
    stats.model = ModelFingerprint::of(*model);
    stats.layer_is_moe = c.layer_is_moe;
    stats.top_k = c.n_expert_used;
    stats.tcess_k = tcess_k;
    stats.tcess_r = tcess_r;
    stats.tcess_centered = tcess_marker == "centered";
    std::ofstream trace;
    if (!trace_path.empty()) {
      trace.open(trace_path);
      if (!trace) throw UsageError("cannot write " + trace_path);
      trace << "task\tposition\ttoken\tlayer\texperts\tweights\n";
    }
    const bool tty = isatty(fileno(stderr));
    stats.tasks.resize(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      TaskStats& ts = stats.tasks[i];
      ts.name = names.empty() ? fs::path(texts[i]).stem().string() : names[i];
      for (size_t j = 0; j < i; ++j)
        if (stats.tasks[j].name == ts.name) throw UsageError("two tasks are named '" + ts.name + "' (use --task)");
      std::string text = read_text_file(texts[i]);
      if (max_bytes > 0 && static_cast<int64_t>(text.size()) > max_bytes) text.resize(static_cast<size_t>(max_bytes));
      std::vector<int32_t> ids = tok.encode(text, false, false);
      ExpertProfiler prof(c, ts, tcess_k, tcess_r, stats.tcess_centered);
      std::ostringstream task_trace;
      if (trace) prof.set_trace(&task_trace, &tok);
      profile_tokens(ctx, prof, ids, window, tok.bos(), [&](int64_t done, int64_t total) {
        if (tty) std::fprintf(stderr, "\rprofile %s: %lld / %lld tokens", ts.name.c_str(), static_cast<long long>(done),
                              static_cast<long long>(total));
      });
      if (tty) std::fprintf(stderr, "\n");
      if (trace) {
        std::istringstream lines(task_trace.str());
        std::string line;
        while (std::getline(lines, line)) trace << ts.name << '\t' << line << '\n';
      }
    }
    const std::string json = out.size() > 5 && out.substr(out.size() - 5) == ".json" ? out : out + ".json";
    const std::string stem = json.substr(0, json.size() - 5);
    stats.save(json);
    for (const auto& ts : stats.tasks)
      write_heatmap_svg(stem + "." + ts.name + ".svg", ts.frequency(),
                        {"expert selection frequency: " + ts.name + " (" + std::to_string(ts.n_tokens) + " tokens)",
                         "share of tokens selecting the expert (rows: layers, columns: experts)", false});
    if (stats.tasks.size() >= 2) {
      auto a = stats.tasks[0].frequency(), b = stats.tasks[1].frequency();
      for (size_t l = 0; l < a.size(); ++l)
        for (size_t e = 0; e < a[l].size(); ++e) a[l][e] -= b[l][e];
      write_heatmap_svg(stem + ".diff.svg", a,
                        {"selection frequency difference: " + stats.tasks[0].name + " - " + stats.tasks[1].name,
                         "red: more in " + stats.tasks[0].name + ", blue: more in " + stats.tasks[1].name, true});
    }
    std::fprintf(stderr, "wrote %s and heatmaps %s.*.svg\n", json.c_str(), stem.c_str());
    if (store) print_memory_summary(stderr, *store, 0);
    return 0;
  });
}

int cmd_steer_find(int argc, char** argv) {
  CLI::App app{"Rank experts by how much more often they fire on text showing a behaviour than on text without it (fTRI)", "steer-find"};
  std::string path, with, without, out_file;
  int top = 20, threads = 0, window = 512;
  int64_t max_bytes = 0;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--with", with, "text showing the behaviour")->required();
  app.add_option("--without", without, "text without it")->required();
  app.add_option("--top", top, "candidates to print")->check(Positive);
  app.add_option("--ctx", window, "window length in tokens")->check(CLI::Range(2, 1 << 20));
  app.add_option("--max-bytes", max_bytes, "use only the first N bytes of each text (0: all)")->check(NonNegative);
  app.add_option("--steer-out", out_file, "also write a steer file banning the top candidates");
  app.add_option("-t,--threads", threads, "threads (0: all)");
  return run_command(app, argc, argv, [&] {
    auto model = Model::load(resolve_model_path(path));
    const ModelConfig& c = model->config();
    if (c.n_expert == 0) throw UsageError("the model has no experts");
    Tokenizer tok = Tokenizer::from_gguf(model->file());
    ThreadPool pool(resolve_threads(threads));
    Context ctx(*model, pool, {.n_ctx = window, .n_batch = std::min(window, 512)});
    ExpertStatsFile stats;
    stats.model = ModelFingerprint::of(*model);
    stats.layer_is_moe = c.layer_is_moe;
    stats.tasks.resize(2);
    const std::string files[2] = {with, without};
    for (int i = 0; i < 2; ++i) {
      std::string text = read_text_file(files[i]);
      if (max_bytes > 0 && static_cast<int64_t>(text.size()) > max_bytes) text.resize(static_cast<size_t>(max_bytes));
      ExpertProfiler prof(c, stats.tasks[i]);
      profile_tokens(ctx, prof, tok.encode(text, false, false), window, tok.bos());
    }
    auto ranked = rank_steering_candidates(stats, stats.tasks[0], stats.tasks[1]);
    std::printf("rank\tlayer:expert\tfreq_with\tfreq_without\tfTRI\n");
    std::string steer = "ban ";
    for (int i = 0; i < top && i < static_cast<int>(ranked.size()); ++i) {
      const auto& r = ranked[static_cast<size_t>(i)];
      std::printf("%d\t%d:%d\t%.4f\t%.4f\t%+.4f\n", i + 1, r.layer, r.expert, r.freq_with, r.freq_without, r.score);
      steer += (i ? "," : "") + std::to_string(r.layer) + ":" + std::to_string(r.expert);
    }
    if (!out_file.empty()) {
      write_file_atomic(out_file, "# experts most specific to " + with + " vs " + without + " (moe steer-find)\n" +
                                      steer + "\n");
    }
    return 0;
  });
}

}  // namespace moe::cli
